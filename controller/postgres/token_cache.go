package postgres

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/callgate/callgate/controller"
)

var (
	_ controller.TokenStore   = (*TokenCache)(nil)
	_ controller.TokenToucher = (*TokenCache)(nil)
)

// Defaults of TokenCacheConfig.
const (
	DefaultTokenCacheSize = 10_000
	DefaultTokenCacheTTL  = time.Minute
)

// TokenCacheConfig configures a TokenCache.
type TokenCacheConfig struct {
	// Size bounds the number of cached tokens (DefaultTokenCacheSize when
	// zero); a full cache drops an entry for each new one.
	Size int
	// TTL bounds how long a token is served from the cache
	// (DefaultTokenCacheTTL when zero), as a defence in depth: revocations
	// are not waited for, they clear the cache at once.
	TTL time.Duration
	// Now is the clock of the TTL (time.Now when nil).
	Now func() time.Time
	// OnChange, when set, is called after a notification (a token changed
	// somewhere) cleared the cache; tests wait on it. It must not block.
	OnChange func()
}

// TokenCache is a controller.TokenStore that serves verified tokens from
// memory, so that an API request does not cost a database round trip, while
// a revocation still fails the next request on every controller.
//
// Every change of a token that can alter its validity notifies the tokens
// channel of the schema, in the writing transaction (a trigger, migration
// 015). The cache holds one LISTEN connection and serves entries only while
// it is up: it clears everything when LISTEN becomes active, on every
// notification and when the connection is lost, and while it is down every
// lookup goes to the database. A generation counter, bumped on each of those
// events, closes the race of a lookup that read a token just before it was
// revoked: the token is cached only if the generation is still the one read
// before the lookup. Expiry is time-based: the caller checks it from the
// cached expires_at on every use (controller.Token.Usable).
type TokenCache struct {
	next     controller.TokenStore
	listener *listener
	size     int
	ttl      time.Duration
	now      func() time.Time
	onChange func()

	mu      sync.Mutex
	up      bool   // LISTEN is active
	gen     uint64 // bumped on every listener event and local revocation
	entries map[string]tokenEntry
	byID    map[string]string // token ID → key in entries

	// Test hooks: beforeInsert runs between a lookup and the insert of
	// its result; onEvent sees every listener event after it is applied.
	beforeInsert func()
	onEvent      func(listenEvent)
}

type tokenEntry struct {
	tok   controller.Token
	until time.Time // served until then (TTL)
}

// NewTokenCache returns a cache of next's tokens that listens on db's tokens
// channel. Call Start to begin listening (until then every lookup goes to
// next) and Close to stop.
func NewTokenCache(db *DB, next controller.TokenStore, cfg TokenCacheConfig) *TokenCache {
	c := &TokenCache{next: next, size: cfg.Size, ttl: cfg.TTL, now: cfg.Now, onChange: cfg.OnChange,
		entries: map[string]tokenEntry{}, byID: map[string]string{}}
	if c.size <= 0 {
		c.size = DefaultTokenCacheSize
	}
	if c.ttl <= 0 {
		c.ttl = DefaultTokenCacheTTL
	}
	if c.now == nil {
		c.now = time.Now
	}
	l := newListener(db.pool)
	l.what, l.channelSQL = "tokens", `
		SELECT callgate_tokens_channel(n.nspname)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = 'api_tokens'::regclass`
	l.onEvent = c.event
	l.afterListen = registerTokenListener
	l.afterNotify = ackTokenBarrier
	c.listener = l
	return c
}

// Start starts listening and returns once LISTEN is active. The listener
// reconnects by itself. Returns the listener's last error (EUNAVAILABLE when
// the database is down) if ctx ends first; the cache is then bypassed until
// the listener connects.
func (c *TokenCache) Start(ctx context.Context) error { return c.listener.listen(ctx) }

// Close stops listening; from then on every lookup goes to the database.
func (c *TokenCache) Close() { c.listener.close() }

// event applies a listener event: whatever it is, cached tokens may no
// longer be trusted.
func (c *TokenCache) event(e listenEvent) {
	c.mu.Lock()
	c.up = e != listenDown
	c.invalidateLocked()
	hook := c.onEvent
	c.mu.Unlock()
	if e == listenNotified && c.onChange != nil {
		c.onChange()
	}
	if hook != nil {
		hook(e)
	}
}

// invalidateLocked clears the cache and bumps the generation, so that no
// lookup in flight caches what it read. Called with c.mu held.
func (c *TokenCache) invalidateLocked() {
	c.gen++
	clear(c.entries)
	clear(c.byID)
}

// TokenBySecretHash returns the token whose secret hashes to h, from the
// cache if it is there and the listener has been up since it was read, from
// next otherwise. Returns what next returns (ENOTFOUND for none; unknown
// tokens are never cached).
func (c *TokenCache) TokenBySecretHash(ctx context.Context, h []byte) (controller.Token, error) {
	key := string(h)
	c.mu.Lock()
	gen, up := c.gen, c.up
	if e, ok := c.entries[key]; ok && up && c.now().Before(e.until) {
		c.mu.Unlock()
		return cloneToken(e.tok), nil
	}
	c.mu.Unlock()

	tok, err := c.next.TokenBySecretHash(ctx, h)
	if err != nil || !up {
		return tok, err
	}
	if c.beforeInsert != nil {
		c.beforeInsert()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.up || c.gen != gen {
		return tok, nil // a revocation or a disconnection came in between
	}
	if old, ok := c.byID[tok.ID]; ok {
		delete(c.entries, old)
	}
	for len(c.entries) >= c.size {
		for k, e := range c.entries { // an arbitrary entry
			delete(c.entries, k)
			delete(c.byID, e.tok.ID)
			break
		}
	}
	c.entries[key] = tokenEntry{tok: cloneToken(tok), until: c.now().Add(c.ttl)}
	c.byID[tok.ID] = key
	return tok, nil
}

// Len returns the number of cached tokens.
func (c *TokenCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// RevokeToken revokes the token through next and clears this process's
// cache before returning (other controllers clear theirs on the
// notification). Returns what next returns (ENOTFOUND).
func (c *TokenCache) RevokeToken(ctx context.Context, id string, at time.Time) (controller.Token, error) {
	tok, err := c.next.RevokeToken(ctx, id, at)
	c.mu.Lock()
	c.invalidateLocked() // even on an error: the revocation may have committed
	c.mu.Unlock()
	return tok, err
}

// CreateToken stores a token through next (a new token is cached on its
// first use). Returns what next returns.
func (c *TokenCache) CreateToken(ctx context.Context, t controller.Token, secretHash []byte) (controller.Token, error) {
	return c.next.CreateToken(ctx, t, secretHash)
}

// ListTokens lists tokens through next, never from the cache. Returns what
// next returns.
func (c *TokenCache) ListTokens(ctx context.Context, tenant string) ([]controller.Token, error) {
	return c.next.ListTokens(ctx, tenant)
}

// TouchToken records a token's use through next, if next records uses, and
// notes it on the cached token so that the next uses within a minute do not
// write again. Returns what next returns (ENOTFOUND).
func (c *TokenCache) TouchToken(ctx context.Context, id string, at time.Time) error {
	t, ok := c.next.(controller.TokenToucher)
	if !ok {
		return nil
	}
	if err := t.TouchToken(ctx, id, at); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if key, ok := c.byID[id]; ok {
		e := c.entries[key]
		if e.tok.LastUsed == nil || e.tok.LastUsed.Before(at) {
			e.tok.LastUsed = &at
			c.entries[key] = e
		}
	}
	return nil
}

// cloneToken copies t's time pointers, so that a caller cannot change a
// cached token.
func cloneToken(t controller.Token) controller.Token {
	for _, p := range []**time.Time{&t.ExpiresAt, &t.RevokedAt, &t.LastUsed} {
		if *p != nil {
			v := **p
			*p = &v
		}
	}
	return t
}

// registerTokenListener enters conn, whose LISTEN is active, among the
// listeners that barriers wait for, as having seen every barrier sent so far
// (its cache starts empty), and forgets the listeners of dead backends.
func registerTokenListener(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, `
		WITH gone AS (
			DELETE FROM token_cache_listeners l
			WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a
				WHERE a.pid = l.pid AND a.backend_start = l.backend_start))
		INSERT INTO token_cache_listeners (pid, backend_start, seen)
		SELECT pid, backend_start,
			(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM token_cache_barriers)
		FROM pg_stat_activity WHERE pid = pg_backend_pid()
		ON CONFLICT (pid, backend_start) DO UPDATE SET seen = EXCLUDED.seen`)
	if err != nil {
		return fmt.Errorf("registering the token listener: %w", err)
	}
	return nil
}

// ackTokenBarrier acknowledges a barrier notification (a number; trigger
// notifications are empty) once the cache has been cleared for it.
func ackTokenBarrier(ctx context.Context, conn *pgx.Conn, payload string) error {
	n, err := strconv.ParseInt(payload, 10, 64)
	if err != nil || n <= 0 {
		return nil
	}
	_, err = conn.Exec(ctx, `
		UPDATE token_cache_listeners SET seen = greatest(seen, $1)
		WHERE pid = pg_backend_pid()
		  AND backend_start = (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid())`, n)
	if err != nil {
		return fmt.Errorf("acknowledging token barrier %d: %w", n, err)
	}
	return nil
}

// TokenCacheSync is what SyncTokenCaches found.
type TokenCacheSync struct {
	Confirmed int   // live controllers that dropped their cached tokens
	Pending   []int // backend pids of listeners that did not confirm in time
}

// SyncTokenCaches returns once every running controller's token cache has
// processed the token changes committed before the call (they clear their
// caches on them), or when ctx ends, naming the listeners that did not
// confirm (a controller whose listener is cut off stops serving from its
// cache by itself). `callgate token revoke` calls it so that a revocation
// has taken effect everywhere when the command returns.
func (s *Store) SyncTokenCaches(ctx context.Context) (TokenCacheSync, error) {
	var barrier int64
	err := s.db.pool.QueryRow(ctx, `
		SELECT b, pg_notify(callgate_tokens_channel(n.nspname), b::text) IS NULL
		FROM nextval('token_cache_barriers') b,
			pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = 'api_tokens'::regclass`).Scan(&barrier, new(bool))
	if err != nil {
		return TokenCacheSync{}, fmt.Errorf("sending a token cache barrier: %w", translate(err))
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var last TokenCacheSync
	for {
		var out TokenCacheSync
		err := s.db.pool.QueryRow(ctx, `
			SELECT count(*) FILTER (WHERE l.seen >= $1),
				coalesce(array_agg(l.pid ORDER BY l.pid) FILTER (WHERE l.seen < $1), '{}')
			FROM token_cache_listeners l
			JOIN pg_stat_activity a ON a.pid = l.pid AND a.backend_start = l.backend_start`,
			barrier).Scan(&out.Confirmed, &out.Pending)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return last, fmt.Errorf("waiting for token caches: %w", translate(err))
		}
		if len(out.Pending) == 0 {
			return out, nil
		}
		last = out
		select {
		case <-ctx.Done():
		case <-tick.C:
			continue
		}
		break
	}
	return last, fmt.Errorf("%d controller(s) did not confirm they dropped their cached tokens: %w", len(last.Pending), ctx.Err())
}
