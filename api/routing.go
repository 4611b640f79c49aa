package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/callgate/callgate/controller"
)

// Routing rules, over a controller.RoutingService.
//
// Every route is admin only: routing is operations. The tenant's rules are
// one document with a version: GET /v1/routing answers it with an ETag of
// the version, PUT /v1/routing replaces it whole (If-Match, optional, makes
// the replacement conditional on the version read), and POST
// /v1/routing/dry-run says where a number would go, changing nothing.
// Responses go through the number view like every other: a prefix, a log
// line or the number tried are masked for roles that see masked numbers.

var errNoRouting = controller.Errorf(controller.EUNAVAILABLE, "routing is not enabled on this controller")

// SetRouting connects the routing administration (nil: its routes answer
// 503). Call it before serving.
func (s *Server) SetRouting(rs controller.RoutingService) { s.routing = rs }

// registerRouting adds the routing routes. They are always registered (so
// the OpenAPI document is exact).
func (s *Server) registerRouting(limit echo.MiddlewareFunc) {
	s.route(http.MethodGet, "/v1/routing", s.getRouting, allow(admin))
	s.route(http.MethodPut, "/v1/routing", s.putRouting, allow(admin), limit)
	s.route(http.MethodPost, "/v1/routing/dry-run", s.dryRunRouting, allow(admin), limit)
}

// routingCall returns the routing service for a request, after checking
// that it has no query parameters. Returns EUNAVAILABLE without one,
// EINVALID for a query parameter.
func (s *Server) routingCall(c echo.Context) (controller.RoutingService, error) {
	if s.routing == nil {
		return nil, errNoRouting
	}
	return s.routing, checkQuery(c.QueryParams())
}

// ruleFields and matchFields are the members of a rule and of its match.
var (
	ruleFields  = []string{"name", "match", "switch", "trunk", "log"}
	matchFields = []string{"prefixes", "countries", "types"}
)

// readRules reads the body of PUT /v1/routing, {"rules": [{…}, …]}. The
// service checks the values; here only the JSON types and members, each
// reported as rules[i].match.prefixes[j].
func readRules(c echo.Context) ([]controller.RouteRule, error) {
	obj, err := readObject(c, false, "rules")
	if err != nil {
		return nil, err
	}
	raw, ok := obj["rules"]
	if !ok || string(raw) == "null" {
		return nil, controller.FieldError("rules", "is required: an array of rules, [] for none")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, controller.FieldError("rules", "must be an array of objects: [{\"match\": {…}, \"switch\": …, \"trunk\": …}]")
	}
	out := make([]controller.RouteRule, 0, len(items))
	for i, item := range items {
		field := fmt.Sprintf("rules[%d]", i)
		if len(item) == 0 || item[0] != '{' {
			return nil, controller.FieldError(field, "must be an object: {\"match\": {…}, \"switch\": …, \"trunk\": …}")
		}
		ro, err := parseObject(item, field+".", func(k string) bool { return slices.Contains(ruleFields, k) })
		if err != nil {
			return nil, err
		}
		var r controller.RouteRule
		if err := firstErr(
			ro.str(field+".name", &r.Name),
			ro.str(field+".switch", &r.Switch),
			ro.str(field+".trunk", &r.Trunk),
			ro.str(field+".log", &r.Log),
		); err != nil {
			return nil, err
		}
		m, err := ro.nested(field+".match", func(k string) bool { return slices.Contains(matchFields, k) })
		if err != nil {
			return nil, err
		}
		if err := firstErr(
			m.stringList(field+".match.prefixes", &r.Match.Prefixes),
			m.stringList(field+".match.countries", &r.Match.Countries),
			m.stringList(field+".match.types", &r.Match.Types),
		); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// ifMatch reads the optional If-Match header: the version, as the ETag
// "N" (quoted) gives it, or -1 when absent.
func ifMatch(h http.Header) (int64, error) {
	vals, ok := h["If-Match"]
	if !ok {
		return -1, nil
	}
	bad := controller.FieldError("If-Match", "must be the ETag of the rules read, a version in quotes such as \"3\"")
	if len(vals) != 1 {
		return 0, bad
	}
	v := strings.TrimSpace(vals[0])
	if len(v) < 3 || v[0] != '"' || v[len(v)-1] != '"' {
		return 0, bad
	}
	n, err := wholeNumber("If-Match", v[1:len(v)-1], 0, 1<<53)
	if err != nil {
		return 0, bad
	}
	return n, nil
}

// routingETag is the ETag of a version of the rules.
func routingETag(v int64) string { return `"` + strconv.FormatInt(v, 10) + `"` }

// getRouting returns the tenant's rules with their version (0 and none
// when never set).
func (s *Server) getRouting(c echo.Context) error {
	rs, err := s.routingCall(c)
	if err != nil {
		return err
	}
	t, err := rs.Routing(c.Request().Context(), tenant(c))
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", routingETag(t.Version))
	return c.JSON(http.StatusOK, viewOf(c).routing(t))
}

// putRouting replaces the tenant's rules: 200 with them and their new
// version; 409 when If-Match names another version than the stored one.
func (s *Server) putRouting(c echo.Context) error {
	rs, err := s.routingCall(c)
	if err != nil {
		return err
	}
	ifVersion, err := ifMatch(c.Request().Header)
	if err != nil {
		return err
	}
	rules, err := readRules(c)
	if err != nil {
		return err
	}
	t, err := rs.PutRouting(c.Request().Context(), tenant(c), rules, ifVersion)
	if err != nil {
		return err
	}
	c.Set(ctxKeyAuditDetail, fmt.Sprintf("version %d, %d rules", t.Version, len(t.Rules)))
	c.Response().Header().Set("ETag", routingETag(t.Version))
	return c.JSON(http.StatusOK, viewOf(c).routing(t))
}

// dryRunRouting says where the tenant's rules send a call to a number,
// changing nothing: 200 with the rule that matched (null for none), the
// switch and trunk, the log line and the number's type and country.
func (s *Server) dryRunRouting(c echo.Context) error {
	rs, err := s.routingCall(c)
	if err != nil {
		return err
	}
	obj, err := readObject(c, false, "to")
	if err != nil {
		return err
	}
	var to string
	if err := obj.str("to", &to); err != nil {
		return err
	}
	if to == "" {
		return controller.FieldError("to", "is required: the number to route")
	}
	d, err := rs.DryRunRoute(c.Request().Context(), tenant(c), to)
	if err != nil {
		return err
	}
	v := viewOf(c)
	d.To, d.Log = v.number(d.To), v.text(d.Log)
	return c.JSON(http.StatusOK, d)
}

// routing masks what in a routing document may hold a number: prefixes
// (a long one is a whole number), names and log lines.
func (v numberView) routing(t controller.RoutingTable) controller.RoutingTable {
	t.Rules = orEmpty(t.Rules)
	if v.full {
		return t
	}
	out := make([]controller.RouteRule, len(t.Rules))
	for i, r := range t.Rules {
		r.Name, r.Log = v.text(r.Name), v.text(r.Log)
		r.Match.Prefixes = v.numbers(r.Match.Prefixes)
		out[i] = r
	}
	t.Rules = out
	return t
}
