package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/callgate/callgate/api"
)

// FuzzCreateCallRequest feeds arbitrary bytes to POST /v1/calls as the body.
// Whatever arrives, the server must not panic or answer 500, and every answer
// is either a call (202, or 200 for a replay) or the one error shape. Seeds
// live in testdata/fuzz/FuzzCreateCallRequest.
func FuzzCreateCallRequest(f *testing.F) {
	f.Add([]byte(`{"to":"+15551234567","from":"+15557654321"}`))
	// No log capture and no stored calls: memory must stay flat over
	// millions of executions.
	b := &bundle{svc: newFakeService(), reg: prometheus.NewRegistry()}
	b.svc.forget = true
	var cfg api.Config
	cfg, b.tokens, b.admin = withTokens(f, api.Config{MaxBodyBytes: 4 << 10})
	b.srv = api.New(cfg, b.svc, b.reg, nil)
	b.h = b.srv.Handler()

	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/calls", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := b.serve(req)

		switch rec.Code {
		case http.StatusAccepted, http.StatusOK:
			var call api.CallResource
			if err := json.Unmarshal(rec.Body.Bytes(), &call); err != nil || call.ID == "" {
				t.Fatalf("status %d without a call: %s", rec.Code, rec.Body)
			}
		case http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusRequestEntityTooLarge:
			dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
			dec.DisallowUnknownFields()
			var e api.ErrorResponse
			if err := dec.Decode(&e); err != nil {
				t.Fatalf("status %d not in the error shape: %v: %s", rec.Code, err, rec.Body)
			}
			if !isErrorCode(e.Error.Code) || e.Error.Message == "" || e.Error.RequestID == "" {
				t.Fatalf("incomplete error: %s", rec.Body)
			}
		default:
			t.Fatalf("unexpected status %d: %s", rec.Code, rec.Body)
		}
	})
}
