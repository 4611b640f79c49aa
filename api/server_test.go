package api_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/api"
	"github.com/callgate/callgate/controller"
)

func TestErrorClasses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		err     error
		status  int
		code    string
		message string
		field   string
	}{
		{"invalid", controller.FieldError("to", "is required"), http.StatusBadRequest, "invalid", "is required", "to"},
		{"not found", controller.Errorf(controller.ENOTFOUND, "call not found"), http.StatusNotFound, "not_found", "call not found", ""},
		{"conflict", controller.Errorf(controller.ECONFLICT, "call has ended"), http.StatusConflict, "conflict", "call has ended", ""},
		{"unavailable", controller.Errorf(controller.EUNAVAILABLE, "database unreachable"), http.StatusServiceUnavailable, "unavailable", "database unreachable", ""},
		{"refused", controller.Errorf(controller.EREFUSED, "switch at its limit"), http.StatusServiceUnavailable, "refused", "switch at its limit", ""},
		{"too large", controller.Errorf(controller.ETOOLARGE, "too many variables"), http.StatusRequestEntityTooLarge, "too_large", "too many variables", ""},
		{"internal domain error", controller.Errorf(controller.EINTERNAL, "pq: secret detail"), http.StatusInternalServerError, "internal", "internal error", ""},
		{"plain error", errors.New("dial tcp 10.0.0.5:5432: secret detail"), http.StatusInternalServerError, "internal", "internal error", ""},
		{"wrapped domain error", fmt.Errorf("loading: %w", controller.Errorf(controller.ECONFLICT, "busy")), http.StatusConflict, "conflict", "busy", ""},
		{"unknown code", &controller.Error{Code: "weird", Message: "secret detail"}, http.StatusInternalServerError, "internal", "internal error", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.svc.with(func(f *fakeService) { f.err = tt.err })
			for _, r := range []struct{ method, target, body string }{
				{http.MethodPost, "/v1/calls", createBody},
				{http.MethodGet, "/v1/calls", ""},
				{http.MethodGet, "/v1/calls/" + string(newUUID()), ""},
				{http.MethodGet, "/v1/calls/" + string(newUUID()) + "/events", ""},
				{http.MethodPost, "/v1/calls/" + string(newUUID()) + "/hangup", ""},
			} {
				rec := b.do(t, r.method, r.target, r.body)
				d := requireError(t, rec, tt.status, tt.code, tt.field)
				require.Equal(t, tt.message, d.Message, "%s %s", r.method, r.target)
				require.NotContains(t, rec.Body.String(), "secret detail")
			}
			if tt.code == "internal" {
				require.Contains(t, b.logs.String(), "secret detail", "the real error is logged")
			}
		})
	}
}

func TestPanicIsInternalError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.svc.with(func(f *fakeService) { f.panicMsg = "boom for +15551234567" })

	rec := b.do(t, http.MethodGet, "/v1/calls/"+string(newUUID()), "")

	d := requireError(t, rec, http.StatusInternalServerError, "internal", "")
	require.Equal(t, "internal error", d.Message)
	logs := b.logs.String()
	require.Contains(t, logs, "boom for ****4567")
	require.Contains(t, logs, "goroutine", "the stack is logged")
	require.NotContains(t, logs, "15551234567")
	// The server survives.
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/healthz", "").Code)
}

func TestRouterErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		method string
		target string
		status int
		code   string
		allow  string
	}{
		{"unknown path", http.MethodGet, "/v2/calls", http.StatusNotFound, "not_found", ""},
		{"root", http.MethodGet, "/", http.StatusNotFound, "not_found", ""},
		{"trailing slash", http.MethodGet, "/v1/calls/", http.StatusNotFound, "not_found", ""},
		{"too deep", http.MethodGet, "/v1/calls/" + string(newUUID()) + "/events/1", http.StatusNotFound, "not_found", ""},
		{"DELETE calls", http.MethodDelete, "/v1/calls", http.StatusMethodNotAllowed, "method_not_allowed", "GET, POST"},
		{"PUT call", http.MethodPut, "/v1/calls/" + string(newUUID()), http.StatusMethodNotAllowed, "method_not_allowed", "GET"},
		{"GET hangup", http.MethodGet, "/v1/calls/" + string(newUUID()) + "/hangup", http.StatusMethodNotAllowed, "method_not_allowed", "POST"},
		{"POST healthz", http.MethodPost, "/healthz", http.StatusMethodNotAllowed, "method_not_allowed", "GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := setup(t).do(t, tt.method, tt.target, "")
			requireError(t, rec, tt.status, tt.code, "")
			if tt.allow != "" {
				for _, m := range strings.Split(tt.allow, ", ") {
					require.Contains(t, rec.Header().Get("Allow"), m)
				}
			}
		})
	}
}

func TestSwitches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.JSONEq(t, `{"switches":[]}`, b.do(t, http.MethodGet, "/v1/switches", "").Body.String())

	want := []controller.SwitchStatus{
		{Name: "fs1", Kind: "freeswitch", Address: "10.0.0.5:8021", Connected: true, Sessions: 3, MaxSessions: 100, MaxCPS: 10},
		{Name: "ast1", Kind: "asterisk", Address: "10.0.0.6:8088", LastError: "connection refused", MaxSessions: 50, MaxCPS: 5, Reconnects: 2},
	}
	b.svc.with(func(f *fakeService) { f.switches = want })
	rec := b.do(t, http.MethodGet, "/v1/switches", "")
	require.Equal(t, http.StatusOK, rec.Code)
	var got struct {
		Switches []controller.SwitchStatus `json:"switches"`
	}
	decode(t, rec, &got)
	require.Equal(t, want, got.Switches)
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		readyErr error
		message  string
	}{
		{"ready", nil, ""},
		{"unavailable", controller.Errorf(controller.EUNAVAILABLE, "no switch is connected"), "no switch is connected"},
		{"other failure", errors.New("pool closed: secret detail"), "not ready"},
		{"refused", controller.Errorf(controller.EREFUSED, "draining"), "not ready"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.svc.with(func(f *fakeService) { f.readyErr = tt.readyErr })

			rec := b.do(t, http.MethodGet, "/healthz", "")
			require.Equal(t, http.StatusOK, rec.Code)
			require.JSONEq(t, `{"status":"ok"}`, rec.Body.String())

			rec = b.do(t, http.MethodGet, "/readyz", "")
			if tt.readyErr == nil {
				require.Equal(t, http.StatusOK, rec.Code)
				require.JSONEq(t, `{"status":"ready"}`, rec.Body.String())
				return
			}
			d := requireError(t, rec, http.StatusServiceUnavailable, "unavailable", "")
			require.Equal(t, tt.message, d.Message)
		})
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	b := setup(t)

	rec := b.do(t, http.MethodGet, "/healthz", "", "X-Request-Id", "client-chosen-42")
	require.Equal(t, "client-chosen-42", rec.Header().Get("X-Request-Id"))

	rec = b.do(t, http.MethodGet, "/v1/nothing", "", "X-Request-Id", "trace-7")
	require.Equal(t, "trace-7", requireError(t, rec, http.StatusNotFound, "not_found", "").RequestID)

	seen := map[string]bool{}
	for _, in := range []string{"", "has space", strings.Repeat("x", 129), "bad\x01"} {
		rec := b.do(t, http.MethodGet, "/healthz", "", "X-Request-Id", in)
		id := rec.Header().Get("X-Request-Id")
		require.Len(t, id, 32, "generated for %q", in)
		require.False(t, seen[id])
		seen[id] = true
	}
	require.Contains(t, b.logs.String(), `"request_id":"client-chosen-42"`)
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.svc.seed(controller.CallQueued)
	b.do(t, http.MethodPost, "/v1/calls", createBody)
	b.do(t, http.MethodGet, "/v1/calls/"+string(c.ID), "")
	b.do(t, http.MethodGet, "/v1/calls/"+string(newUUID()), "")
	b.do(t, http.MethodGet, "/no/such/route/15551234567", "")
	b.do(t, http.MethodDelete, "/v1/calls", "")

	rec := b.do(t, http.MethodGet, "/metrics", "")
	require.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.String()
	for _, want := range []string{
		`http_requests_total{code="202",method="POST",route="/v1/calls"} 1`,
		`http_requests_total{code="200",method="GET",route="/v1/calls/:id"} 1`,
		`http_requests_total{code="404",method="GET",route="/v1/calls/:id"} 1`,
		`http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`http_requests_total{code="405",method="DELETE",route="/v1/calls"} 1`,
		`http_request_duration_seconds_bucket{code="202",method="POST",route="/v1/calls",le="+Inf"} 1`,
		`http_request_duration_seconds_count{code="200",method="GET",route="/v1/calls/:id"} 1`,
	} {
		require.Contains(t, body, want)
	}
	require.NotContains(t, body, string(c.ID), "raw URLs are never labels")
	require.NotContains(t, body, "15551234567")
}

func TestServersShareRegistry(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	a := api.New(api.Config{}, newFakeService(), reg, nil)
	b := api.New(api.Config{}, newFakeService(), reg, nil)
	for _, s := range []*api.Server{a, b} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		require.Equal(t, http.StatusOK, rec.Code)
	}
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Contains(t, rec.Body.String(), `http_requests_total{code="200",method="GET",route="/healthz"} 2`)
}

func TestLogsNeverHoldPhoneNumbersOrBodies(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := `{"to":"+15551234567","from":"+15557654321","variables":{"note":"body-marker"}}`
	b.do(t, http.MethodPost, "/v1/calls", body, "Idempotency-Key", "k1")
	b.do(t, http.MethodPost, "/v1/calls", body, "Idempotency-Key", "k1")
	b.do(t, http.MethodGet, "/v1/calls?to=%2B15551234567", "")
	b.do(t, http.MethodGet, "/v1/calls/+15551234567/events", "")
	b.do(t, http.MethodPost, "/v1/calls", `{"to":15551234567}`)
	b.svc.with(func(f *fakeService) { f.err = fmt.Errorf("insert failed for +15551234567") })
	b.do(t, http.MethodPost, "/v1/calls", body)

	logs := b.logs.String()
	require.NotEmpty(t, logs)
	for _, secret := range []string{"15551234567", "15557654321", "body-marker"} {
		require.NotContains(t, logs, secret)
	}
	require.Contains(t, logs, "****4567")
	require.Contains(t, logs, `"route":"/v1/calls"`)
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	auth := newFakeTokens()
	require.NoError(t, api.Config{Auth: auth}.Validate())
	require.NoError(t, api.Config{MaxBodyBytes: 1 << 20, Auth: auth}.Validate())
	for _, c := range []api.Config{{}, {MaxBodyBytes: -1, Auth: auth}, {RequestTimeout: -1, Auth: auth}, {ReadyTimeout: -1, Auth: auth}} {
		require.Error(t, c.Validate())
	}
}

func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	rec := setup(t).do(t, http.MethodGet, "/v1/openapi.yaml", "")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "application/yaml", rec.Header().Get("Content-Type"))
	want := readSpec(t)
	got, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
}
