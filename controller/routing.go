package controller

import (
	"context"
	"time"
)

// Routing (DESIGN 1.3): each tenant has an ordered list of rules over the
// callee's E.164 number that choose the switch and the trunk a call leaves
// through, and may log a line. The first rule that matches wins; a number no
// rule matches goes to any switch, on its default trunk. Rules are data,
// replaced as one versioned document through the API and tried with a dry
// run. Blocking a number is the compliance gate's job, never a route's.

// RouteMatch is what a rule matches. Each non-empty list must match (any of
// its entries); an empty RouteMatch matches every number.
type RouteMatch struct {
	// Prefixes are E.164 prefixes, "+" and 1 to 15 digits: "+1212".
	Prefixes []string `json:"prefixes,omitempty"`
	// Countries are ISO 3166-1 alpha-2 regions of the number ("US"; "001"
	// for non-geographic numbers), as the number library assigns them.
	Countries []string `json:"countries,omitempty"`
	// Types are number types, from NumberTypes. North American numbers are
	// fixed_line_or_mobile: the numbering plan does not tell them apart.
	Types []string `json:"types,omitempty"`
}

// Empty reports whether m matches every number.
func (m RouteMatch) Empty() bool {
	return len(m.Prefixes) == 0 && len(m.Countries) == 0 && len(m.Types) == 0
}

// RouteRule is one routing rule.
type RouteRule struct {
	// Name labels the rule in logs and dry runs; optional.
	Name string `json:"name,omitempty"`
	// Match selects the numbers the rule routes.
	Match RouteMatch `json:"match"`
	// Switch is a configured switch; empty: any switch.
	Switch string `json:"switch,omitempty"`
	// Trunk is a trunk of Switch (of every switch when Switch is empty);
	// empty: the switch's default trunk.
	Trunk string `json:"trunk,omitempty"`
	// Log, when set, is logged (with the number masked) for every call
	// the rule routes.
	Log string `json:"log,omitempty"`
}

// NumberTypes are the number types a rule may match: libphonenumber's
// classification.
var NumberTypes = []string{"fixed_line", "mobile", "fixed_line_or_mobile", "toll_free", "premium_rate",
	"shared_cost", "voip", "personal_number", "pager", "uan", "voicemail", "unknown"}

// RoutingTable is a tenant's routing rules as stored: one document,
// replaced whole, with a version that grows by one on every replacement
// (0: never set, no rules).
type RoutingTable struct {
	Version   int64       `json:"version"`
	Rules     []RouteRule `json:"rules"`
	UpdatedAt time.Time   `json:"updated_at,omitzero"`
}

// RouteRef names the rule that routed a number.
type RouteRef struct {
	Index int    `json:"index"`
	Name  string `json:"name,omitempty"`
}

// RouteDecision is where the rules send a number.
type RouteDecision struct {
	To         string    `json:"to"`   // the number in E.164
	Rule       *RouteRef `json:"rule"` // the rule that matched; nil: none did
	Switch     string    `json:"switch"`
	Trunk      string    `json:"trunk"`
	Log        string    `json:"log,omitempty"`
	NumberType string    `json:"number_type"` // one of NumberTypes
	Country    string    `json:"country"`     // the number's region
	Version    int64     `json:"version"`     // of the rules applied
}

// RouteFunc routes one E.164 number: the switch (empty: any) and the trunk
// (empty: the switch's default) its call must use.
type RouteFunc func(number string) (switchName, trunk string)

// RoutingStore keeps each tenant's routing rules. Implemented by
// controller/postgres.
type RoutingStore interface {
	// RoutingRules returns the tenant's rules: version 0 and none when
	// they were never set.
	RoutingRules(ctx context.Context, tenant string) (RoutingTable, error)
	// RoutingVersion returns the version of the tenant's rules alone (0:
	// never set), to check a cached copy cheaply.
	RoutingVersion(ctx context.Context, tenant string) (int64, error)
	// PutRoutingRules replaces the tenant's rules in one statement and
	// returns them with their new version. With ifVersion >= 0 the
	// replacement happens only if the stored version is ifVersion (0:
	// never set), else ECONFLICT. Returns EINVALID naming tenant_id for an
	// unknown tenant. The rules are stored as given: the service checks
	// them.
	PutRoutingRules(ctx context.Context, tenant string, rules []RouteRule, ifVersion int64) (RoutingTable, error)
}

// RoutingService is what the HTTP API drives for routing. Implemented by
// controller/dialer.
type RoutingService interface {
	// Routing returns the tenant's rules (version 0, none, if never set).
	Routing(ctx context.Context, tenant string) (RoutingTable, error)
	// PutRouting checks rules and replaces the tenant's with them,
	// returning the new version. Returns EINVALID naming the field
	// (rules[2].match.prefixes[0]) for a bad rule, a switch that is not
	// configured or a trunk the switch does not have; ECONFLICT when
	// ifVersion >= 0 and the stored version differs.
	PutRouting(ctx context.Context, tenant string, rules []RouteRule, ifVersion int64) (RoutingTable, error)
	// DryRunRoute says where the tenant's rules send a call to number,
	// writing nothing (a rule's log line is returned, not logged).
	// Returns EINVALID naming "to" for a number that cannot be parsed.
	DryRunRoute(ctx context.Context, tenant, number string) (RouteDecision, error)
}
