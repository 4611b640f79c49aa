package postgres_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/postgres"
)

// countingTokens counts the lookups that reach the database.
type countingTokens struct {
	*postgres.Store
	lookups atomic.Int64
}

func (c *countingTokens) TokenBySecretHash(ctx context.Context, h []byte) (controller.Token, error) {
	c.lookups.Add(1)
	return c.Store.TokenBySecretHash(ctx, h)
}

// events records a cache's listener events and lets a test wait for one.
type events struct {
	mu   sync.Mutex
	seen map[string]int
	wake chan struct{}
}

func newEvents() *events { return &events{seen: map[string]int{}, wake: make(chan struct{})} }

func (e *events) add(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seen[name]++
	close(e.wake)
	e.wake = make(chan struct{})
}

// await waits until name has been seen n times in all.
func (e *events) await(t *testing.T, name string, n int) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		e.mu.Lock()
		got, wake := e.seen[name], e.wake
		e.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-wake:
		case <-timeout:
			t.Fatalf("listener event %q seen %d times, want %d", name, got, n)
		}
	}
}

// tokenCache is one controller's cache over the test's schema, started.
type tokenCache struct {
	*postgres.TokenCache
	db     *countingTokens
	events *events
}

func newTokenCache(t *testing.T, b *bundle, cfg postgres.TokenCacheConfig, beforeInsert func()) *tokenCache {
	t.Helper()
	// A pool of its own, as another controller process would have.
	db, err := postgres.OpenConfig(b.ctx, b.store.DB().Pool().Config())
	require.NoError(t, err)
	t.Cleanup(db.Close)
	tc := &tokenCache{db: &countingTokens{Store: postgres.NewStore(db)}, events: newEvents()}
	tc.TokenCache = postgres.NewTokenCache(db, tc.db, cfg)
	postgres.SetTokenCacheHooks(tc.TokenCache, beforeInsert, tc.events.add)
	t.Cleanup(tc.Close)
	require.NoError(t, tc.Start(b.ctx))
	tc.events.await(t, "up", 1)
	return tc
}

func (b *bundle) token(t *testing.T, role controller.Role) (controller.Token, []byte) {
	t.Helper()
	secret := controller.NewTokenSecret()
	tok, err := b.store.CreateToken(b.ctx, controller.Token{TenantID: controller.DefaultTenant, Role: role},
		controller.HashTokenSecret(secret))
	require.NoError(t, err)
	return tok, controller.HashTokenSecret(secret)
}

func TestTokenCacheServesVerifiedTokensFromMemory(t *testing.T) {
	b := setup(t)
	c := newTokenCache(t, b, postgres.TokenCacheConfig{}, nil)
	tok, h := b.token(t, controller.RoleAdmin)
	for range 3 {
		got, err := c.TokenBySecretHash(b.ctx, h)
		require.NoError(t, err)
		require.Equal(t, tok.ID, got.ID)
		require.True(t, got.Usable(time.Now()))
	}
	require.EqualValues(t, 1, c.db.lookups.Load(), "one database lookup, then memory")
	require.Equal(t, 1, c.Len())

	// Unknown tokens are never cached: each try asks the database.
	for range 2 {
		_, err := c.TokenBySecretHash(b.ctx, controller.HashTokenSecret("cg_unknown"))
		requireCode(t, controller.ENOTFOUND, err)
	}
	require.EqualValues(t, 3, c.db.lookups.Load())

	// A caller cannot change what the cache holds.
	got, err := c.TokenBySecretHash(b.ctx, h)
	require.NoError(t, err)
	past := time.Now().Add(-time.Hour)
	got.RevokedAt = &past
	got, err = c.TokenBySecretHash(b.ctx, h)
	require.NoError(t, err)
	require.Nil(t, got.RevokedAt)
}

func TestTokenCacheRevocationIsImmediateOnEveryController(t *testing.T) {
	b := setup(t)
	one := newTokenCache(t, b, postgres.TokenCacheConfig{}, nil)
	two := newTokenCache(t, b, postgres.TokenCacheConfig{}, nil)
	tok, h := b.token(t, controller.RoleQA)
	for _, c := range []*tokenCache{one, two} {
		got, err := c.TokenBySecretHash(b.ctx, h)
		require.NoError(t, err)
		require.True(t, got.Usable(time.Now()))
		require.Equal(t, 1, c.Len())
	}

	// Revoked by another process (callgate token revoke): once the
	// barrier returns, neither controller accepts the token, with no
	// waiting of the test's own.
	_, err := b.store.RevokeToken(b.ctx, tok.ID, time.Now())
	require.NoError(t, err)
	synced, err := b.store.SyncTokenCaches(b.ctx)
	require.NoError(t, err)
	require.Equal(t, 2, synced.Confirmed)
	require.Empty(t, synced.Pending)
	for _, c := range []*tokenCache{one, two} {
		got, err := c.TokenBySecretHash(b.ctx, h)
		require.NoError(t, err)
		require.False(t, got.Usable(time.Now()), "revoked at once")
	}

	// Revoked through a controller: its own cache is cleared before the
	// call returns.
	tok2, h2 := b.token(t, controller.RoleAdmin)
	_, err = one.TokenBySecretHash(b.ctx, h2)
	require.NoError(t, err)
	_, err = one.RevokeToken(b.ctx, tok2.ID, time.Now())
	require.NoError(t, err)
	got, err := one.TokenBySecretHash(b.ctx, h2)
	require.NoError(t, err)
	require.False(t, got.Usable(time.Now()))

	// Any change by hand that alters a token clears the caches too.
	tok3, h3 := b.token(t, controller.RoleAdmin)
	_, err = two.TokenBySecretHash(b.ctx, h3)
	require.NoError(t, err)
	_, err = b.store.DB().Pool().Exec(b.ctx, `UPDATE api_tokens SET role = 'auditor' WHERE id = $1`, tok3.ID)
	require.NoError(t, err)
	_, err = b.store.SyncTokenCaches(b.ctx)
	require.NoError(t, err)
	got, err = two.TokenBySecretHash(b.ctx, h3)
	require.NoError(t, err)
	require.Equal(t, controller.RoleAuditor, got.Role)
	_, err = b.store.DB().Pool().Exec(b.ctx, `DELETE FROM api_tokens WHERE id = $1`, tok3.ID)
	require.NoError(t, err)
	_, err = b.store.SyncTokenCaches(b.ctx)
	require.NoError(t, err)
	_, err = two.TokenBySecretHash(b.ctx, h3)
	requireCode(t, controller.ENOTFOUND, err)
}

func TestTokenCacheDoesNotCacheWhatARevocationRaced(t *testing.T) {
	b := setup(t)
	var tok controller.Token
	var once sync.Once
	// Between the database lookup and its caching, the token is revoked
	// elsewhere and every cache has processed it.
	c := newTokenCache(t, b, postgres.TokenCacheConfig{}, func() {
		once.Do(func() {
			_, err := b.store.RevokeToken(b.ctx, tok.ID, time.Now())
			require.NoError(t, err)
			_, err = b.store.SyncTokenCaches(b.ctx)
			require.NoError(t, err)
		})
	})
	tok, h := b.token(t, controller.RoleAdmin)
	got, err := c.TokenBySecretHash(b.ctx, h)
	require.NoError(t, err)
	require.True(t, got.Usable(time.Now()), "read before the revocation")
	require.Zero(t, c.Len(), "but not cached")
	got, err = c.TokenBySecretHash(b.ctx, h)
	require.NoError(t, err)
	require.False(t, got.Usable(time.Now()))
}

func TestTokenCacheBypassedWhileItsListenerIsDown(t *testing.T) {
	b := setup(t)
	c := newTokenCache(t, b, postgres.TokenCacheConfig{}, nil)
	_, h := b.token(t, controller.RoleAdmin)
	_, err := c.TokenBySecretHash(b.ctx, h)
	require.NoError(t, err)
	require.Equal(t, 1, c.Len())

	// Kill the listening backend: notifications may be missed, so the cache
	// is emptied and every lookup goes to the database until it is back.
	var killed int
	require.NoError(t, b.store.DB().Pool().QueryRow(b.ctx, `
		SELECT count(pg_terminate_backend(l.pid)) FROM token_cache_listeners l
		JOIN pg_stat_activity a ON a.pid = l.pid AND a.backend_start = l.backend_start`).Scan(&killed))
	require.Equal(t, 1, killed)
	c.events.await(t, "down", 1)
	// The listener may already be back; count lookups only if it is not.
	before := c.db.lookups.Load()
	_, err = c.TokenBySecretHash(b.ctx, h)
	require.NoError(t, err)
	require.Equal(t, before+1, c.db.lookups.Load(), "emptied when the listener went down")

	c.events.await(t, "up", 2)
	_, err = c.TokenBySecretHash(b.ctx, h)
	require.NoError(t, err)
	before = c.db.lookups.Load()
	_, err = c.TokenBySecretHash(b.ctx, h)
	require.NoError(t, err)
	require.Equal(t, before, c.db.lookups.Load(), "cached again once back")
	synced, err := b.store.SyncTokenCaches(b.ctx)
	require.NoError(t, err)
	require.Equal(t, 1, synced.Confirmed, "the dead listener is not waited for")
}

func TestTokenCacheBoundsAndTTL(t *testing.T) {
	b := setup(t)
	var now atomic.Pointer[time.Time]
	start := time.Now()
	now.Store(&start)
	c := newTokenCache(t, b, postgres.TokenCacheConfig{Size: 2, TTL: time.Minute,
		Now: func() time.Time { return *now.Load() }}, nil)
	var hashes [][]byte
	for range 3 {
		_, h := b.token(t, controller.RoleAdmin)
		hashes = append(hashes, h)
		_, err := c.TokenBySecretHash(b.ctx, h)
		require.NoError(t, err)
		require.LessOrEqual(t, c.Len(), 2)
	}
	require.Equal(t, 2, c.Len())

	h := hashes[2] // the last one is always kept
	before := c.db.lookups.Load()
	_, err := c.TokenBySecretHash(b.ctx, h)
	require.NoError(t, err)
	require.Equal(t, before, c.db.lookups.Load())
	later := start.Add(time.Minute)
	now.Store(&later)
	_, err = c.TokenBySecretHash(b.ctx, h)
	require.NoError(t, err)
	require.Equal(t, before+1, c.db.lookups.Load(), "served from memory no longer than the TTL")
}

func TestTokenUseDoesNotClearCaches(t *testing.T) {
	b := setup(t)
	c := newTokenCache(t, b, postgres.TokenCacheConfig{}, nil)
	tok, h := b.token(t, controller.RoleAdmin)
	_, err := c.TokenBySecretHash(b.ctx, h)
	require.NoError(t, err)
	require.NoError(t, c.TouchToken(b.ctx, tok.ID, time.Now()))
	got, err := c.TokenBySecretHash(b.ctx, h)
	require.NoError(t, err)
	require.NotNil(t, got.LastUsed, "the cached copy notes the use")
	// A barrier is delivered after any notification of the touch: had the
	// touch notified, the cache would have seen two notifications by then.
	_, err = b.store.SyncTokenCaches(b.ctx)
	require.NoError(t, err)
	c.events.mu.Lock()
	require.Equal(t, 1, c.events.seen["notified"], "only the barrier")
	c.events.mu.Unlock()
}

func TestSyncTokenCachesNamesControllersThatDoNotConfirm(t *testing.T) {
	b := setup(t)
	synced, err := b.store.SyncTokenCaches(b.ctx)
	require.NoError(t, err)
	require.Zero(t, synced.Confirmed, "no controller running")

	// A live backend registered as a listener that never acknowledges.
	conn, err := b.store.DB().Pool().Acquire(b.ctx)
	require.NoError(t, err)
	defer conn.Release()
	var pid int
	require.NoError(t, conn.QueryRow(b.ctx, `
		INSERT INTO token_cache_listeners (pid, backend_start, seen)
		SELECT pid, backend_start, 0 FROM pg_stat_activity WHERE pid = pg_backend_pid()
		RETURNING pid`).Scan(&pid))
	ctx, cancel := context.WithTimeout(b.ctx, 50*time.Millisecond)
	defer cancel()
	synced, err = b.store.SyncTokenCaches(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "1 controller(s) did not confirm")
	require.Equal(t, []int{pid}, synced.Pending)
}
