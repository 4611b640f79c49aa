package api_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
)

// validRouting is a valid body of PUT /v1/routing; validDryRun of the dry run.
const (
	validRouting = `{"rules":[{"name":"ny","match":{"prefixes":["+1212"],"countries":["US"],"types":["fixed_line_or_mobile"]},` +
		`"switch":"fs1","trunk":"mobile","log":"NY via mobile"}]}`
	validDryRun = `{"to":"+12125551234"}`
)

// fakeRouting is an in-memory, tenant-aware controller.RoutingService that
// checks rules as controller/dialer does, over one switch fs1 with the
// trunks carrier (its default) and mobile.
type fakeRouting struct {
	routeMu sync.Mutex
	tables  map[string]controller.RoutingTable // by tenant
}

var _ controller.RoutingService = (*fakeRouting)(nil)

func newFakeRouting() *fakeRouting {
	return &fakeRouting{tables: map[string]controller.RoutingTable{tenantA: {Version: 2, Rules: []controller.RouteRule{
		{Name: "acme east", Match: controller.RouteMatch{Prefixes: []string{"+1212555"}}, Switch: "fs1", Trunk: "mobile", Log: "acme line"},
		{Name: "acme rest", Switch: "fs1"},
	}}}}
}

// routingSnapshot is everything the fake stores, as comparable text.
func (f *fakeRouting) routingSnapshot() string {
	f.routeMu.Lock()
	defer f.routeMu.Unlock()
	return fmt.Sprintf("%+v", f.tables)
}

var fakePrefix = regexp.MustCompile(`^\+[0-9]{1,15}$`)

func (f *fakeRouting) Routing(_ context.Context, tenant string) (controller.RoutingTable, error) {
	f.routeMu.Lock()
	defer f.routeMu.Unlock()
	t := f.tables[tenant]
	if t.Rules == nil {
		t.Rules = []controller.RouteRule{}
	}
	return t, nil
}

func (f *fakeRouting) PutRouting(_ context.Context, tenant string, rules []controller.RouteRule, ifVersion int64) (controller.RoutingTable, error) {
	for i, r := range rules {
		field := fmt.Sprintf("rules[%d]", i)
		for j, p := range r.Match.Prefixes {
			if !fakePrefix.MatchString(p) {
				return controller.RoutingTable{}, controller.FieldError(fmt.Sprintf("%s.match.prefixes[%d]", field, j), "must be an E.164 prefix")
			}
		}
		for j, c := range r.Match.Countries {
			if !compliance.KnownRegion(c) {
				return controller.RoutingTable{}, controller.FieldError(fmt.Sprintf("%s.match.countries[%d]", field, j), "must be a region")
			}
		}
		for j, k := range r.Match.Types {
			if !slices.Contains(controller.NumberTypes, k) {
				return controller.RoutingTable{}, controller.FieldError(fmt.Sprintf("%s.match.types[%d]", field, j), "must be a number type")
			}
		}
		if r.Switch != "" && r.Switch != "fs1" {
			return controller.RoutingTable{}, controller.FieldError(field+".switch", "no such switch")
		}
		if r.Trunk != "" && r.Trunk != "carrier" && r.Trunk != "mobile" {
			return controller.RoutingTable{}, controller.FieldError(field+".trunk", "no such trunk")
		}
		for name, v := range map[string]string{"name": r.Name, "log": r.Log} {
			if err := controller.CheckText(field+"."+name, v); err != nil || len(v) > 200 {
				return controller.RoutingTable{}, controller.FieldError(field+"."+name, "must be at most 200 printable characters")
			}
		}
	}
	f.routeMu.Lock()
	defer f.routeMu.Unlock()
	t := f.tables[tenant]
	if ifVersion >= 0 && ifVersion != t.Version {
		return controller.RoutingTable{}, controller.Errorf(controller.ECONFLICT, "the routing rules are no longer version %d", ifVersion)
	}
	if rules == nil {
		rules = []controller.RouteRule{}
	}
	t = controller.RoutingTable{Version: t.Version + 1, Rules: rules, UpdatedAt: fixedTime}
	f.tables[tenant] = t
	return t, nil
}

func (f *fakeRouting) DryRunRoute(ctx context.Context, tenant, number string) (controller.RouteDecision, error) {
	if err := controller.CheckText("to", number); err != nil {
		return controller.RouteDecision{}, err
	}
	n, err := compliance.ParseNumber(number, "")
	if err != nil {
		return controller.RouteDecision{}, err
	}
	t, _ := f.Routing(ctx, tenant)
	d := controller.RouteDecision{To: n.E164, NumberType: compliance.NumberType(n), Country: n.Region, Version: t.Version}
	for i, r := range t.Rules {
		if len(r.Match.Prefixes) == 0 || slices.ContainsFunc(r.Match.Prefixes, func(p string) bool { return strings.HasPrefix(n.E164, p) }) {
			d.Rule = &controller.RouteRef{Index: i, Name: r.Name}
			d.Switch, d.Trunk, d.Log = r.Switch, r.Trunk, r.Log
			break
		}
	}
	return d, nil
}
