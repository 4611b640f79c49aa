package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/api"
	"github.com/callgate/callgate/controller"
)

// The authorisation matrix: every registered route × every role × own or
// other tenant (and, for agents, own or another agent's call or agent), over a
// tenant-aware fake of every service. Tenant acme owns all the data the
// paths name; globex asks for it too and must learn nothing.

const (
	tenantA = "acme"
	tenantB = "globex"
)

// Fixed IDs of acme's data. Every acme string carries a marker ("acme",
// "5557770", "5557779" or one of these UUIDs) that must never reach globex.
const (
	callAlice = controller.CallID("aaaaaaaa-0000-4000-8000-00000000a11c")
	callBob   = controller.CallID("aaaaaaaa-0000-4000-8000-000000000b0b")
	recAlice  = "aaaaaaaa-1111-4000-8000-00000000a11c"
	recBob    = "aaaaaaaa-1111-4000-8000-000000000b0b"
	consentA  = "acme-consent"
	refusalA  = "f0000000-0000-4000-8000-000000000001" // refusals are global: no tenant marker
	listA     = "acme-list"
	policyA   = "acme-policy"
	flowA     = "acme-flow"
	promptA   = "acme-prompt"
	numberA   = "+15557770001" // on acme's list
	callerA   = "+15557770002" // acme's caller ID
	bobNumber = "+15557779999" // bob's customer
)

var leakMarkers = slices.Concat([]string{"acme", "5557770", "5557779", string(callAlice), string(callBob), recAlice, recBob},
	campaignMarkers, agentMarkers)

// bobMarkers are what alice must never see of bob's call and of bob.
var bobMarkers = []string{string(callBob), recBob, "5557779", agentBob}

// cellRequest is what one route is called with in the matrix.
type cellRequest struct {
	query, body, contentType string
}

// matrixRequests gives every mutating or query-needing route a valid body.
// A route missing here is called with no body and no query.
func matrixRequests(t testing.TB) map[string]cellRequest {
	t.Helper()
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	require.NoError(t, mw.WriteField("text", "hello"))
	fw, err := mw.CreateFormFile("audio", "p.wav")
	require.NoError(t, err)
	_, _ = fw.Write([]byte("RIFF"))
	require.NoError(t, mw.Close())
	js := func(s string) cellRequest { return cellRequest{body: s, contentType: "application/json"} }
	return map[string]cellRequest{
		"POST /v1/calls":                     js(`{"to":"+15558880009","from":"+15558880002"}`),
		"POST /v1/compliance/check":          js(`{"to":"+15558880009"}`),
		"GET /v1/consents":                   {query: "number=" + url.QueryEscape(numberA)},
		"POST /v1/consents":                  js(`{"number":"+15558880009","purpose":"marketing","source":"api_import"}`),
		"GET /v1/refusals":                   {query: "number=" + url.QueryEscape(numberA)},
		"POST /v1/refusals":                  js(`{"number":"+15558880009"}`),
		"POST /v1/dnc/lists":                 js(`{"id":"new-list","name":"new","kind":"internal"}`),
		"POST /v1/dnc/lists/:id/numbers":     js(`{"number":"+15558880009"}`),
		"POST /v1/dnc/lists/:id/import":      {body: "+15558880009\n", contentType: "text/csv"},
		"PUT /v1/policies/:id":               js(`{"name":"p"}`),
		"POST /v1/policies/:id/assign":       js(`{}`),
		"POST /v1/caller-ids":                js(`{"number":"+15558880009"}`),
		"PUT /v1/flows/:id":                  js(`{"name":"f"}`),
		"POST /v1/flows/validate":            js(`{"name":"f"}`),
		"POST /v1/prompts/:name":             {body: form.String(), contentType: mw.FormDataContentType()},
		"POST /v1/calls/:id/hangup":          js(`{}`),
		"POST /v1/calls/:id/tags":            js(`{"tags":{"interest":"high"},"disposition":"callback"}`),
		"POST /v1/calls/:id/recording/pause": js(`{}`),
		"GET /v1/exports/trace":              {query: "from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&format=json"},
		"POST /v1/campaigns":                 js(validCampaign),
		"PUT /v1/campaigns/:id":              js(validCampaign),
		"POST /v1/campaigns/:id/recycle":     js(`{"outcomes":["no_answer","busy"]}`),
		"POST /v1/lead-lists":                js(`{"name":"new list"}`),
		"POST /v1/lead-lists/:id/imports":    {body: validLeadCSV, contentType: "text/csv"},
		"POST /v1/agents":                    js(validAgent),
		"POST /v1/agents/:id/state":          js(`{"state":"available"}`),
		"POST /v1/agents/:id/wrapup":         js(`{"disposition":"sale","tags":{"interest":"high"}}`),
		"PUT /v1/routing":                    js(validRouting),
		"POST /v1/routing/dry-run":           js(validDryRun),
	}
}

// upserts create or version a resource by the name in the path: another
// tenant using the same name writes its own (or gets 409), never acme's.
var upserts = []string{"PUT /v1/policies/:id", "PUT /v1/flows/:id", "POST /v1/prompts/:name"}

// validCampaign and validLeadCSV are valid bodies of a new campaign (over
// acme's lead list) and of a lead upload.
const (
	validCampaign = `{"name":"spring","caller_ids":["+15558880002"],"list_ids":["` + leadListA + `"]}`
	validLeadCSV  = "phone,name\n+15558880009,Ann\n"
)

// namesAcmeData lists routes whose valid body names acme's data (a campaign
// over acme's lead list): another tenant's request is refused as invalid,
// naming the member, as for a list that does not exist.
var namesAcmeData = map[string]string{"POST /v1/campaigns": "list_ids[0]"}

// globalByDesign lists routes whose resources every tenant shares. None:
// a refusal lock holds for every tenant but only the tenant that recorded it
// may lift it.
var globalByDesign []string

// target fills a route's path parameters with acme's IDs; for a call (or
// its recording) or an agent alice's, or bob's when otherAgent.
func target(path string, otherAgent bool) string {
	call, rec, ag := callAlice, recAlice, agentAlice
	if otherAgent {
		call, rec, ag = callBob, recBob, agentBob
	}
	id := map[string]string{
		"/v1/calls/": string(call), "/v1/attempts/": string(call), "/v1/recordings/": rec,
		"/v1/consents/": consentA, "/v1/refusals/": refusalA, "/v1/dnc/lists/": listA,
		"/v1/policies/": policyA, "/v1/flows/": flowA,
		"/v1/campaigns/": campaignActionTarget(path), "/v1/lead-lists/": leadListA, "/v1/lead-imports/": leadImportA,
		"/v1/agents/": ag,
	}
	out := path
	for prefix, v := range id {
		if strings.HasPrefix(path, prefix) {
			out = strings.Replace(out, ":id", v, 1)
		}
	}
	number := numberA // on acme's list
	if strings.HasPrefix(path, "/v1/caller-ids/") {
		number = callerA
	}
	out = strings.Replace(out, ":number", url.PathEscape(number), 1)
	out = strings.Replace(out, ":lead_id", strconv.Itoa(leadA), 1)
	return strings.Replace(out, ":name", promptA, 1)
}

// campaignActionTarget is the acme campaign a campaign route is called on:
// one whose state allows the route's action.
func campaignActionTarget(path string) string {
	switch {
	case strings.HasSuffix(path, "/pause"):
		return campaignRunning
	case strings.HasSuffix(path, "/resume"):
		return campaignPaused
	}
	return campaignA
}

type cell struct {
	role       controller.Role
	tenant     string
	otherAgent bool // an agent asking for another agent's call, or another agent
}

func (c cell) String() string {
	s := string(c.role) + "@" + c.tenant
	if c.otherAgent {
		s += " (another agent's)"
	}
	return s
}

func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	reqs := matrixRequests(t)
	probe := setupWorld(t, newWorld())
	cells, leaks := 0, 0
	for _, rp := range probe.srv.Policies() {
		if rp.Policy.Open {
			continue
		}
		route := rp.Method + " " + rp.Path
		namesCall := (rp.Policy.AgentScoped || rp.Policy.AgentSelf) && strings.Contains(rp.Path, ":id")
		var matrix []cell
		for _, role := range controller.Roles() {
			matrix = append(matrix, cell{role: role, tenant: tenantA}, cell{role: role, tenant: tenantB})
			if role == controller.RoleAgent && namesCall {
				matrix = append(matrix, cell{role: role, tenant: tenantA, otherAgent: true})
			}
		}
		for _, cl := range matrix {
			t.Run(route+" as "+cl.String(), func(t *testing.T) {
				w := newWorld()
				b := setupWorld(t, w)
				agentID := ""
				if cl.role == controller.RoleAgent {
					agentID = map[string]string{tenantA: agentAlice, tenantB: agentCarol}[cl.tenant]
				}
				secret := b.tokens.issue(t, cl.tenant, cl.role, agentID)
				cr := reqs[route]
				tgt := target(rp.Path, cl.otherAgent)
				if cr.query != "" {
					tgt += "?" + cr.query
				}
				var body io.Reader
				if cr.body != "" {
					body = strings.NewReader(cr.body)
				}
				req := httptest.NewRequest(rp.Method, tgt, body)
				if cr.contentType != "" {
					req.Header.Set("Content-Type", cr.contentType)
				}
				req.Header.Set("Authorization", "Bearer "+secret)
				rec := b.serve(req)
				got := rec.Body.String()

				hasParam := strings.Contains(rp.Path, ":")
				switch {
				case !rp.Policy.Allows(cl.role):
					requireError(t, rec, http.StatusForbidden, "forbidden", "")
				case cl.tenant == tenantB && namesAcmeData[route] != "":
					requireError(t, rec, http.StatusBadRequest, "invalid", namesAcmeData[route])
				case cl.tenant == tenantB && slices.Contains(upserts, route):
					require.Contains(t, []int{200, 201, 409}, rec.Code, got)
				case cl.tenant == tenantB && slices.Contains(globalByDesign, route):
					require.NotContains(t, []int{401, 403}, rec.Code, got)
				case cl.tenant == tenantB && hasParam:
					requireError(t, rec, http.StatusNotFound, "not_found", "")
				case cl.otherAgent:
					requireError(t, rec, http.StatusNotFound, "not_found", "")
				default:
					require.True(t, rec.Code >= 200 && rec.Code < 300, "allowed: got %d %s", rec.Code, got)
				}

				markers := []string{}
				switch {
				case slices.Contains(globalByDesign, route):
				case cl.tenant == tenantB:
					markers = leakMarkers
				case cl.role == controller.RoleAgent:
					markers = bobMarkers
				}
				// What the client sent it knows already: an echo is no leak.
				seen := strings.ToLower(got)
				if u, err := url.PathUnescape(req.URL.Path); err == nil {
					for _, seg := range strings.Split(u, "/") {
						if seg != "" {
							seen = strings.ReplaceAll(seen, strings.ToLower(seg), "")
						}
					}
				}
				for _, v := range req.URL.Query() {
					seen = strings.ReplaceAll(seen, strings.ToLower(v[0]), "")
				}
				for _, m := range markers {
					if strings.Contains(seen, strings.ToLower(m)) {
						leaks++
						t.Errorf("leak of %q in %s", m, got)
					}
				}
				// Every refusal is audited.
				if rec.Code == http.StatusForbidden || cl.otherAgent {
					entries := w.audit.all()
					last := entries[len(entries)-1]
					require.Equal(t, "denied", last.Outcome)
					require.Equal(t, route, last.Action)
					require.Equal(t, cl.tenant, last.TenantID)
				}
			})
			cells++
		}
	}
	t.Logf("%d cells, %d leaks", cells, leaks)
	require.Zero(t, leaks)
	require.Greater(t, cells, 300)
}

// setupWorld serves the world with every service and audit connected.
func setupWorld(t testing.TB, w *world) *bundle {
	t.Helper()
	b := setup(t)
	b.srv = api.New(api.Config{Auth: b.tokens, UploadDir: t.TempDir()}, w, nil, nil)
	b.srv.SetMedia(w, w)
	b.srv.SetCampaigns(w)
	b.srv.SetAgents(w)
	b.srv.SetRouting(w)
	b.srv.SetAudit(w.audit)
	b.srv.SetTraceExporter(w)
	b.h = b.srv.Handler()
	return b
}

func TestAgentSeesOnlyTheirCalls(t *testing.T) {
	t.Parallel()
	w := newWorld()
	b := setupWorld(t, w)
	alice := "Bearer " + b.tokens.issue(t, tenantA, controller.RoleAgent, agentAlice)

	rec := b.do(t, http.MethodPost, "/v1/calls", `{"to":"+15557770200","from":"+15557770002"}`, "Authorization", alice)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	var placed api.CallResource
	decode(t, rec, &placed)
	require.Equal(t, agentAlice, placed.AgentID, "a call placed with an agent's token is theirs")
	requireError(t, b.do(t, http.MethodPost, "/v1/calls", `{"to":"+15557770200","from":"+15557770002","agent_id":"bob"}`,
		"Authorization", alice), http.StatusForbidden, "forbidden", "agent_id")

	rec = b.do(t, http.MethodGet, "/v1/calls", "", "Authorization", alice)
	require.Equal(t, http.StatusOK, rec.Code)
	var list api.CallList
	decode(t, rec, &list)
	var ids []controller.CallID
	for _, c := range list.Calls {
		ids = append(ids, c.ID)
	}
	require.ElementsMatch(t, []controller.CallID{callAlice, placed.ID}, ids)

	// An admin may assign a call to an agent.
	rec = b.do(t, http.MethodPost, "/v1/calls", `{"to":"+15557770201","from":"+15557770002","agent_id":"bob"}`,
		"Authorization", "Bearer "+b.tokens.issue(t, tenantA, controller.RoleAdmin, ""))
	require.Equal(t, http.StatusAccepted, rec.Code)
	decode(t, rec, &placed)
	require.Equal(t, "bob", placed.AgentID)
	requireError(t, b.do(t, http.MethodGet, "/v1/calls/"+string(placed.ID), "", "Authorization", alice), http.StatusNotFound, "not_found", "")
}

func TestRecordingDisposition(t *testing.T) {
	t.Parallel()
	w := newWorld()
	b := setupWorld(t, w)
	for role, want := range map[controller.Role]string{controller.RoleAdmin: "attachment", controller.RoleQA: "inline"} {
		rec := b.do(t, http.MethodGet, "/v1/recordings/"+recAlice+"/audio", "",
			"Authorization", "Bearer "+b.tokens.issue(t, tenantA, role, ""))
		require.Equal(t, http.StatusOK, rec.Code)
		require.True(t, strings.HasPrefix(rec.Header().Get("Content-Disposition"), want+";"), role)
	}
	// Each stream is audited, with how it was served.
	var streams []controller.AuditEntry
	for _, e := range w.audit.all() {
		if e.Action == "GET /v1/recordings/:id/audio" {
			streams = append(streams, e)
		}
	}
	require.Len(t, streams, 2)
	for _, e := range streams {
		require.Equal(t, recAlice, e.Target)
		require.Equal(t, "ok", e.Outcome)
		require.Contains(t, e.Detail, "filename")
	}
}

func TestAuditMasksNumbers(t *testing.T) {
	t.Parallel()
	w := newWorld()
	b := setupWorld(t, w)
	admin := "Bearer " + b.tokens.issue(t, tenantA, controller.RoleAdmin, "")
	rec := b.do(t, http.MethodDelete, "/v1/dnc/lists/"+listA+"/numbers/"+url.PathEscape(numberA), "", "Authorization", admin)
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	rec = b.do(t, http.MethodDelete, "/v1/caller-ids/"+url.PathEscape(callerA), "", "Authorization", admin)
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	entries := w.audit.all()
	require.Len(t, entries, 3)
	for _, e := range entries[1:] {
		raw, err := json.Marshal(e)
		require.NoError(t, err)
		require.NotContains(t, string(raw), "5557770001")
		require.NotContains(t, string(raw), "5557770002")
	}
	require.Equal(t, listA, entries[1].Target)
	require.Equal(t, "number ****0001", entries[1].Detail)
	require.Equal(t, "****0002", entries[2].Target)
	require.Equal(t, fmt.Sprint(http.StatusNoContent), fmt.Sprint(entries[2].Status))
}

// echoRoutes lists the registered routes as "METHOD /path".
func echoRoutes(t testing.TB, b *bundle) []string {
	t.Helper()
	e, ok := b.h.(*echo.Echo)
	require.True(t, ok)
	var out []string
	for _, r := range e.Routes() {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}
