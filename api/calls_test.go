package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/api"
	"github.com/callgate/callgate/controller"
)

const createBody = `{"to":"+15551234567","from":"+15557654321","caller_id_name":"Acme","switch":"fs1",
	"timeout_seconds":25,"variables":{"campaign":"spring"}}`

func TestCreateCall(t *testing.T) {
	t.Parallel()
	b := setup(t)

	rec := b.do(t, http.MethodPost, "/v1/calls", createBody)

	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	var got api.CallResource
	decode(t, rec, &got)
	require.Equal(t, "/v1/calls/"+string(got.ID), rec.Header().Get("Location"))
	require.Empty(t, rec.Header().Get("Idempotent-Replayed"))
	require.Equal(t, controller.CallQueued, got.State)
	require.Equal(t, "+15551234567", got.To)
	require.Equal(t, "+15557654321", got.From)
	require.Equal(t, "Acme", got.CallerIDName)
	require.Equal(t, "fs1", got.Switch)
	require.Equal(t, 25, got.TimeoutSeconds)
	require.Equal(t, map[string]string{"campaign": "spring"}, got.Variables)
	require.Nil(t, got.Events)
	b.svc.with(func(f *fakeService) {
		require.Equal(t, controller.CreateCallRequest{
			TenantID: controller.DefaultTenant, To: "+15551234567", From: "+15557654321",
			CallerIDName: "Acme", Switch: "fs1", TimeoutSeconds: 25,
			Variables: map[string]string{"campaign": "spring"},
		}, f.lastCreate)
	})
}

func TestCreateCallIdempotentReplay(t *testing.T) {
	t.Parallel()
	b := setup(t)

	first := b.do(t, http.MethodPost, "/v1/calls", createBody, "Idempotency-Key", "order-42")
	second := b.do(t, http.MethodPost, "/v1/calls", createBody, "Idempotency-Key", "order-42")

	require.Equal(t, http.StatusAccepted, first.Code, first.Body.String())
	require.Equal(t, http.StatusOK, second.Code, second.Body.String())
	require.Equal(t, "true", second.Header().Get("Idempotent-Replayed"))
	var a, c api.CallResource
	decode(t, first, &a)
	decode(t, second, &c)
	require.Equal(t, a, c)
	require.Equal(t, first.Header().Get("Location"), second.Header().Get("Location"))
	b.svc.with(func(f *fakeService) { require.Equal(t, "order-42", f.lastCreate.IdempotencyKey) })

	// The same key with another request is a conflict.
	other := strings.Replace(createBody, "+15551234567", "+15550000000", 1)
	requireError(t, b.do(t, http.MethodPost, "/v1/calls", other, "Idempotency-Key", "order-42"),
		http.StatusConflict, "conflict", "")
}

func TestIdempotencyKeyHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		values []string
		status int
	}{
		{"absent", nil, http.StatusAccepted},
		{"one char", []string{"k"}, http.StatusAccepted},
		{"255 chars", []string{strings.Repeat("k", 255)}, http.StatusAccepted},
		{"inner space and symbols", []string{"order 42/~!@#$%^&*()"}, http.StatusAccepted},
		{"empty", []string{""}, http.StatusBadRequest},
		{"256 chars", []string{strings.Repeat("k", 256)}, http.StatusBadRequest},
		{"control char", []string{"a\x01b"}, http.StatusBadRequest},
		{"DEL", []string{"a\x7fb"}, http.StatusBadRequest},
		{"non-ASCII", []string{"clé"}, http.StatusBadRequest},
		{"given twice", []string{"a", "b"}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			req := httptest.NewRequest(http.MethodPost, "/v1/calls", strings.NewReader(createBody))
			for _, v := range tt.values {
				req.Header.Add("Idempotency-Key", v)
			}
			rec := b.serve(req)
			if tt.status != http.StatusBadRequest {
				require.Equal(t, tt.status, rec.Code, rec.Body.String())
				return
			}
			requireError(t, rec, tt.status, "invalid", "Idempotency-Key")
			b.svc.with(func(f *fakeService) { require.Empty(t, f.lastCreate.To, "service must not be called") })
		})
	}
}

func TestCreateCallRejectsBadBodies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		body  string
		field string
	}{
		{"empty body", "", ""},
		{"whitespace only", "  \n ", ""},
		{"not JSON", "to=+15551234567", ""},
		{"truncated", `{"to":"+15551234567"`, ""},
		{"syntax error", `{"to" "+15551234567"}`, ""},
		{"array", `[{"to":"+15551234567"}]`, ""},
		{"null", `null`, ""},
		{"string", `"+15551234567"`, ""},
		{"trailing object", `{"to":"+15551234567"} {}`, ""},
		{"trailing garbage", `{"to":"+15551234567"}x`, ""},
		{"to is a number", `{"to":15551234567,"from":"+15557654321"}`, "to"},
		{"from is a bool", `{"to":"+15551234567","from":true}`, "from"},
		{"caller_id_name is an object", `{"to":"1","caller_id_name":{}}`, "caller_id_name"},
		{"switch is an array", `{"to":"1","switch":["fs1"]}`, "switch"},
		{"timeout is a string", `{"to":"1","timeout_seconds":"30"}`, "timeout_seconds"},
		{"timeout is fractional", `{"to":"1","timeout_seconds":1.5}`, "timeout_seconds"},
		{"timeout overflows", `{"to":"1","timeout_seconds":1e40}`, "timeout_seconds"},
		{"variables is an array", `{"to":"1","variables":["a"]}`, "variables"},
		{"variables is a string", `{"to":"1","variables":"a=b"}`, "variables"},
		{"variable value is a number", `{"to":"1","variables":{"a":"x","b":2}}`, "variables.b"},
		{"variable value is null", `{"to":"1","variables":{"a":null}}`, "variables.a"},
		{"unknown field", `{"to":"1","priority":5}`, "priority"},
		{"field in other case", `{"TO":"+15551234567"}`, "TO"},
		{"duplicate field", `{"to":"1","to":"2"}`, "to"},
		{"domain validation", `{"from":"+15557654321"}`, "to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			rec := b.do(t, http.MethodPost, "/v1/calls", tt.body)
			requireError(t, rec, http.StatusBadRequest, "invalid", tt.field)
			require.NotContains(t, rec.Body.String(), "15551234567", "errors must not echo the input")
		})
	}
}

func TestCreateCallUnknownSwitch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := b.do(t, http.MethodPost, "/v1/calls", `{"to":"+15551234567","from":"+15557654321","switch":"nope"}`)
	requireError(t, rec, http.StatusNotFound, "not_found", "switch")
}

func TestCreateCallContentType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		contentType string
		status      int
	}{
		{"", http.StatusAccepted},
		{"application/json", http.StatusAccepted},
		{"application/json; charset=utf-8", http.StatusAccepted},
		{"application/merge-patch+json", http.StatusAccepted},
		{"application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"text/plain", http.StatusUnsupportedMediaType},
		{"garbage;;", http.StatusUnsupportedMediaType},
	}
	for _, tt := range tests {
		t.Run(tt.contentType, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			req := httptest.NewRequest(http.MethodPost, "/v1/calls", strings.NewReader(createBody))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			rec := b.serve(req)
			if tt.status == http.StatusUnsupportedMediaType {
				requireError(t, rec, tt.status, "unsupported_media_type", "Content-Type")
				return
			}
			require.Equal(t, tt.status, rec.Code, rec.Body.String())
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	t.Parallel()
	huge := `{"to":"+15551234567","caller_id_name":"` + strings.Repeat("x", api.DefaultMaxBodyBytes) + `"}`
	tests := []struct {
		name          string
		cfg           api.Config
		target        string
		body          string
		unknownLength bool // chunked: only reading finds out
	}{
		{"declared length", api.Config{}, "/v1/calls", huge, false},
		{"chunked", api.Config{}, "/v1/calls", huge, true},
		{"configured limit", api.Config{MaxBodyBytes: 16}, "/v1/calls", createBody, false},
		{"configured limit chunked", api.Config{MaxBodyBytes: 16}, "/v1/calls", createBody, true},
		{"hangup", api.Config{}, "/v1/calls/" + string(newUUID()) + "/hangup", huge, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tt.cfg)
			req := httptest.NewRequest(http.MethodPost, tt.target, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			if tt.unknownLength {
				req.ContentLength = -1
			}
			requireError(t, b.serve(req), http.StatusRequestEntityTooLarge, "too_large", "")
		})
	}
}

func TestGetCall(t *testing.T) {
	t.Parallel()
	b := setup(t)
	answered := fixedTime.Add(3 * time.Second)
	c := b.svc.seed(controller.CallAnswered)
	ev := controller.CallEventRecord{ID: 7, CallID: c.ID, FromState: controller.CallRinging, ToState: controller.CallAnswered,
		Event:      controller.ChannelEvent{Switch: "fs1", CallID: c.ID, Kind: controller.EventAnswer, Name: "CHANNEL_ANSWER", Sequence: 12, At: answered},
		RecordedAt: answered}
	b.svc.with(func(f *fakeService) {
		cc := f.calls[c.ID]
		cc.AnsweredAt = &answered
		f.calls[c.ID] = cc
		f.events[c.ID] = []controller.CallEventRecord{ev}
	})

	t.Run("plain", func(t *testing.T) {
		t.Parallel()
		rec := b.do(t, http.MethodGet, "/v1/calls/"+string(c.ID), "")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		var got api.CallResource
		decode(t, rec, &got)
		require.Equal(t, c.ID, got.ID)
		require.Equal(t, controller.CallAnswered, got.State)
		require.Equal(t, 30, got.TimeoutSeconds)
		require.Equal(t, answered, *got.AnsweredAt)
		require.NotContains(t, rec.Body.String(), `"events"`)
		require.NotContains(t, rec.Body.String(), `"tenant_id"`)
	})
	t.Run("include events", func(t *testing.T) {
		t.Parallel()
		rec := b.do(t, http.MethodGet, "/v1/calls/"+string(c.ID)+"?include=events", "")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		var got api.CallResource
		decode(t, rec, &got)
		require.Equal(t, []controller.CallEventRecord{ev}, got.Events)
	})
	t.Run("include events when there are none", func(t *testing.T) {
		t.Parallel()
		q := b.svc.seed(controller.CallQueued)
		rec := b.do(t, http.MethodGet, "/v1/calls/"+string(q.ID)+"?include=events", "")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		require.Contains(t, rec.Body.String(), `"events":[]`)
	})
	t.Run("events route", func(t *testing.T) {
		t.Parallel()
		rec := b.do(t, http.MethodGet, "/v1/calls/"+string(c.ID)+"/events", "")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		var got api.EventList
		decode(t, rec, &got)
		require.Equal(t, []controller.CallEventRecord{ev}, got.Events)
	})
	t.Run("events route when there are none", func(t *testing.T) {
		t.Parallel()
		q := b.svc.seed(controller.CallQueued)
		rec := b.do(t, http.MethodGet, "/v1/calls/"+string(q.ID)+"/events", "")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		require.JSONEq(t, `{"events":[]}`, rec.Body.String())
	})
}

func TestGetCallErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.svc.seed(controller.CallQueued)
	tests := []struct {
		name   string
		target string
		status int
		code   string
		field  string
	}{
		{"unknown call", "/v1/calls/" + string(newUUID()), http.StatusNotFound, "not_found", ""},
		{"unknown call events", "/v1/calls/" + string(newUUID()) + "/events", http.StatusNotFound, "not_found", ""},
		{"not a UUID", "/v1/calls/15551234567", http.StatusNotFound, "not_found", ""},
		{"not a UUID events", "/v1/calls/abc/events", http.StatusNotFound, "not_found", ""},
		{"bad include", "/v1/calls/" + string(c.ID) + "?include=recordings", http.StatusBadRequest, "invalid", "include"},
		{"unknown query parameter", "/v1/calls/" + string(c.ID) + "?expand=1", http.StatusBadRequest, "invalid", "expand"},
		{"repeated include", "/v1/calls/" + string(c.ID) + "?include=events&include=events", http.StatusBadRequest, "invalid", "include"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			requireError(t, b.do(t, http.MethodGet, tt.target, ""), tt.status, tt.code, tt.field)
		})
	}
}

func TestListCalls(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var ids []controller.CallID
	for range 3 {
		ids = append(ids, b.svc.seed(controller.CallQueued).ID)
	}

	rec := b.do(t, http.MethodGet, "/v1/calls?limit=2&state=queued", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var page api.CallList
	decode(t, rec, &page)
	require.Len(t, page.Calls, 2)
	require.Equal(t, ids[2], page.Calls[0].ID, "newest first")
	require.Equal(t, "after:"+string(ids[1]), page.NextCursor)
	link := rec.Header().Get("Link")
	require.Equal(t, `</v1/calls?cursor=after%3A`+string(ids[1])+`&limit=2&state=queued>; rel="next"`, link)

	// Follow the link.
	next := strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
	rec = b.do(t, http.MethodGet, next, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	b.svc.with(func(f *fakeService) { require.Equal(t, "after:"+string(ids[1]), f.lastFilter.Cursor) })

	// Last page: no cursor, no Link.
	rec = b.do(t, http.MethodGet, "/v1/calls", "")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Empty(t, rec.Header().Get("Link"))
	require.NotContains(t, rec.Body.String(), "next_cursor")
}

func TestListCallsEmpty(t *testing.T) {
	t.Parallel()
	rec := setup(t).do(t, http.MethodGet, "/v1/calls", "")
	require.Equal(t, http.StatusOK, rec.Code)
	require.JSONEq(t, `{"calls":[]}`, rec.Body.String())
}

func TestListCallsFilters(t *testing.T) {
	t.Parallel()
	after := time.Date(2025, 1, 31, 9, 0, 0, 0, time.UTC)
	before := time.Date(2025, 2, 1, 9, 0, 0, 500_000_000, time.FixedZone("", 2*3600))
	tests := []struct {
		name  string
		query string
		want  controller.CallFilter
	}{
		{"none", "", controller.CallFilter{}},
		{"state", "state=failed", controller.CallFilter{State: controller.CallFailed}},
		{"switch", "switch=fs2", controller.CallFilter{Switch: "fs2"}},
		{"to encoded", "to=%2B15551234567", controller.CallFilter{To: "+15551234567"}},
		{"to with raw plus", "to=+15551234567", controller.CallFilter{To: "+15551234567"}},
		{"to without plus", "to=15551234567", controller.CallFilter{To: "15551234567"}},
		{"limit", "limit=200", controller.CallFilter{Limit: 200}},
		{"cursor", "cursor=abc", controller.CallFilter{Cursor: "abc"}},
		{"times", "created_after=2025-01-31T09:00:00Z&created_before=2025-02-01T09:00:00.5%2B02:00",
			controller.CallFilter{CreatedAfter: after, CreatedBefore: before}},
		{"empty values", "state=&limit=&created_after=", controller.CallFilter{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			rec := b.do(t, http.MethodGet, "/v1/calls?"+tt.query, "")
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			tt.want.TenantID = controller.DefaultTenant
			b.svc.with(func(f *fakeService) {
				require.True(t, tt.want.CreatedAfter.Equal(f.lastFilter.CreatedAfter))
				require.True(t, tt.want.CreatedBefore.Equal(f.lastFilter.CreatedBefore))
				tt.want.CreatedAfter, tt.want.CreatedBefore = f.lastFilter.CreatedAfter, f.lastFilter.CreatedBefore
				require.Equal(t, tt.want, f.lastFilter)
			})
		})
	}
}

func TestListCallsRejectsBadQueries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		query string
		field string
	}{
		{"limit zero", "limit=0", "limit"},
		{"limit too big", "limit=201", "limit"},
		{"limit negative", "limit=-1", "limit"},
		{"limit not a number", "limit=ten", "limit"},
		{"limit fractional", "limit=1.5", "limit"},
		{"created_after date only", "created_after=2025-01-31", "created_after"},
		{"created_after unix", "created_after=1738314000", "created_after"},
		{"created_before no zone", "created_before=2025-01-31T09:00:00", "created_before"},
		{"window inverted", "created_after=2025-02-01T00:00:00Z&created_before=2025-01-01T00:00:00Z", "created_before"},
		{"window empty", "created_after=2025-02-01T00:00:00Z&created_before=2025-02-01T00:00:00Z", "created_before"},
		{"unknown parameter", "status=failed", "status"},
		{"repeated parameter", "state=failed&state=queued", "state"},
		{"malformed cursor (store's verdict)", "cursor=garbage", "cursor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			requireError(t, setup(t).do(t, http.MethodGet, "/v1/calls?"+tt.query, ""),
				http.StatusBadRequest, "invalid", tt.field)
		})
	}
}

func TestHangupCall(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		state     controller.CallState
		body      string
		status    int
		wantState controller.CallState
		wantCause string
	}{
		{"queued call is canceled", controller.CallQueued, "", http.StatusOK, controller.CallCanceled, ""},
		{"live call, no body", controller.CallAnswered, "", http.StatusAccepted, controller.CallAnswered, ""},
		{"live call, empty object", controller.CallRinging, "{}", http.StatusAccepted, controller.CallRinging, ""},
		{"live call with cause", controller.CallAnswered, `{"cause":"USER_BUSY"}`, http.StatusAccepted, controller.CallAnswered, "USER_BUSY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			c := b.svc.seed(tt.state)
			rec := b.do(t, http.MethodPost, "/v1/calls/"+string(c.ID)+"/hangup", tt.body)
			require.Equal(t, tt.status, rec.Code, rec.Body.String())
			var got api.CallResource
			decode(t, rec, &got)
			require.Equal(t, tt.wantState, got.State)
			b.svc.with(func(f *fakeService) { require.Equal(t, tt.wantCause, f.lastCause) })
		})
	}
}

func TestHangupCallErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		state  controller.CallState // "" for an unknown call
		body   string
		status int
		code   string
		field  string
	}{
		{"unknown cause", controller.CallAnswered, `{"cause":"BECAUSE"}`, http.StatusBadRequest, "invalid", "cause"},
		{"cause is a number", controller.CallAnswered, `{"cause":16}`, http.StatusBadRequest, "invalid", "cause"},
		{"unknown field", controller.CallAnswered, `{"reason":"x"}`, http.StatusBadRequest, "invalid", "reason"},
		{"malformed", controller.CallAnswered, `{"cause":`, http.StatusBadRequest, "invalid", ""},
		{"already ended", controller.CallCompleted, "", http.StatusConflict, "conflict", ""},
		{"unknown call", "", "", http.StatusNotFound, "not_found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			id := newUUID()
			if tt.state != "" {
				id = b.svc.seed(tt.state).ID
			}
			requireError(t, b.do(t, http.MethodPost, "/v1/calls/"+string(id)+"/hangup", tt.body), tt.status, tt.code, tt.field)
		})
	}
}
