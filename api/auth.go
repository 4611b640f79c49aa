package api

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/callgate/callgate/controller"
)

// Authentication and authorisation.
//
// Every /v1 route except the OpenAPI document requires
// "Authorization: Bearer <secret>" (nothing else: no query tokens, no
// cookies). The token is looked up on every request, so a revocation takes
// effect at once. Its role is then checked against the route's policy,
// declared where the route is registered (s.route); a route registered
// without a policy cannot exist (New panics, and a test walks the routes).
//
// /healthz, /readyz, /metrics and /v1/openapi.yaml are open. /metrics
// reveals traffic volumes by route: keep the listener on loopback or a
// private network, or put it behind the reverse proxy's authentication.

// Keys under which the auth middleware leaves values in echo.Context.
const (
	ctxKeyPrincipal = "callgate.principal"
	ctxKeyDenied    = "callgate.denied" // a request refused, even when answered 404 to hide what exists
	ctxKeyAuthError = "callgate.auth_error"
)

// touchEvery is how often a token's last use is written at most.
const touchEvery = time.Minute

// Policy says who may call a route.
type Policy struct {
	// Open routes need no token (health, readiness, metrics, the OpenAPI
	// document).
	Open bool
	// Roles may call the route; any other role gets 403.
	Roles []controller.Role
	// AgentScoped routes name a call (or a recording of one): an agent
	// reaches only the calls assigned to them, and another agent's call is
	// answered 404 so its existence does not leak. Listings are narrowed
	// to the agent's calls.
	AgentScoped bool
	// AgentSelf routes name an agent (the path's id): an agent reaches
	// only their own, the one their token names (Principal.AgentID), and
	// any other is answered 404 so its existence does not leak. authorize
	// enforces it before the handler runs; other roles are not narrowed.
	AgentSelf bool
}

// Allows reports whether role may call the route.
func (p Policy) Allows(r controller.Role) bool { return p.Open || slices.Contains(p.Roles, r) }

// allow is the policy of a route the roles may call.
func allow(roles ...controller.Role) Policy { return Policy{Roles: roles} }

// ownCalls is allow for a route that names a call: agents reach only their own.
func ownCalls(roles ...controller.Role) Policy { return Policy{Roles: roles, AgentScoped: true} }

// ownAgent is allow for a route that names an agent by its id: an agent
// reaches only their own.
func ownAgent(roles ...controller.Role) Policy { return Policy{Roles: roles, AgentSelf: true} }

// open is the policy of a route that needs no token.
var open = Policy{Open: true}

// Role shorthands for the policy table.
const (
	admin   = controller.RoleAdmin
	agent   = controller.RoleAgent
	qa      = controller.RoleQA
	auditor = controller.RoleAuditor
)

// RoutePolicy is one registered route with its policy.
type RoutePolicy struct {
	Method string
	Path   string // echo's template, e.g. /v1/calls/:id
	Policy Policy
}

// Policies returns every registered route with its policy, in
// registration order.
func (s *Server) Policies() []RoutePolicy { return slices.Clone(s.policies) }

// route registers a handler with its policy: authentication (unless open),
// the token's rate limit and the role check run before mws and the
// handler; the audit hook runs around all of them.
func (s *Server) route(method, path string, h echo.HandlerFunc, p Policy, mws ...echo.MiddlewareFunc) {
	if !p.Open && len(p.Roles) == 0 {
		panic("api: route " + method + " " + path + " allows nobody")
	}
	s.policies = append(s.policies, RoutePolicy{Method: method, Path: path, Policy: p})
	chain := []echo.MiddlewareFunc{s.audit}
	if !p.Open {
		chain = append(chain, s.authenticate, s.throttle, authorize(p))
	}
	chain = append(chain, checkParams)
	s.echo.Add(method, path, h, append(chain, mws...)...)
}

// maxParamBytes bounds a path parameter (an id, a name, a number).
const maxParamBytes = 256

// checkParams answers 400 for a path parameter no resource can be named by:
// empty, longer than maxParamBytes, with a control character, a slash or a
// backslash, or a ".." (path traversal).
func checkParams(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		for i, name := range c.ParamNames() {
			v := c.ParamValues()[i]
			switch {
			case v == "" || len(v) > maxParamBytes:
				return controller.FieldError(name, "must be 1 to %d bytes", maxParamBytes)
			case strings.ContainsAny(v, "/\\") || strings.Contains(v, ".."):
				return controller.FieldError(name, "must not contain a slash, a backslash or ..")
			}
			if err := plainText(name, v); err != nil {
				return err
			}
		}
		return next(c)
	}
}

// authenticate resolves the bearer token to a principal, or answers 401.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		tok, err := s.tokenOf(c)
		if err != nil {
			if controller.ErrorCode(err) == controller.EUNAUTHORIZED {
				if lerr := s.throttleFailure(c, err); lerr != err {
					return lerr // this address has failed too often: 429, not audited
				}
				c.Set(ctxKeyDenied, true)
				c.Set(ctxKeyAuthError, controller.ErrorMessage(err))
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="callgate"`)
			}
			return err
		}
		p := tok.Principal()
		c.Set(ctxKeyPrincipal, p)
		c.SetRequest(c.Request().WithContext(controller.WithPrincipal(c.Request().Context(), p)))
		c.Set(ctxKeyLogger, s.requestLogger(c).With("token_id", p.TokenID, "role", p.Role))
		return next(c)
	}
}

// errUnauthenticated answers every authentication failure with one
// message, so a client learns nothing about which tokens exist.
func unauthenticated(why string) error {
	return controller.Errorf(controller.EUNAUTHORIZED, "a valid bearer token is required (%s)", why)
}

// tokenOf returns the request's usable token. Returns EUNAUTHORIZED for
// a missing, malformed, unknown, revoked or expired token; a store failure
// passes through (503 or 500, never a 401 that would look like a bad token).
func (s *Server) tokenOf(c echo.Context) (controller.Token, error) {
	vals := c.Request().Header.Values(echo.HeaderAuthorization)
	switch {
	case len(vals) == 0:
		return controller.Token{}, unauthenticated("no Authorization header")
	case len(vals) > 1:
		return controller.Token{}, unauthenticated("more than one Authorization header")
	}
	scheme, secret, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	secret = strings.TrimSpace(secret)
	if !ok || !strings.EqualFold(scheme, "Bearer") || !strings.HasPrefix(secret, controller.TokenSecretPrefix) || len(secret) > 200 {
		return controller.Token{}, unauthenticated("malformed Authorization header")
	}
	if s.cfg.Auth == nil {
		return controller.Token{}, unauthenticated("no token store is configured")
	}
	ctx := c.Request().Context()
	tok, err := s.cfg.Auth.TokenBySecretHash(ctx, controller.HashTokenSecret(secret))
	switch {
	case controller.ErrorCode(err) == controller.ENOTFOUND:
		return controller.Token{}, unauthenticated("unknown token")
	case err != nil:
		return controller.Token{}, err
	}
	now := s.cfg.Now()
	if !tok.Usable(now) {
		return controller.Token{}, unauthenticated("token revoked or expired")
	}
	if tok.TenantID == "" || !tok.Role.Valid() || (tok.Role == controller.RoleAgent) != (tok.AgentID != "") {
		// A store that returns such a token is broken: fail closed rather
		// than let "" mean every tenant.
		s.requestLogger(c).Error("token without tenant, role or agent", "token_id", tok.ID)
		return controller.Token{}, unauthenticated("token is malformed")
	}
	if t, ok := s.cfg.Auth.(controller.TokenToucher); ok && (tok.LastUsed == nil || now.Sub(*tok.LastUsed) >= touchEvery) {
		// Best effort: a failed write never fails the request.
		if err := t.TouchToken(context.WithoutCancel(ctx), tok.ID, now); err != nil {
			s.requestLogger(c).Warn("recording token use", "token_id", tok.ID, "err", redact(err.Error()))
		}
	}
	return tok, nil
}

// authorize answers 403 unless the principal's role is in the policy, and
// 404 when an agent names another agent on an AgentSelf route.
func authorize(p Policy) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			pr, _ := principalOf(c)
			if !p.Allows(pr.Role) {
				c.Set(ctxKeyDenied, true)
				return controller.Errorf(controller.EFORBIDDEN, "the %s role may not %s %s", pr.Role, c.Request().Method, c.Path())
			}
			if p.AgentSelf && pr.Role == controller.RoleAgent && c.Param("id") != pr.AgentID {
				c.Set(ctxKeyDenied, true)
				return errAgentNotFound
			}
			return next(c)
		}
	}
}

// principalOf returns the request's authenticated principal.
func principalOf(c echo.Context) (controller.Principal, bool) {
	p, ok := c.Get(ctxKeyPrincipal).(controller.Principal)
	return p, ok
}

// tenant is the tenant the request acts for: its principal's. Every
// handler passes it to the services, which filter by it.
func tenant(c echo.Context) string {
	p, _ := principalOf(c)
	return p.TenantID
}

// agentOnly returns the agent a request is narrowed to: the principal's
// agent for the agent role, "" for every other role.
func agentOnly(c echo.Context) string {
	if p, ok := principalOf(c); ok && p.Role == controller.RoleAgent {
		return p.AgentID
	}
	return ""
}

// errHidden answers a request for another agent's call: the same 404 as a
// call that does not exist.
var errHidden = controller.Errorf(controller.ENOTFOUND, "call not found")

// visibleCall returns the call id names if the request may see it: the
// tenant's call, and for an agent only a call assigned to them. Returns
// ENOTFOUND otherwise (recorded as a denial when it hides another agent's
// call).
func (s *Server) visibleCall(c echo.Context, id controller.CallID) (controller.Call, error) {
	if !validCallID(string(id)) {
		return controller.Call{}, errCallNotFound
	}
	call, err := s.svc.GetCall(c.Request().Context(), tenant(c), id)
	if err != nil {
		return call, err
	}
	if err := checkAgent(c, call); err != nil {
		return controller.Call{}, err
	}
	return call, nil
}

// checkAgent returns ENOTFOUND when an agent asks for a call that is not
// theirs, and marks the request denied.
func checkAgent(c echo.Context, call controller.Call) error {
	if a := agentOnly(c); a != "" && call.AgentID != a {
		c.Set(ctxKeyDenied, true)
		return errHidden
	}
	return nil
}

// scopeToAgent checks, for an agent, that the call named by the path's id
// parameter is theirs before the handler runs (for routes whose service
// call names the call only by ID). Other roles pass straight through: the
// services filter by tenant.
func (s *Server) scopeToAgent(c echo.Context) error {
	if agentOnly(c) == "" {
		return nil
	}
	_, err := s.visibleCall(c, controller.CallID(c.Param("id")))
	return err
}

// denied reports whether the request was refused (401, 403, or a 404
// hiding another agent's call or another agent).
func denied(c echo.Context) bool {
	d, _ := c.Get(ctxKeyDenied).(bool)
	return d
}

// statusDenied reports whether an HTTP status is an authentication or
// authorisation refusal.
func statusDenied(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden
}
