package api_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/api"
	"github.com/callgate/callgate/controller"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// setupLimited serves the world with the default limits and a fake clock.
func setupLimited(t *testing.T) (*bundle, *world, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: fixedTime}
	w := newWorld()
	b := setup(t)
	b.srv = api.New(api.Config{Auth: b.tokens, Now: clock.Now, TokenLimit: api.DefaultTokenLimit, AnonLimit: api.DefaultAnonLimit}, w, nil, nil)
	b.srv.SetAudit(w.audit)
	b.h = b.srv.Handler()
	return b, w, clock
}

func TestRateLimitPerToken(t *testing.T) {
	t.Parallel()
	b, w, clock := setupLimited(t)
	alice := "Bearer " + b.tokens.issue(t, tenantA, controller.RoleAgent, "alice")
	for i := range api.DefaultTokenLimit.Burst {
		require.Equal(t, http.StatusOK, b.do(t, "GET", "/v1/calls", "", "Authorization", alice).Code, "request %d", i)
	}
	audited := len(w.audit.all())
	rec := b.do(t, "POST", "/v1/calls", `{"to":"+15557770300","from":"+15557770002"}`, "Authorization", alice)
	requireError(t, rec, http.StatusTooManyRequests, "rate_limited", "")
	require.Equal(t, "1", rec.Header().Get("Retry-After"))
	require.Len(t, w.audit.all(), audited, "a rate-limited request did nothing and is not audited")

	// Another token has its own bucket.
	qa := "Bearer " + b.tokens.issue(t, tenantA, controller.RoleQA, "")
	require.Equal(t, http.StatusOK, b.do(t, "GET", "/v1/calls", "", "Authorization", qa).Code)

	// 20 a second: one more every 50 ms.
	clock.Advance(50 * time.Millisecond)
	require.Equal(t, http.StatusOK, b.do(t, "GET", "/v1/calls", "", "Authorization", alice).Code)
	require.Equal(t, http.StatusTooManyRequests, b.do(t, "GET", "/v1/calls", "", "Authorization", alice).Code)
	clock.Advance(time.Hour)
	for range api.DefaultTokenLimit.Burst {
		require.Equal(t, http.StatusOK, b.do(t, "GET", "/v1/calls", "", "Authorization", alice).Code)
	}
	require.Equal(t, http.StatusTooManyRequests, b.do(t, "GET", "/v1/calls", "", "Authorization", alice).Code, "the bucket holds no more than its burst")

	// Open routes are not limited.
	require.Equal(t, http.StatusOK, b.do(t, "GET", "/healthz", "", "Authorization", alice).Code)
}

func TestRateLimitUnauthenticatedPerAddress(t *testing.T) {
	t.Parallel()
	b, w, clock := setupLimited(t)
	bad := func(addr string) *http.Request {
		req, _ := http.NewRequest("GET", "/v1/calls", nil)
		req.RemoteAddr = addr
		req.Header.Set("Authorization", "Bearer cg_unknown")
		return req
	}
	for range api.DefaultAnonLimit.Burst {
		requireError(t, b.serve(bad("192.0.2.7:1000")), http.StatusUnauthorized, "unauthorized", "")
	}
	audited := len(w.audit.all())
	rec := b.serve(bad("192.0.2.7:1001"))
	requireError(t, rec, http.StatusTooManyRequests, "rate_limited", "")
	require.Equal(t, "1", rec.Header().Get("Retry-After"), "2 a second: the next one in 500 ms")
	require.Len(t, w.audit.all(), audited, "a flood of bad tokens does not grow the audit log")

	// Another address has its own bucket, and a valid token from the
	// limited address is served: its IP's failures are not its budget.
	requireError(t, b.serve(bad("198.51.100.1:1000")), http.StatusUnauthorized, "unauthorized", "")
	good, _ := http.NewRequest("GET", "/v1/calls", nil)
	good.RemoteAddr = "192.0.2.7:1002"
	require.Equal(t, http.StatusOK, b.serve(good).Code)

	clock.Advance(500 * time.Millisecond)
	requireError(t, b.serve(bad("192.0.2.7:1003")), http.StatusUnauthorized, "unauthorized", "")
	requireError(t, b.serve(bad("192.0.2.7:1003")), http.StatusTooManyRequests, "rate_limited", "")
}

func TestRateLimitConfig(t *testing.T) {
	t.Parallel()
	ok := api.Config{Auth: newFakeTokens(), TokenLimit: api.RateLimit{Rate: 5, Burst: 5}}
	require.NoError(t, ok.Validate())
	for _, tt := range []struct {
		cfg   api.Config
		field string
	}{
		{api.Config{Auth: ok.Auth, TokenLimit: api.RateLimit{Rate: -1, Burst: 1}}, "TokenLimit.Rate"},
		{api.Config{Auth: ok.Auth, AnonLimit: api.RateLimit{Rate: 1, Burst: -1}}, "AnonLimit.Burst"},
		{api.Config{Auth: ok.Auth, TokenLimit: api.RateLimit{Rate: 1}}, "TokenLimit"},
	} {
		require.Equal(t, tt.field, controller.ErrorField(tt.cfg.Validate()))
	}
}
