package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/api"
	"github.com/callgate/callgate/controller"
)

// fakeService is an in-memory controller.CallService with just enough
// domain behaviour to drive every handler branch.
type fakeService struct {
	mu       sync.Mutex
	calls    map[controller.CallID]controller.Call
	order    []controller.CallID
	keys     map[string]controller.CallID
	events   map[controller.CallID][]controller.CallEventRecord
	switches []controller.SwitchStatus
	forget   bool // do not keep created calls (fuzzing)

	err      error  // when set, every call-data method returns it
	readyErr error  // returned by Ready
	panicMsg string // when set, every call-data method panics with it

	lastCreate controller.CreateCallRequest
	lastFilter controller.CallFilter
	lastCause  string
}

var _ controller.CallService = (*fakeService)(nil)

var fixedTime = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

func newFakeService() *fakeService {
	return &fakeService{
		calls:  map[controller.CallID]controller.Call{},
		keys:   map[string]controller.CallID{},
		events: map[controller.CallID][]controller.CallEventRecord{},
	}
}

func newUUID() controller.CallID {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return controller.CallID(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
}

// fail returns the configured error or panics; callers hold f.mu.
func (f *fakeService) fail() error {
	if f.panicMsg != "" {
		panic(f.panicMsg)
	}
	return f.err
}

func (f *fakeService) CheckCompliance(_ context.Context, req controller.CheckRequest) (controller.Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(); err != nil {
		return controller.Decision{}, err
	}
	d := controller.Decision{Allow: req.To != "+12125550000", Stage: controller.StageCreate, Number: req.To, PolicyID: "fake", PolicyVersion: 1}
	if !d.Allow {
		d.Reasons = []string{controller.ReasonRefused}
	}
	return d, nil
}

func (f *fakeService) GetAttempt(_ context.Context, tenant string, id controller.CallID) (controller.Attempt, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(); err != nil {
		return controller.Attempt{}, err
	}
	c, ok := f.calls[id]
	if !ok {
		return controller.Attempt{}, controller.Errorf(controller.ENOTFOUND, "call not found")
	}
	return controller.Attempt{ID: c.AttemptID, CallID: id, TenantID: tenant, Status: "queued", CreatedAt: c.CreatedAt}, nil
}

func (f *fakeService) CreateCall(_ context.Context, req controller.CreateCallRequest) (controller.Call, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastCreate = req
	if err := f.fail(); err != nil {
		return controller.Call{}, false, err
	}
	if req.To == "" {
		return controller.Call{}, false, controller.FieldError("to", "is required")
	}
	if req.Switch == "nope" {
		return controller.Call{}, false, &controller.Error{Code: controller.ENOTFOUND, Field: "switch", Message: "no such switch"}
	}
	if id, ok := f.keys[req.IdempotencyKey]; ok && req.IdempotencyKey != "" {
		c := f.calls[id]
		if c.To != req.To {
			return controller.Call{}, false, controller.Errorf(controller.ECONFLICT, "idempotency key used with another request")
		}
		return c, false, nil
	}
	c := controller.Call{
		ID: newUUID(), TenantID: req.TenantID, AttemptID: 1, Switch: req.Switch,
		To: req.To, From: req.From, CallerIDName: req.CallerIDName,
		Timeout: time.Duration(req.TimeoutSeconds) * time.Second, Variables: req.Variables,
		State: controller.CallQueued, IdempotencyKey: req.IdempotencyKey,
		CreatedAt: fixedTime, UpdatedAt: fixedTime,
	}
	if !f.forget {
		f.put(c)
		if req.IdempotencyKey != "" {
			f.keys[req.IdempotencyKey] = c.ID
		}
	}
	return c, true, nil
}

func (f *fakeService) put(c controller.Call) {
	if _, ok := f.calls[c.ID]; !ok {
		f.order = append(f.order, c.ID)
	}
	f.calls[c.ID] = c
}

func (f *fakeService) GetCall(_ context.Context, _ string, id controller.CallID) (controller.Call, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(); err != nil {
		return controller.Call{}, fmt.Errorf("getting call %s: %w", id, err)
	}
	c, ok := f.calls[id]
	if !ok {
		return controller.Call{}, controller.Errorf(controller.ENOTFOUND, "call not found")
	}
	return c, nil
}

func (f *fakeService) ListCalls(_ context.Context, flt controller.CallFilter) (controller.CallPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastFilter = flt
	if err := f.fail(); err != nil {
		return controller.CallPage{}, err
	}
	if flt.Cursor == "garbage" {
		return controller.CallPage{}, controller.FieldError("cursor", "malformed cursor")
	}
	limit := flt.Limit
	if limit == 0 {
		limit = 50
	}
	var page controller.CallPage
	for i := len(f.order) - 1; i >= 0; i-- { // newest first
		if len(page.Calls) == limit {
			page.NextCursor = "after:" + string(page.Calls[limit-1].ID)
			break
		}
		page.Calls = append(page.Calls, f.calls[f.order[i]])
	}
	return page, nil
}

func (f *fakeService) CallEvents(_ context.Context, _ string, id controller.CallID) ([]controller.CallEventRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(); err != nil {
		return nil, err
	}
	if _, ok := f.calls[id]; !ok {
		return nil, controller.Errorf(controller.ENOTFOUND, "call not found")
	}
	return f.events[id], nil
}

func (f *fakeService) TagCall(_ context.Context, _ string, id controller.CallID, tags map[string]string, disposition string) (controller.Call, error) {
	return controller.Call{ID: id, State: controller.CallCompleted, Tags: tags, Disposition: disposition}, nil
}

func (f *fakeService) HangupCall(_ context.Context, _ string, id controller.CallID, cause string) (controller.Call, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastCause = cause
	if err := f.fail(); err != nil {
		return controller.Call{}, err
	}
	if cause != "" && !controller.ValidHangupCause(cause) {
		return controller.Call{}, controller.FieldError("cause", "unknown hangup cause %q", cause)
	}
	c, ok := f.calls[id]
	switch {
	case !ok:
		return controller.Call{}, controller.Errorf(controller.ENOTFOUND, "call not found")
	case c.State == controller.CallQueued:
		c.State = controller.CallCanceled
		f.put(c)
		return c, nil
	case c.State.Terminal():
		return c, controller.Errorf(controller.ECONFLICT, "call has already ended (%s)", c.State)
	}
	return c, nil
}

func (f *fakeService) Switches(context.Context) []controller.SwitchStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.switches
}

func (f *fakeService) Ready(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readyErr
}

// with runs fn holding the fake's lock, to set it up or inspect it.
func (f *fakeService) with(fn func(f *fakeService)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// seed stores a call in the given state and returns it.
func (f *fakeService) seed(state controller.CallState) controller.Call {
	c := controller.Call{
		ID: newUUID(), TenantID: controller.DefaultTenant, To: "+15551234567", From: "+15557654321",
		State: state, CreatedAt: fixedTime, UpdatedAt: fixedTime, Timeout: 30 * time.Second,
	}
	f.with(func(f *fakeService) { f.put(c) })
	return c
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// bundle is everything a test needs: the handler, its fake service, its
// registry and what it logged.
type bundle struct {
	h    http.Handler
	srv  *api.Server
	svc  *fakeService
	reg  *prometheus.Registry
	logs *syncBuffer
	// tokens holds the API tokens; admin is the secret of an admin token
	// of the default tenant, sent by do and serve unless the request
	// carries an Authorization header (an empty one is removed: no token).
	tokens *fakeTokens
	admin  string
}

// withTokens returns cfg with a fake token store holding an admin token of
// the default tenant, and that token's secret.
func withTokens(t testing.TB, cfg api.Config) (api.Config, *fakeTokens, string) {
	t.Helper()
	toks, ok := cfg.Auth.(*fakeTokens)
	if !ok {
		toks = newFakeTokens()
		cfg.Auth = toks
	}
	return cfg, toks, toks.issue(t, controller.DefaultTenant, controller.RoleAdmin, "")
}

func setup(t testing.TB, cfg ...api.Config) *bundle {
	t.Helper()
	var c api.Config
	if len(cfg) > 0 {
		c = cfg[0]
	}
	b := &bundle{svc: newFakeService(), reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	c, b.tokens, b.admin = withTokens(t, c)
	logger := slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b.srv = api.New(c, b.svc, b.reg, logger)
	b.h = b.srv.Handler()
	return b
}

// do serves one request; headers come in name, value pairs.
func (b *bundle) do(t testing.TB, method, target, body string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return b.serve(req)
}

func (b *bundle) serve(req *http.Request) *httptest.ResponseRecorder {
	if v, ok := req.Header["Authorization"]; !ok {
		req.Header.Set("Authorization", "Bearer "+b.admin)
	} else if len(v) == 1 && v[0] == "" {
		req.Header.Del("Authorization")
	}
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	return rec
}

// decode strictly decodes a JSON response body into v.
func decode(t testing.TB, rec *httptest.ResponseRecorder, v any) {
	t.Helper()
	require.Contains(t, rec.Header().Get("Content-Type"), "application/json", "body: %s", rec.Body.String())
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(v), "body: %s", rec.Body.String())
}

// requireError checks rec is the one error shape with the given status,
// code and field, and returns the detail.
func requireError(t testing.TB, rec *httptest.ResponseRecorder, status int, code, field string) api.ErrorDetail {
	t.Helper()
	require.Equal(t, status, rec.Code, "body: %s", rec.Body.String())
	var body api.ErrorResponse
	decode(t, rec, &body)
	require.Equal(t, code, body.Error.Code, "body: %s", rec.Body.String())
	require.Equal(t, field, body.Error.Field, "body: %s", rec.Body.String())
	require.NotEmpty(t, body.Error.Message)
	require.NotEmpty(t, body.Error.RequestID)
	require.Equal(t, rec.Header().Get("X-Request-Id"), body.Error.RequestID)
	return body.Error
}

// validErrorCodes are the codes the error shape may carry.
var validErrorCodes = []string{"invalid", "not_found", "method_not_allowed", "conflict", "too_large",
	"unsupported_media_type", "internal", "unavailable", "refused", "unauthorized", "forbidden", "rate_limited"}

func isErrorCode(code string) bool { return slices.Contains(validErrorCodes, code) }
