// Package api is callgate's HTTP API: echo handlers over controller.CallService,
// one JSON error shape for every failure, request IDs, an access log that never
// carries a full phone number or a request body, responses that show phone
// numbers whole only to roles allowed to see them (privacy.go), per-token
// rate limits (ratelimit.go), the regulator traceability export (export.go),
// Prometheus metrics and the OpenAPI document (openapi.yaml, embedded and
// served at /v1/openapi.yaml).
//
// It never imports a switch driver or the PostgreSQL store: cmd/callgate wires
// a controller.CallService in.
package api

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/callgate/callgate/controller"
)

// openAPISpec is the API's OpenAPI 3.0.3 document. A test keeps it in step
// with the registered routes.
//
//go:embed openapi.yaml
var openAPISpec []byte

// Defaults applied by New to zero Config fields.
const (
	DefaultMaxBodyBytes   = 64 << 10
	DefaultRequestTimeout = 30 * time.Second
	DefaultReadyTimeout   = 2 * time.Second
	DefaultMaxImportBytes = 512 << 20
	DefaultImportTimeout  = 30 * time.Minute
	DefaultMaxPromptBytes = 20 << 20
	// DefaultMaxLeadImportBytes is the default MaxLeadImportBytes.
	DefaultMaxLeadImportBytes = 1 << 30
)

// Config configures the HTTP API. Zero fields take the defaults above.
type Config struct {
	// MaxBodyBytes is the largest request body accepted; larger bodies get
	// 413. Default 64 KiB. Env: CALLGATE_API_MAX_BODY_BYTES.
	MaxBodyBytes int64
	// RequestTimeout bounds the context handed to the CallService for one
	// request. Default 30s. Env: CALLGATE_API_REQUEST_TIMEOUT.
	RequestTimeout time.Duration
	// ReadyTimeout bounds the CallService.Ready check behind /readyz.
	// Default 2s. Env: CALLGATE_API_READY_TIMEOUT.
	ReadyTimeout time.Duration
	// MaxImportBytes is the largest do-not-call CSV upload accepted (POST
	// /v1/dnc/lists/{id}/import); larger ones get 413. Default 512 MiB.
	// Env: CALLGATE_API_MAX_IMPORT_BYTES.
	MaxImportBytes int64
	// ImportTimeout bounds the context of an upload (a do-not-call or lead
	// CSV, a prompt) or an export instead of RequestTimeout. Default 30m.
	// Env: CALLGATE_API_IMPORT_TIMEOUT.
	ImportTimeout time.Duration
	// MaxPromptBytes is the largest prompt upload accepted (POST
	// /v1/prompts/{name}). Default 20 MiB. Env: CALLGATE_API_MAX_PROMPT_BYTES.
	MaxPromptBytes int64
	// MaxLeadImportBytes is the largest lead CSV upload accepted (POST
	// /v1/lead-lists/{id}/imports); larger ones get 413. Default 1 GiB.
	// Env: CALLGATE_API_MAX_LEAD_IMPORT_BYTES.
	MaxLeadImportBytes int64
	// UploadDir is where lead CSV uploads are written while they are
	// imported in the background, each removed when its import ends: it
	// needs room for MaxLeadImportBytes per import in progress (mind a /tmp
	// on tmpfs, which is memory). Default os.TempDir(). Env:
	// CALLGATE_API_UPLOAD_DIR.
	UploadDir string
	// Auth looks up the bearer tokens every /v1 route requires (required;
	// cmd/callgate wires the PostgreSQL store). Without it every
	// authenticated route answers 401: the API fails closed. When it also
	// implements controller.TokenToucher, a token's last use is recorded
	// at most once a minute. Not configurable from the environment.
	Auth controller.TokenStore
	// TokenLimit is each API token's request budget: a token bucket of
	// Burst requests refilled at Rate a second; past it, 429. Zero: no
	// limit. callgate serve sets DefaultTokenLimit (20/s, burst 40) unless
	// Main.RateLimits says otherwise. Not configurable from the environment.
	TokenLimit RateLimit
	// AnonLimit is each client IP's budget of failed authentications,
	// smaller than a token's; past it, 429 instead of 401 and no audit
	// entry. Zero: no limit. callgate serve sets DefaultAnonLimit (2/s,
	// burst 10) unless Main.RateLimits says otherwise.
	AnonLimit RateLimit
	// Now is the clock for token expiry, audit entries and rate limits.
	// Default time.Now.
	Now func() time.Time
}

// Validate reports the first field that is out of range. Zero values are
// valid: they mean "use the default".
func (c Config) Validate() error {
	switch {
	case c.MaxBodyBytes < 0:
		return controller.FieldError("MaxBodyBytes", "must not be negative")
	case c.RequestTimeout < 0:
		return controller.FieldError("RequestTimeout", "must not be negative")
	case c.ReadyTimeout < 0:
		return controller.FieldError("ReadyTimeout", "must not be negative")
	case c.MaxImportBytes < 0:
		return controller.FieldError("MaxImportBytes", "must not be negative")
	case c.ImportTimeout < 0:
		return controller.FieldError("ImportTimeout", "must not be negative")
	case c.MaxPromptBytes < 0:
		return controller.FieldError("MaxPromptBytes", "must not be negative")
	case c.MaxLeadImportBytes < 0:
		return controller.FieldError("MaxLeadImportBytes", "must not be negative")
	}
	if err := c.TokenLimit.validate("TokenLimit"); err != nil {
		return err
	}
	if err := c.AnonLimit.validate("AnonLimit"); err != nil {
		return err
	}
	switch {
	case c.Auth == nil:
		return controller.FieldError("Auth", "a token store is required")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = DefaultReadyTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxImportBytes <= 0 {
		c.MaxImportBytes = DefaultMaxImportBytes
	}
	if c.ImportTimeout <= 0 {
		c.ImportTimeout = DefaultImportTimeout
	}
	if c.MaxPromptBytes <= 0 {
		c.MaxPromptBytes = DefaultMaxPromptBytes
	}
	if c.MaxLeadImportBytes <= 0 {
		c.MaxLeadImportBytes = DefaultMaxLeadImportBytes
	}
	return c
}

// Server is the HTTP API. Create it with New and serve Handler.
type Server struct {
	cfg   Config
	svc   controller.CallService
	admin controller.ComplianceAdmin // nil: the administration routes answer 503

	flows      controller.FlowAdmin       // nil: the flow and prompt routes answer 503
	recordings controller.RecordingAdmin  // nil: the recording routes answer 503
	campaigns  controller.CampaignService // nil: the campaign and lead routes answer 503
	agents     controller.AgentService    // nil: the agent routes answer 503
	routing    controller.RoutingService  // nil: the routing routes answer 503
	// recordingAccess, when set, decides who may stream a recording.
	recordingAccess RecordingAccess
	// auditLog, when set, records every change, recording stream, export
	// and refusal (SetAudit).
	auditLog controller.AuditLog
	// traces, when set, serves the traceability export (SetTraceExporter).
	traces controller.TraceExporter
	// tokenLimit and anonLimit are the request budgets per API token and
	// per client IP failing authentication (ratelimit.go).
	tokenLimit, anonLimit *limiter

	logger   *slog.Logger
	echo     *echo.Echo
	metrics  *httpMetrics
	routes   map[string]bool // registered path templates, for metric labels
	policies []RoutePolicy   // every registered route's policy, in order
}

// New builds the API over svc, which must not be nil. It registers its HTTP metrics on reg and
// serves reg at /metrics; a nil reg gets a private registry. A nil logger
// discards. Invalid Config fields (negative values) are replaced by defaults;
// call Config.Validate first to reject them instead.
func New(cfg Config, svc controller.CallService, reg *prometheus.Registry, logger *slog.Logger) *Server {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		cfg:     cfg.withDefaults(),
		svc:     svc,
		logger:  logger,
		echo:    echo.New(),
		metrics: newHTTPMetrics(reg),
		routes:  map[string]bool{},
	}
	s.tokenLimit, s.anonLimit = newLimiter(s.cfg.TokenLimit), newLimiter(s.cfg.AnonLimit)
	e := s.echo
	e.HideBanner = true
	e.HidePort = true
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = s.handleError

	// Outermost first: every later stage, the error handler included, sees
	// the request ID; metrics and the access log see the final status, and
	// a panic anywhere below becomes a 500 in the error shape.
	e.Use(s.requestID, s.observe, s.recoverPanic, s.requestContext)

	// Every route with its policy (auth.go): who may call it.
	s.route(http.MethodGet, "/healthz", s.healthz, open)
	s.route(http.MethodGet, "/readyz", s.readyz, open)
	s.route(http.MethodGet, "/metrics", echo.WrapHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})), open)
	s.route(http.MethodGet, "/v1/openapi.yaml", s.openAPI, open)

	limit := s.limitBody
	s.route(http.MethodPost, "/v1/calls", s.createCall, allow(admin, agent), limit)
	s.route(http.MethodGet, "/v1/calls", s.listCalls, ownCalls(admin, agent, qa))
	s.route(http.MethodGet, "/v1/calls/:id", s.getCall, ownCalls(admin, agent, qa))
	s.route(http.MethodGet, "/v1/calls/:id/events", s.callEvents, ownCalls(admin, agent, qa))
	s.route(http.MethodPost, "/v1/calls/:id/hangup", s.hangupCall, ownCalls(admin, agent), limit)
	s.route(http.MethodPost, "/v1/calls/:id/tags", s.tagCall, ownCalls(admin, agent, qa), limit)
	s.route(http.MethodGet, "/v1/switches", s.switches, allow(admin))
	s.route(http.MethodPost, "/v1/compliance/check", s.checkCompliance, allow(admin, agent, auditor), limit)
	s.route(http.MethodGet, "/v1/attempts/:id", s.getAttempt, ownCalls(admin, agent, auditor))
	s.route(http.MethodGet, "/v1/audit", s.listAudit, allow(admin, auditor))
	s.route(http.MethodGet, exportTracePath, s.exportTrace, allow(admin))
	s.registerComplianceAdmin(limit)
	s.registerMedia(limit)
	s.registerCampaigns(limit)
	s.registerAgents(limit)
	s.registerRouting(limit)

	for _, r := range e.Routes() {
		s.routes[r.Path] = true
	}
	return s
}

// Handler returns the API as an http.Handler (the *echo.Echo instance).
func (s *Server) Handler() http.Handler { return s.echo }

// healthz reports that the process is up; it never consults dependencies.
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz reports whether the service can take work: 200, or 503 in the
// error shape with the reason.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.ReadyTimeout)
	defer cancel()
	if err := s.svc.Ready(ctx); err != nil {
		if controller.ErrorCode(err) != controller.EUNAVAILABLE {
			// Not ready whatever the cause; keep details out of the body.
			s.requestLogger(c).Warn("not ready", "err", redact(err.Error()))
			return fmt.Errorf("readiness: %w", controller.Errorf(controller.EUNAVAILABLE, "not ready"))
		}
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// openAPI serves the embedded OpenAPI document.
func (s *Server) openAPI(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-cache")
	return c.Blob(http.StatusOK, "application/yaml", openAPISpec)
}

// switches lists every configured switch with its health and limits.
func (s *Server) switches(c echo.Context) error {
	if err := checkQuery(c.QueryParams()); err != nil {
		return err
	}
	list := s.svc.Switches(c.Request().Context())
	return c.JSON(http.StatusOK, switchList{Switches: orEmpty(list)})
}

// switchList is the body of GET /v1/switches.
type switchList struct {
	Switches []controller.SwitchStatus `json:"switches"`
}
