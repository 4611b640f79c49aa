package api

import (
	"context"
	"math"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/callgate/callgate/controller"
)

// Audit outcomes.
const (
	outcomeOK     = "ok"
	outcomeDenied = "denied"
	outcomeError  = "error"
)

// Keys under which a handler names its audit action and adds detail.
const (
	ctxKeyAuditAction = "callgate.audit_action"
	ctxKeyAuditDetail = "callgate.audit_detail"
)

// auditTimeout bounds one append; it runs after the response, detached
// from the request's cancellation.
const auditTimeout = 5 * time.Second

// Audit listing bounds (GET /v1/audit).
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

// SetAudit connects the audit log (nil: nothing is audited). Call it
// before serving.
func (s *Server) SetAudit(l controller.AuditLog) { s.auditLog = l }

// audit appends an entry to the audit log for every request that changes
// something (POST, PUT, PATCH, DELETE — dry runs included), every
// recording stream and every refused request (401, 403, and the 404 that
// hides another agent's call), with its outcome and status. It renders a
// handler's error itself to learn the final status. Entries never hold a
// full phone number. A failed append is logged; the response has gone.
//
// A handler may name its own action and add detail (ctxKeyAuditAction,
// ctxKeyAuditDetail): a read it sets them for is audited too (exports).
//
// Unauthenticated requests are audited without a tenant: their token is
// unknown. Once a client IP has failed authentication too often its
// requests are answered 429 and not audited (ratelimit.go), so a flood of
// bad tokens does not grow the log without bound.
func (s *Server) audit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if s.auditLog == nil || controller.ErrorCode(err) == codeRateLimited {
			return err // a rate-limited request did nothing; a flood must not grow the log
		}
		req := c.Request()
		code := controller.ErrorCode(err)
		refused := denied(c) || code == controller.EUNAUTHORIZED || code == controller.EFORBIDDEN
		mutating := req.Method != http.MethodGet && req.Method != http.MethodHead && req.Method != http.MethodOptions
		action, _ := c.Get(ctxKeyAuditAction).(string)
		if !mutating && !refused && c.Path() != recordingAudioPath && action == "" {
			return err
		}
		if action == "" {
			action = req.Method + " " + c.Path()
		}
		if err != nil {
			c.Error(err) // now, to know the status; observe sees nil
		}
		status := c.Response().Status
		e := controller.AuditEntry{
			At:        s.cfg.Now(),
			Action:    action,
			Target:    auditTarget(c),
			Status:    status,
			RequestID: requestIDOf(c),
			Outcome:   outcomeOK,
		}
		if p, ok := principalOf(c); ok {
			e.TenantID, e.TokenID, e.Role = p.TenantID, p.TokenID, p.Role
		}
		switch {
		case refused || statusDenied(status):
			e.Outcome = outcomeDenied
		case err != nil || status >= 400:
			e.Outcome = outcomeError
		}
		e.Detail = auditDetail(c, err)
		if extra, _ := c.Get(ctxKeyAuditDetail).(string); extra != "" {
			if e.Detail != "" {
				extra = joinDetail(extra, e.Detail)
			}
			e.Detail = truncate(extra, 500) // the handler's own text: no numbers
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), auditTimeout)
		defer cancel()
		if _, aerr := s.auditLog.AppendAudit(ctx, e); aerr != nil {
			s.requestLogger(c).Error("appending to the audit log failed", "action", e.Action,
				"outcome", e.Outcome, "err", redact(aerr.Error()))
		}
		return nil
	}
}

// auditTarget is the resource a request names: its id or name path
// parameter, or a masked number.
func auditTarget(c echo.Context) string {
	if v := c.Param("id"); v != "" {
		return truncate(maskIfNumber(v), 200)
	}
	if v := c.Param("name"); v != "" {
		return truncate(maskIfNumber(v), 200)
	}
	if v := c.Param("number"); v != "" {
		return maskedParam(v)
	}
	return ""
}

// auditDetail says what the status does not: why a request was refused or
// failed, the number a do-not-call change was about (masked), or how a
// recording was served. Never a full phone number.
func auditDetail(c echo.Context, err error) string {
	var d string
	switch {
	case c.Get(ctxKeyAuthError) != nil:
		d, _ = c.Get(ctxKeyAuthError).(string)
	case err != nil:
		d = controller.ErrorCode(err)
		if f := controller.ErrorField(err); f != "" {
			d += " (" + f + ")"
		}
	case c.Path() == recordingAudioPath:
		d = c.Response().Header().Get("Content-Disposition")
	}
	if c.Param("id") != "" && c.Param("number") != "" { // a do-not-call entry
		d = joinDetail(d, "number "+maskedParam(c.Param("number")))
	}
	return truncate(d, 500)
}

func joinDetail(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// maskIfNumber masks an ID that is a phone number (someone put a number
// where an ID goes); IDs such as UUIDs stay whole.
func maskIfNumber(v string) string {
	if phoneLike.FindString(v) == v {
		return maskPhone(v)
	}
	return v
}

// maskedParam unescapes and masks a number path parameter.
func maskedParam(v string) string {
	if u, err := url.PathUnescape(v); err == nil {
		v = u
	}
	return controller.MaskNumber(v)
}

// auditPage is the body of GET /v1/audit.
type auditPage struct {
	Entries []controller.AuditEntry `json:"entries"`
	// NextAfter is the after= of the next page: the last entry's seq
	// (the request's after when the page is empty).
	NextAfter int64 `json:"next_after"`
}

// errNoAudit answers GET /v1/audit when no audit log is connected.
var errNoAudit = controller.Errorf(controller.EUNAVAILABLE, "the audit log is not available")

// listAudit returns the tenant's audit entries after ?after= (a seq,
// default 0), oldest first, at most ?limit= (1..1000, default 100).
func (s *Server) listAudit(c echo.Context) error {
	q := c.QueryParams()
	if err := checkQuery(q, "after", "limit"); err != nil {
		return err
	}
	if s.auditLog == nil {
		return errNoAudit
	}
	var after int64
	if v := q.Get("after"); v != "" {
		n, err := wholeNumber("after", v, 0, math.MaxInt64)
		if err != nil {
			return err
		}
		after = n
	}
	limit := defaultAuditLimit
	if v := q.Get("limit"); v != "" {
		n, err := wholeNumber("limit", v, 1, maxAuditLimit)
		if err != nil {
			return err
		}
		limit = int(n)
	}
	list, err := s.auditLog.ListAudit(c.Request().Context(), tenant(c), after, limit)
	if err != nil {
		return err
	}
	page := auditPage{Entries: orEmpty(list), NextAfter: after}
	if n := len(list); n > 0 {
		page.NextAfter = list[n-1].Seq
	}
	return c.JSON(http.StatusOK, page)
}
