package dialer

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
	"github.com/callgate/callgate/controller/redact"
)

// Routing rules (controller/routing.go) applied where calls are created:
// API calls in CreateCall (unless the request names a switch), campaign
// calls in DispatchLeads (unless the campaign names one). The rule's switch
// goes on the call and its attempt (only that switch's owner claims it),
// its trunk on the call (the owner's trunk limits and the driver's
// {trunk}).
//
// Each controller caches each tenant's rules. A cached copy is used for
// routeRecheck, then its version is read again (one index lookup) and the
// rules reloaded only if it changed; a PUT through this controller replaces
// the copy at once. So a change made through another controller applies to
// calls created here at most routeRecheck later, and neither an API call
// nor a campaign tick (every 20 ms) costs a database round trip for it.

// routeRecheck is how long a cached copy of a tenant's rules is used
// before its version is checked again.
const routeRecheck = time.Second

// Bounds of a routing document.
const (
	maxRouteRules   = 500
	maxRouteEntries = 1000 // per match list
	maxRouteText    = 200  // a rule's name and log line
)

var (
	routePrefixRE  = regexp.MustCompile(`^\+[0-9]{1,15}$`)
	routeCountryRE = regexp.MustCompile(`^([A-Z]{2}|001)$`)
	routeTrunkRE   = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
)

// routeCache holds each tenant's rules as last read.
type routeCache struct {
	mu sync.Mutex
	m  map[string]routeEntry
}

type routeEntry struct {
	table   controller.RoutingTable
	checked time.Time
}

// store keeps t for tenant unless a newer version is kept already.
func (rc *routeCache) store(tenant string, t controller.RoutingTable, at time.Time) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.m == nil {
		rc.m = map[string]routeEntry{}
	}
	if e, ok := rc.m[tenant]; ok && e.table.Version > t.Version {
		return
	}
	rc.m[tenant] = routeEntry{table: t, checked: at}
}

func (rc *routeCache) get(tenant string) (routeEntry, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	e, ok := rc.m[tenant]
	return e, ok
}

// rules returns the tenant's routing rules, cached (see above). Returns
// the store's error when they cannot be read: a call must not be routed by
// rules that may be stale beyond routeRecheck.
func (s *Service) rules(ctx context.Context, tenant string) (controller.RoutingTable, error) {
	if s.routing == nil {
		return controller.RoutingTable{}, nil
	}
	now := s.cfg.Now()
	e, ok := s.routes.get(tenant)
	if ok && now.Sub(e.checked) < routeRecheck {
		return e.table, nil
	}
	v, err := s.routing.RoutingVersion(ctx, tenant)
	if err != nil {
		return controller.RoutingTable{}, fmt.Errorf("reading routing rules: %w", err)
	}
	t := e.table
	if !ok || v != t.Version {
		if t, err = s.routing.RoutingRules(ctx, tenant); err != nil {
			return controller.RoutingTable{}, fmt.Errorf("reading routing rules: %w", err)
		}
	}
	s.routes.store(tenant, t, now)
	return t, nil
}

// numberFacts are what rules match a number on; the parsed ones are
// computed once, when a rule first needs them.
type numberFacts struct {
	e164, region  string
	parsed        bool
	country, kind string
}

func (f *numberFacts) load() {
	if f.parsed {
		return
	}
	f.parsed, f.kind = true, "unknown"
	if n, err := compliance.ParseNumber(f.e164, f.region); err == nil {
		f.country, f.kind = n.Region, compliance.NumberType(n)
	}
}

func (f *numberFacts) matches(m controller.RouteMatch) bool {
	if len(m.Prefixes) > 0 && !slices.ContainsFunc(m.Prefixes, func(p string) bool { return strings.HasPrefix(f.e164, p) }) {
		return false
	}
	if len(m.Countries) > 0 {
		f.load()
		if !slices.Contains(m.Countries, f.country) {
			return false
		}
	}
	if len(m.Types) > 0 {
		f.load()
		if !slices.Contains(m.Types, f.kind) {
			return false
		}
	}
	return true
}

// trunksOf returns the trunks of a configured switch (its default and
// those listed) and whether it is configured.
func (s *Service) trunksOf(name string) ([]string, bool) {
	o := s.owner(name)
	if o == nil {
		return nil, false
	}
	out := []string{}
	if o.limits.DefaultTrunk != "" {
		out = append(out, o.limits.DefaultTrunk)
	}
	for _, t := range o.limits.Trunks {
		out = append(out, t.Name)
	}
	return out, true
}

// usable reports whether a rule's switch and trunk are configured here: a
// rule stored before the configuration changed is passed over, never
// followed to a switch no owner serves.
func (s *Service) usable(r controller.RouteRule) bool {
	if r.Switch != "" {
		trunks, ok := s.trunksOf(r.Switch)
		return ok && (r.Trunk == "" || slices.Contains(trunks, r.Trunk))
	}
	if r.Trunk == "" {
		return true
	}
	s.mu.RLock()
	names := slices.Clone(s.names)
	s.mu.RUnlock()
	for _, name := range names {
		if trunks, _ := s.trunksOf(name); !slices.Contains(trunks, r.Trunk) {
			return false
		}
	}
	return true
}

// match returns the index of the first rule that routes f, -1 for none.
func (s *Service) match(rules []controller.RouteRule, f *numberFacts) int {
	for i, r := range rules {
		if f.matches(r.Match) {
			if s.usable(r) {
				return i
			}
			s.log.Warn("routing rule names a switch or trunk not configured here; passed over",
				"rule", i, "name", r.Name, "switch", r.Switch, "trunk", r.Trunk)
		}
	}
	return -1
}

// apply routes number by rules and logs the rule's line, if it has one.
func (s *Service) apply(rules []controller.RouteRule, number string, log ...any) (switchName, trunk string) {
	f := &numberFacts{e164: number, region: s.cfg.DefaultRegion}
	i := s.match(rules, f)
	if i < 0 {
		return "", ""
	}
	r := rules[i]
	s.metrics.routed.WithLabelValues(orLabel(r.Switch, "any"), orLabel(r.Trunk, "default")).Inc()
	if r.Log != "" {
		s.log.Info("routing rule matched", append(log, "rule", i, "name", r.Name, "to", controller.MaskNumber(number),
			"switch", r.Switch, "trunk", r.Trunk, "line", redact.String(r.Log))...)
	}
	return r.Switch, r.Trunk
}

func orLabel(v, empty string) string {
	if v == "" {
		return empty
	}
	return v
}

// routeCall routes an API call by its tenant's rules.
func (s *Service) routeCall(ctx context.Context, c controller.Call) (switchName, trunk string, err error) {
	t, err := s.rules(ctx, c.TenantID)
	if err != nil || len(t.Rules) == 0 {
		return "", "", err
	}
	switchName, trunk = s.apply(t.Rules, c.To, "tenant", c.TenantID)
	return switchName, trunk, nil
}

// campaignRoute returns how DispatchLeads routes campaign c's calls: nil
// when c names its switch (that explicit choice wins) or its tenant has no
// rules. The function it returns works on a copy of the rules and never
// blocks.
func (s *Service) campaignRoute(ctx context.Context, c controller.Campaign) (controller.RouteFunc, error) {
	if s == nil || c.Switch != "" {
		return nil, nil
	}
	t, err := s.rules(ctx, tenantOr(c.TenantID))
	if err != nil || len(t.Rules) == 0 {
		return nil, err
	}
	return func(number string) (string, string) {
		return s.apply(t.Rules, number, "campaign_id", c.ID)
	}, nil
}

var _ controller.RoutingService = (*Service)(nil)

// errNoRouting answers the routing administration without a store for it.
var errNoRouting = controller.Errorf(controller.EUNAVAILABLE, "routing rules are not available on this controller")

// Routing implements controller.RoutingService.
func (s *Service) Routing(ctx context.Context, tenant string) (controller.RoutingTable, error) {
	if s.routing == nil {
		return controller.RoutingTable{}, errNoRouting
	}
	tenant = tenantOr(tenant)
	t, err := s.routing.RoutingRules(ctx, tenant)
	if err == nil {
		s.routes.store(tenant, t, s.cfg.Now())
	}
	return t, err
}

// PutRouting implements controller.RoutingService.
func (s *Service) PutRouting(ctx context.Context, tenant string, rules []controller.RouteRule, ifVersion int64) (controller.RoutingTable, error) {
	if s.routing == nil {
		return controller.RoutingTable{}, errNoRouting
	}
	rules, err := s.checkRules(rules)
	if err != nil {
		return controller.RoutingTable{}, err
	}
	tenant = tenantOr(tenant)
	t, err := s.routing.PutRoutingRules(ctx, tenant, rules, ifVersion)
	if err != nil {
		return t, err
	}
	s.routes.store(tenant, t, s.cfg.Now())
	s.log.Info("routing rules replaced", "tenant", tenant, "version", t.Version, "rules", len(t.Rules))
	return t, nil
}

// DryRunRoute implements controller.RoutingService. It reads the stored
// rules (not the cached copy) and logs nothing.
func (s *Service) DryRunRoute(ctx context.Context, tenant, number string) (controller.RouteDecision, error) {
	if err := controller.CheckText("to", number); err != nil {
		return controller.RouteDecision{}, err
	}
	n, err := compliance.ParseNumber(number, s.cfg.DefaultRegion)
	if err != nil {
		return controller.RouteDecision{}, err
	}
	t, err := s.Routing(ctx, tenant)
	if err != nil {
		return controller.RouteDecision{}, err
	}
	f := &numberFacts{e164: n.E164, region: s.cfg.DefaultRegion}
	f.load()
	d := controller.RouteDecision{To: n.E164, NumberType: f.kind, Country: f.country, Version: t.Version}
	if i := s.match(t.Rules, f); i >= 0 {
		r := t.Rules[i]
		d.Rule = &controller.RouteRef{Index: i, Name: r.Name}
		d.Switch, d.Trunk, d.Log = r.Switch, r.Trunk, r.Log
	}
	if d.Trunk == "" && d.Switch != "" {
		if o := s.owner(d.Switch); o != nil {
			d.Trunk = o.limits.DefaultTrunk
		}
	}
	return d, nil
}

// checkRules validates a routing document against the switches configured
// here and returns it normalised (countries in upper case). Returns
// EINVALID naming the field: rules[2].match.prefixes[0].
func (s *Service) checkRules(rules []controller.RouteRule) ([]controller.RouteRule, error) {
	if len(rules) > maxRouteRules {
		return nil, controller.FieldError("rules", "at most %d rules", maxRouteRules)
	}
	out := make([]controller.RouteRule, 0, len(rules))
	for i, r := range rules {
		field := fmt.Sprintf("rules[%d]", i)
		for _, txt := range []struct{ name, v string }{{"name", r.Name}, {"log", r.Log}} {
			if len(txt.v) > maxRouteText {
				return nil, controller.FieldError(field+"."+txt.name, "must be at most %d bytes", maxRouteText)
			}
			if err := controller.CheckText(field+"."+txt.name, txt.v); err != nil {
				return nil, err
			}
		}
		m := r.Match
		lists := []struct {
			name string
			v    []string
		}{{"prefixes", m.Prefixes}, {"countries", m.Countries}, {"types", m.Types}}
		for _, l := range lists {
			if len(l.v) > maxRouteEntries {
				return nil, controller.FieldError(field+".match."+l.name, "at most %d entries", maxRouteEntries)
			}
		}
		for j, p := range m.Prefixes {
			if !routePrefixRE.MatchString(p) {
				return nil, controller.FieldError(fmt.Sprintf("%s.match.prefixes[%d]", field, j),
					"must be an E.164 prefix: + and 1 to 15 digits, such as +1212")
			}
		}
		countries := make([]string, len(m.Countries))
		for j, c := range m.Countries {
			up := strings.ToUpper(c)
			if !routeCountryRE.MatchString(up) || (up != "001" && !compliance.KnownRegion(up)) {
				return nil, controller.FieldError(fmt.Sprintf("%s.match.countries[%d]", field, j),
					"must be an ISO 3166-1 alpha-2 region such as US (001: non-geographic numbers)")
			}
			countries[j] = up
		}
		for j, t := range m.Types {
			if !slices.Contains(controller.NumberTypes, t) {
				return nil, controller.FieldError(fmt.Sprintf("%s.match.types[%d]", field, j),
					"must be one of %s", strings.Join(controller.NumberTypes, ", "))
			}
		}
		if err := s.checkTarget(field, r); err != nil {
			return nil, err
		}
		if len(m.Countries) == 0 {
			countries = nil
		}
		r.Match.Countries = countries
		out = append(out, r)
	}
	return out, nil
}

// checkTarget checks a rule's switch and trunk against the configuration.
func (s *Service) checkTarget(field string, r controller.RouteRule) error {
	if r.Switch != "" {
		if _, ok := s.trunksOf(r.Switch); !ok {
			return controller.FieldError(field+".switch", "no switch named %q is configured", r.Switch)
		}
	}
	if r.Trunk == "" {
		return nil
	}
	if !routeTrunkRE.MatchString(r.Trunk) {
		return controller.FieldError(field+".trunk", "must be 1-64 letters, digits, _ . or -")
	}
	if r.Switch != "" {
		if trunks, _ := s.trunksOf(r.Switch); !slices.Contains(trunks, r.Trunk) {
			return controller.FieldError(field+".trunk", "switch %q has no trunk %q", r.Switch, r.Trunk)
		}
		return nil
	}
	s.mu.RLock()
	names := slices.Clone(s.names)
	s.mu.RUnlock()
	for _, name := range names {
		if trunks, _ := s.trunksOf(name); !slices.Contains(trunks, r.Trunk) {
			return controller.FieldError(field+".trunk", "switch %q has no trunk %q: a rule for any switch needs a trunk every switch has", name, r.Trunk)
		}
	}
	return nil
}
