package api_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/api"
	"github.com/callgate/callgate/controller"
)

// fakeTokens is an in-memory controller.TokenStore and TokenToucher.
type fakeTokens struct {
	mu      sync.Mutex
	byHash  map[string]controller.Token
	touches int
	err     error // returned by TokenBySecretHash when set
}

var (
	_ controller.TokenStore   = (*fakeTokens)(nil)
	_ controller.TokenToucher = (*fakeTokens)(nil)
)

func newFakeTokens() *fakeTokens { return &fakeTokens{byHash: map[string]controller.Token{}} }

// issue creates a token and returns its secret.
func (f *fakeTokens) issue(t testing.TB, tenant string, role controller.Role, agentID string) string {
	t.Helper()
	secret := controller.NewTokenSecret()
	_, err := f.CreateToken(context.Background(), controller.Token{TenantID: tenant, Role: role, AgentID: agentID},
		controller.HashTokenSecret(secret))
	require.NoError(t, err)
	return secret
}

func (f *fakeTokens) CreateToken(_ context.Context, t controller.Token, h []byte) (controller.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t.ID = string(newUUID())
	t.CreatedAt = time.Now()
	f.byHash[string(h)] = t
	return t, nil
}

func (f *fakeTokens) TokenBySecretHash(_ context.Context, h []byte) (controller.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return controller.Token{}, f.err
	}
	t, ok := f.byHash[string(h)]
	if !ok {
		return t, controller.Errorf(controller.ENOTFOUND, "token not found")
	}
	return t, nil
}

func (f *fakeTokens) update(id string, fn func(*controller.Token)) (controller.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for h, t := range f.byHash {
		if t.ID == id {
			fn(&t)
			f.byHash[h] = t
			return t, nil
		}
	}
	return controller.Token{}, controller.Errorf(controller.ENOTFOUND, "token not found")
}

func (f *fakeTokens) RevokeToken(_ context.Context, id string, at time.Time) (controller.Token, error) {
	return f.update(id, func(t *controller.Token) { t.RevokedAt = &at })
}

func (f *fakeTokens) ListTokens(_ context.Context, tenant string) ([]controller.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []controller.Token
	for _, t := range f.byHash {
		if tenant == "" || t.TenantID == tenant {
			out = append(out, t)
		}
	}
	return out, nil
}

func (f *fakeTokens) TouchToken(_ context.Context, id string, at time.Time) error {
	_, err := f.update(id, func(t *controller.Token) { t.LastUsed = &at })
	f.mu.Lock()
	f.touches++
	f.mu.Unlock()
	return err
}

// byID returns the token with the ID.
func (f *fakeTokens) byID(id string) controller.Token {
	t, _ := f.update(id, func(*controller.Token) {})
	return t
}

// fakeAudit is an in-memory controller.AuditLog.
type fakeAudit struct {
	mu      sync.Mutex
	entries []controller.AuditEntry
	err     error // returned by AppendAudit when set
}

func (f *fakeAudit) AppendAudit(_ context.Context, e controller.AuditEntry) (controller.AuditEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return e, f.err
	}
	e.Seq = int64(len(f.entries) + 1)
	e.PrevHash = make([]byte, 32)
	if n := len(f.entries); n > 0 {
		e.PrevHash = f.entries[n-1].Hash
	}
	e.Hash = controller.AuditHash(e)
	f.entries = append(f.entries, e)
	return e, nil
}

func (f *fakeAudit) ListAudit(_ context.Context, tenant string, after int64, limit int) ([]controller.AuditEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []controller.AuditEntry
	for _, e := range f.entries {
		if e.Seq > after && (tenant == "" || e.TenantID == tenant) && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (f *fakeAudit) all() []controller.AuditEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]controller.AuditEntry(nil), f.entries...)
}

func TestAuthenticationRequired(t *testing.T) {
	t.Parallel()
	b := setup(t)
	revoked := b.tokens.issue(t, controller.DefaultTenant, controller.RoleAdmin, "")
	tok, err := b.tokens.TokenBySecretHash(context.Background(), controller.HashTokenSecret(revoked))
	require.NoError(t, err)
	_, err = b.tokens.RevokeToken(context.Background(), tok.ID, time.Now().Add(-time.Second))
	require.NoError(t, err)
	expired := b.tokens.issue(t, controller.DefaultTenant, controller.RoleAdmin, "")
	tok, err = b.tokens.TokenBySecretHash(context.Background(), controller.HashTokenSecret(expired))
	require.NoError(t, err)
	_, err = b.tokens.update(tok.ID, func(t *controller.Token) { past := time.Now().Add(-time.Minute); t.ExpiresAt = &past })
	require.NoError(t, err)

	for name, auth := range map[string]string{
		"none":           "",
		"unknown":        "Bearer " + controller.NewTokenSecret(),
		"revoked":        "Bearer " + revoked,
		"expired":        "Bearer " + expired,
		"basic":          "Basic YWRtaW46YWRtaW4=",
		"no prefix":      "Bearer abcdef",
		"scheme only":    "Bearer",
		"secret as-is":   b.admin,
		"lowercase ok?!": "bearer " + controller.NewTokenSecret(),
	} {
		rec := b.do(t, http.MethodGet, "/v1/calls", "", "Authorization", auth)
		requireError(t, rec, http.StatusUnauthorized, "unauthorized", "")
		require.Contains(t, rec.Header().Get("WWW-Authenticate"), "Bearer", name)
	}
	// A query token is never read.
	rec := b.do(t, http.MethodGet, "/v1/calls?access_token="+b.admin, "", "Authorization", "")
	requireError(t, rec, http.StatusUnauthorized, "unauthorized", "")
	// Two headers are refused rather than guessed between.
	rec = b.do(t, http.MethodGet, "/v1/calls", "", "Authorization", "Bearer "+b.admin, "Authorization", "Bearer "+b.admin)
	requireError(t, rec, http.StatusUnauthorized, "unauthorized", "")

	// The scheme is case-insensitive; the valid token works.
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/v1/calls", "", "Authorization", "bearer "+b.admin).Code)
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/v1/calls", "").Code)

	// Open routes need no token.
	for _, p := range []string{"/healthz", "/metrics", "/v1/openapi.yaml"} {
		require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, p, "", "Authorization", "").Code, p)
	}
	require.NotContains(t, b.logs.String(), b.admin, "a secret is never logged")
}

func TestRevocationTakesEffectAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	secret := b.tokens.issue(t, controller.DefaultTenant, controller.RoleQA, "")
	auth := "Bearer " + secret
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/v1/calls", "", "Authorization", auth).Code)
	tok, err := b.tokens.TokenBySecretHash(context.Background(), controller.HashTokenSecret(secret))
	require.NoError(t, err)
	_, err = b.tokens.RevokeToken(context.Background(), tok.ID, time.Now())
	require.NoError(t, err)
	requireError(t, b.do(t, http.MethodGet, "/v1/calls", "", "Authorization", auth), http.StatusUnauthorized, "unauthorized", "")
}

func TestTokenLastUsedAtMostOnceAMinute(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	b := setup(t, api.Config{Now: clock})
	for range 5 {
		require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/v1/calls", "").Code)
	}
	require.Equal(t, 1, b.tokens.touches)
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/v1/calls", "").Code)
	require.Equal(t, 2, b.tokens.touches)
}

func TestTokenStoreFailureIsNot401(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tokens.mu.Lock()
	b.tokens.err = controller.Errorf(controller.EUNAVAILABLE, "database unreachable")
	b.tokens.mu.Unlock()
	requireError(t, b.do(t, http.MethodGet, "/v1/calls", ""), http.StatusServiceUnavailable, "unavailable", "")
}

func TestNoTokenStoreFailsClosed(t *testing.T) {
	t.Parallel()
	require.Error(t, api.Config{}.Validate())
	s := api.New(api.Config{}, newFakeService(), nil, nil)
	b := &bundle{h: s.Handler(), admin: controller.NewTokenSecret()}
	requireError(t, b.do(t, http.MethodGet, "/v1/calls", ""), http.StatusUnauthorized, "unauthorized", "")
}

// TestEveryRouteHasAPolicy fails when a route is registered without going
// through the policy table.
func TestEveryRouteHasAPolicy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	declared := map[string]api.Policy{}
	for _, rp := range b.srv.Policies() {
		declared[rp.Method+" "+rp.Path] = rp.Policy
	}
	routes := echoRoutes(t, b)
	require.NotEmpty(t, routes)
	for _, r := range routes {
		p, ok := declared[r]
		require.True(t, ok, "route %s has no policy", r)
		require.True(t, p.Open || len(p.Roles) > 0, r)
	}
	require.Len(t, declared, len(routes))
	open := []string{}
	for r, p := range declared {
		if p.Open {
			open = append(open, r)
		}
	}
	require.ElementsMatch(t, []string{"GET /healthz", "GET /readyz", "GET /metrics", "GET /v1/openapi.yaml"}, open)
}

func TestAuditHooks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	log := &fakeAudit{}
	b.srv.SetAudit(log)
	qa := b.tokens.issue(t, controller.DefaultTenant, controller.RoleQA, "")

	rec := b.do(t, http.MethodPost, "/v1/calls", createBody)
	require.Equal(t, http.StatusAccepted, rec.Code)
	var call api.CallResource
	decode(t, rec, &call)
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/v1/calls/"+string(call.ID), "").Code, "reads are not audited")
	requireError(t, b.do(t, http.MethodPost, "/v1/calls/"+string(call.ID)+"/hangup", `{"cause":"NOPE"}`), http.StatusBadRequest, "invalid", "cause")
	requireError(t, b.do(t, http.MethodPost, "/v1/calls", createBody, "Authorization", "Bearer "+qa), http.StatusForbidden, "forbidden", "")
	requireError(t, b.do(t, http.MethodGet, "/v1/switches", "", "Authorization", "Bearer "+qa), http.StatusForbidden, "forbidden", "")
	requireError(t, b.do(t, http.MethodGet, "/v1/calls", "", "Authorization", ""), http.StatusUnauthorized, "unauthorized", "")

	entries := log.all()
	require.Len(t, entries, 5)
	type row struct {
		action, target, outcome string
		status                  int
		role                    controller.Role
	}
	var got []row
	for _, e := range entries {
		got = append(got, row{e.Action, e.Target, e.Outcome, e.Status, e.Role})
		require.NotEmpty(t, e.RequestID)
		require.NotContains(t, e.Detail, "5551234567")
	}
	require.Equal(t, []row{
		{"POST /v1/calls", "", "ok", 202, controller.RoleAdmin},
		{"POST /v1/calls/:id/hangup", string(call.ID), "error", 400, controller.RoleAdmin},
		{"POST /v1/calls", "", "denied", 403, controller.RoleQA},
		{"GET /v1/switches", "", "denied", 403, controller.RoleQA},
		{"GET /v1/calls", "", "denied", 401, ""},
	}, got)
	require.Equal(t, controller.DefaultTenant, entries[0].TenantID)
	require.Equal(t, "", entries[4].TenantID, "an unknown token has no tenant")

	// The auditor reads the tenant's log; a QA cannot.
	auditor := b.tokens.issue(t, controller.DefaultTenant, controller.RoleAuditor, "")
	rec = b.do(t, http.MethodGet, "/v1/audit?after=1&limit=2", "", "Authorization", "Bearer "+auditor)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var page struct {
		Entries   []controller.AuditEntry `json:"entries"`
		NextAfter int64                   `json:"next_after"`
	}
	decode(t, rec, &page)
	require.Len(t, page.Entries, 2)
	require.Equal(t, int64(2), page.Entries[0].Seq)
	require.Equal(t, int64(3), page.NextAfter)
	requireError(t, b.do(t, http.MethodGet, "/v1/audit?limit=0", "", "Authorization", "Bearer "+auditor), http.StatusBadRequest, "invalid", "limit")
	requireError(t, b.do(t, http.MethodGet, "/v1/audit", "", "Authorization", "Bearer "+qa), http.StatusForbidden, "forbidden", "")

	// A failing audit log is logged; the answer stands.
	log.mu.Lock()
	log.err = controller.Errorf(controller.EUNAVAILABLE, "down")
	log.mu.Unlock()
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, "/v1/calls", createBody).Code)
	require.Contains(t, b.logs.String(), "appending to the audit log failed")
}
