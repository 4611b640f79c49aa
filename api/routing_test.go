package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/api"
	"github.com/callgate/callgate/controller"
)

// setupRouting serves the world's routing service; requests carry an admin
// token of acme, which has rules (version 2).
func setupRouting(t *testing.T) (*bundle, *world) {
	t.Helper()
	w := newWorld()
	b := setup(t)
	b.srv = api.New(api.Config{Auth: b.tokens}, w, nil, nil)
	b.srv.SetRouting(w)
	b.srv.SetAudit(w.audit)
	b.h = b.srv.Handler()
	b.admin = b.tokens.issue(t, tenantA, controller.RoleAdmin, "")
	return b, w
}

func TestRoutingAPI(t *testing.T) {
	t.Parallel()
	b, w := setupRouting(t)

	rec := b.do(t, http.MethodGet, "/v1/routing", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, `"2"`, rec.Header().Get("ETag"))
	var table controller.RoutingTable
	decode(t, rec, &table)
	require.EqualValues(t, 2, table.Version)
	require.Len(t, table.Rules, 2)
	require.Equal(t, "acme east", table.Rules[0].Name)

	// The dry run names the rule, or none.
	rec = b.do(t, http.MethodPost, "/v1/routing/dry-run", `{"to":"+12125551234"}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var d controller.RouteDecision
	decode(t, rec, &d)
	require.Equal(t, controller.RouteDecision{To: "+12125551234", Rule: &controller.RouteRef{Index: 0, Name: "acme east"},
		Switch: "fs1", Trunk: "mobile", Log: "acme line", NumberType: d.NumberType, Country: "US", Version: 2}, d)
	requireError(t, b.do(t, http.MethodPost, "/v1/routing/dry-run", `{"to":"+1212555"}`), http.StatusBadRequest, "invalid", "to")
	requireError(t, b.do(t, http.MethodPost, "/v1/routing/dry-run", `{}`), http.StatusBadRequest, "invalid", "to")

	// Replacing: If-Match is optional; a stale one is 409 and stores nothing.
	rec = b.do(t, http.MethodPut, "/v1/routing", validRouting, "If-Match", `"2"`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, `"3"`, rec.Header().Get("ETag"))
	decode(t, rec, &table)
	require.EqualValues(t, 3, table.Version)
	require.Equal(t, []controller.RouteRule{{Name: "ny", Match: controller.RouteMatch{Prefixes: []string{"+1212"},
		Countries: []string{"US"}, Types: []string{"fixed_line_or_mobile"}}, Switch: "fs1", Trunk: "mobile", Log: "NY via mobile"}}, table.Rules)
	require.Equal(t, "PUT /v1/routing", lastAudit(w).Action)
	require.Equal(t, "version 3, 1 rules", lastAudit(w).Detail)
	requireError(t, b.do(t, http.MethodPut, "/v1/routing", validRouting, "If-Match", `"2"`), http.StatusConflict, "conflict", "")
	requireError(t, b.do(t, http.MethodPut, "/v1/routing", validRouting, "If-Match", `3`), http.StatusBadRequest, "invalid", "If-Match")
	rec = b.do(t, http.MethodPut, "/v1/routing", `{"rules":[]}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), `"rules":[]`)
	require.Contains(t, rec.Body.String(), `"version":4`)

	// Strict decoding, each member named; the service's checks name theirs.
	for body, field := range map[string]string{
		`{}`:             "rules",
		`{"rules":null}`: "rules",
		`{"rules":{}}`:   "rules",
		`{"rules":[{"match":{"prefix":["+1"]}}]}`:         "rules[0].match.prefix",
		`{"rules":[{},{"match":{"prefixes":"+1"}}]}`:      "rules[1].match.prefixes",
		`{"rules":[{"match":[]}]}`:                        "rules[0].match",
		`{"rules":[{"switch":1}]}`:                        "rules[0].switch",
		`{"rules":[{"block":true}]}`:                      "rules[0].block",
		`{"rules":[{"match":{"prefixes":["1212"]}}]}`:     "rules[0].match.prefixes[0]",
		`{"rules":[{"match":{"types":["cell"]}}]}`:        "rules[0].match.types[0]",
		`{"rules":[{"switch":"fs9"}]}`:                    "rules[0].switch",
		`{"rules":[{"log":"a\u0000b"}]}`:                  "rules[0].log",
		`{"rules":[{"match":{"countries":["XX"]}}]}`:      "rules[0].match.countries[0]",
		`{"rules":[{"match":{"prefixes":["+1"]}}],"x":1}`: "x",
	} {
		requireError(t, b.do(t, http.MethodPut, "/v1/routing", body), http.StatusBadRequest, "invalid", field)
	}
	rec = b.do(t, http.MethodGet, "/v1/routing", "")
	require.Equal(t, `"4"`, rec.Header().Get("ETag"), "refused bodies store nothing")
	requireError(t, b.do(t, http.MethodGet, "/v1/routing?version=1", ""), http.StatusBadRequest, "invalid", "version")

	// Without a routing service the routes answer 503.
	b2 := setup(t)
	requireError(t, b2.do(t, http.MethodGet, "/v1/routing", ""), http.StatusServiceUnavailable, "unavailable", "")
}
