package api

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/callgate/callgate/controller"
)

// Rate limiting.
//
// Every authenticated request takes a token from its API token's bucket
// (Config.TokenLimit); an empty bucket answers 429 in the error shape with
// Retry-After. A request that fails authentication takes one from its
// client IP's bucket instead (Config.AnonLimit, smaller): once that is
// empty, further failures from the IP are answered 429 rather than 401,
// and are not appended to the audit log, so a flood of bad tokens can
// neither probe at full speed nor grow the log without bound. A valid
// token is never limited by its IP's failures. Open routes (health,
// readiness, metrics, the OpenAPI document) are not limited.
//
// The client IP is the connection's peer (echo.ExtractIPDirect): behind a
// reverse proxy every client shares the proxy's bucket, so limit
// unauthenticated traffic at the proxy instead.

// codeRateLimited is the error code of a 429: an HTTP-layer code, as the
// domain never sees the limit.
const codeRateLimited = "rate_limited"

// Default budgets: what `callgate serve` applies unless configured
// otherwise.
var (
	DefaultTokenLimit = RateLimit{Rate: 20, Burst: 40} // requests per API token
	DefaultAnonLimit  = RateLimit{Rate: 2, Burst: 10}  // failed authentications per client IP
)

// maxBuckets is how many buckets a limiter keeps before it drops the full
// (idle) ones.
const maxBuckets = 10_000

// RateLimit is a token bucket: Burst requests at once, refilled at Rate a
// second. The zero value does not limit (a Server embedded in tests);
// callgate serve applies DefaultTokenLimit and DefaultAnonLimit.
type RateLimit struct {
	Rate  float64 // tokens added a second
	Burst int     // bucket size: requests allowed at once
}

// On reports whether r limits anything.
func (r RateLimit) On() bool { return r.Rate > 0 && r.Burst > 0 }

func (r RateLimit) validate(field string) error {
	if r.Rate < 0 || math.IsNaN(r.Rate) || math.IsInf(r.Rate, 0) {
		return controller.FieldError(field+".Rate", "must be a finite number ≥ 0")
	}
	if r.Burst < 0 {
		return controller.FieldError(field+".Burst", "must not be negative")
	}
	if (r.Rate > 0) != (r.Burst > 0) {
		return controller.FieldError(field, "set both Rate and Burst, or neither")
	}
	return nil
}

// limiter holds one token bucket per key (a token ID or a client IP).
type limiter struct {
	limit   RateLimit
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

// newLimiter returns a limiter for l, or nil when l does not limit.
func newLimiter(l RateLimit) *limiter {
	if !l.On() {
		return nil
	}
	return &limiter{limit: l, buckets: map[string]*bucket{}}
}

// take removes one token from key's bucket at now. It reports whether
// there was one and, when not, how long until there is. A nil limiter
// always has one.
func (l *limiter) take(key string, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			l.sweep(now)
		}
		b = &bucket{tokens: float64(l.limit.Burst), at: now}
		l.buckets[key] = b
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.limit.Rate * float64(time.Second))
	return false, wait
}

// refill brings b up to date at now; a clock that went backwards adds
// nothing.
func (l *limiter) refill(b *bucket, now time.Time) {
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens = math.Min(float64(l.limit.Burst), b.tokens+elapsed.Seconds()*l.limit.Rate)
		b.at = now
	}
}

// sweep drops the buckets that are full at now: forgetting them changes
// nothing. Callers hold l.mu.
func (l *limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= float64(l.limit.Burst) {
			delete(l.buckets, k)
		}
	}
}

// rateLimited is the 429 answer; it sets Retry-After (whole seconds, at
// least 1).
func rateLimited(c echo.Context, wait time.Duration, what string) error {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
	return controller.Errorf(codeRateLimited, "too many requests %s: retry after %d s", what, secs)
}

// throttle answers 429 when the principal's token has used up its bucket.
// It runs right after authenticate.
func (s *Server) throttle(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, _ := principalOf(c)
		if ok, wait := s.tokenLimit.take(p.TokenID, s.cfg.Now()); !ok {
			return rateLimited(c, wait, "with this token")
		}
		return next(c)
	}
}

// throttleFailure charges a failed authentication to the client IP and
// returns the 429 to answer instead of err once the IP's bucket is empty.
func (s *Server) throttleFailure(c echo.Context, err error) error {
	if ok, wait := s.anonLimit.take(c.RealIP(), s.cfg.Now()); !ok {
		return rateLimited(c, wait, "without a valid token from this address")
	}
	return err
}

// statusRateLimited is the status of codeRateLimited.
const statusRateLimited = http.StatusTooManyRequests
