package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// Keys under which middleware leaves per-request values in echo.Context.
const (
	ctxKeyRequestID = "callgate.request_id"
	ctxKeyLogger    = "callgate.logger"
)

// maxRequestIDLen bounds a client-supplied X-Request-Id; longer or
// non-printable ones are replaced by a generated ID.
const maxRequestIDLen = 128

// requestID takes the client's X-Request-Id when it is sane, or makes one,
// echoes it in the response and enriches the request's logger with it once.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !validRequestID(id) {
			id = newRequestID()
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		c.Set(ctxKeyRequestID, id)
		c.Set(ctxKeyLogger, s.logger.With("request_id", id))
		return next(c)
	}
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24
	return hex.EncodeToString(b[:])
}

// requestIDOf returns the request's ID as set by the requestID middleware.
func requestIDOf(c echo.Context) string {
	if id, ok := c.Get(ctxKeyRequestID).(string); ok {
		return id
	}
	return c.Response().Header().Get(echo.HeaderXRequestID)
}

// requestLogger returns the logger enriched for this request.
func (s *Server) requestLogger(c echo.Context) *slog.Logger {
	if l, ok := c.Get(ctxKeyLogger).(*slog.Logger); ok {
		return l
	}
	return s.logger
}

// observe counts and times every request and writes the access log line.
// It renders a handler's error itself so that both see the final status.
// The access log holds no request body, no query string and no full phone
// number.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		elapsed := time.Since(start)

		req, res := c.Request(), c.Response()
		route, method, code := s.routeLabel(c), methodLabel(req.Method), strconv.Itoa(res.Status)
		s.metrics.requests.WithLabelValues(route, method, code).Inc()
		s.metrics.duration.WithLabelValues(route, method, code).Observe(elapsed.Seconds())

		level := slog.LevelInfo
		if res.Status >= 500 {
			level = slog.LevelWarn
		}
		s.requestLogger(c).LogAttrs(req.Context(), level, "http request",
			slog.String("method", req.Method),
			slog.String("route", route),
			slog.String("path", redact(req.URL.Path)),
			slog.Int("status", res.Status),
			slog.Duration("duration", elapsed),
			slog.Int64("bytes_out", res.Size),
			slog.String("remote_ip", c.RealIP()),
		)
		return nil
	}
}

// routeLabel is the registered path template that served the request, or
// "unmatched", so raw URLs never become metric labels.
func (s *Server) routeLabel(c echo.Context) string {
	if p := c.Path(); s.routes[p] {
		return p
	}
	return "unmatched"
}

// methodLabel keeps the method label's values bounded.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// recoverPanic turns a panic below it into an internal error (a 500 in the
// error shape), keeping the stack for the log. http.ErrAbortHandler is
// re-panicked: it asks net/http to abort the response.
func (s *Server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			if e, ok := r.(error); ok && errors.Is(e, http.ErrAbortHandler) {
				panic(r)
			}
			err = &panicError{value: r, stack: debug.Stack()}
		}()
		return next(c)
	}
}

// requestContext bounds the work one request may start.
func (s *Server) requestContext(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		timeout := s.cfg.RequestTimeout
		switch c.Path() {
		case importPath, promptPath, leadImportPath, exportTracePath: // an upload or an export streams for longer
			timeout = s.cfg.ImportTimeout
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), timeout)
		defer cancel()
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}

// limitBody rejects bodies larger than MaxBodyBytes with 413, both when
// Content-Length says so up front and when the body turns out longer.
func (s *Server) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if req.ContentLength > s.cfg.MaxBodyBytes {
			return &http.MaxBytesError{Limit: s.cfg.MaxBodyBytes}
		}
		if req.Body != nil {
			req.Body = http.MaxBytesReader(c.Response().Writer, req.Body, s.cfg.MaxBodyBytes)
		}
		return next(c)
	}
}

// httpMetrics are the API's Prometheus collectors.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newHTTPMetrics registers the collectors on reg, reusing ones already
// registered there by another Server.
func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	labels := []string{"route", "method", "code"}
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests served, by route template, method and status code.",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Time to serve HTTP requests, by route template, method and status code.",
			Buckets: prometheus.DefBuckets,
		}, labels),
	}
	m.requests = registerOrReuse(reg, m.requests)
	m.duration = registerOrReuse(reg, m.duration)
	return m
}

func registerOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("api: registering metrics: " + err.Error())
	}
	return c
}

// phoneLike finds digit runs long enough to be phone numbers.
var phoneLike = regexp.MustCompile(`\+?[0-9]{6,}`)

// redact masks every phone-number-like run of digits in s, for logs.
func redact(s string) string {
	return phoneLike.ReplaceAllStringFunc(s, maskPhone)
}

// maskPhone shows only the last four digits of a number: ****1234.
func maskPhone(n string) string {
	n = strings.TrimPrefix(n, "+")
	if len(n) <= 4 {
		return "****"
	}
	return "****" + n[len(n)-4:]
}
