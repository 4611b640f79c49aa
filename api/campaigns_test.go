package api_test

import (
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/api"
	"github.com/callgate/callgate/controller"
)

// setupCampaigns serves the world's campaign service with cfg (its Auth
// replaced, UploadDir a fresh directory unless set); requests carry an
// admin token of acme, which owns the world's campaigns.
func setupCampaigns(t *testing.T, cfg api.Config) (*bundle, *world, string) {
	t.Helper()
	w := newWorld()
	b := setup(t)
	if cfg.UploadDir == "" {
		cfg.UploadDir = t.TempDir()
	}
	cfg.Auth = b.tokens
	b.srv = api.New(cfg, w, nil, nil)
	b.srv.SetCampaigns(w)
	b.srv.SetAudit(w.audit)
	b.h = b.srv.Handler()
	b.admin = b.tokens.issue(t, tenantA, controller.RoleAdmin, "")
	return b, w, cfg.UploadDir
}

// lastAudit is the newest entry of the world's audit log.
func lastAudit(w *world) controller.AuditEntry {
	entries := w.audit.all()
	return entries[len(entries)-1]
}

const unknownID = "bbbbbbbb-0000-4000-8000-000000000000"

func TestCampaignsAPI(t *testing.T) {
	t.Parallel()
	b, w, _ := setupCampaigns(t, api.Config{})

	rec := b.do(t, http.MethodPost, "/v1/campaigns", `{"name":" Spring ","caller_ids":["+15558880002"],"list_ids":["`+leadListA+`"],`+
		`"retry":{"busy":{"delay_seconds":600,"max":2}},"schedule":{"start":"0 9 * * 1-5","stop":"0 17 * * 1-5","time_zone":"Europe/London"},`+
		`"max_cps":2.5,"purpose":"marketing"}`)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	var c controller.Campaign
	decode(t, rec, &c)
	require.Equal(t, tenantA, c.TenantID, "the tenant is the token's")
	require.Equal(t, controller.CampaignDraft, c.State)
	require.Equal(t, "Spring", c.Name)
	require.Equal(t, map[controller.Outcome]controller.RetryRule{controller.OutcomeBusy: {DelaySeconds: 600, Max: 2}}, c.Retry)
	require.Equal(t, controller.Schedule{Start: "0 9 * * 1-5", Stop: "0 17 * * 1-5", TimeZone: "Europe/London"}, c.Schedule)
	require.Equal(t, 2.5, c.MaxCPS)
	require.Equal(t, 10, c.MaxConcurrent, "the service's default")
	require.Equal(t, "/v1/campaigns/"+c.ID, rec.Header().Get("Location"))
	e := lastAudit(w)
	require.Equal(t, "POST /v1/campaigns", e.Action)
	require.Equal(t, "campaign "+c.ID, e.Detail)

	settings := `"caller_ids":["+15558880002"],"list_ids":["` + leadListA + `"]`
	for _, tc := range []struct{ body, field string }{
		{`{"name":`, ""},
		{`[]`, ""},
		{`{"name":"x","tenant_id":"globex",` + settings + `}`, "tenant_id"},
		{`{"id":"` + campaignA + `","name":"x",` + settings + `}`, "id"},
		{`{"name":"x","state":"running",` + settings + `}`, "state"},
		{`{"name":"x","counters":{},` + settings + `}`, "counters"},
		{`{"name":"x","bogus":1}`, "bogus"},
		{`{"name":"x","NAME":"y"}`, "NAME"},
		{`{"name":1}`, "name"},
		{`{"name":"a\nb"}`, "name"},
		{`{"caller_ids":"+15558880002"}`, "caller_ids"},
		{`{"caller_ids":["+15558880002",5]}`, "caller_ids[1]"},
		{`{"list_ids":[null]}`, "list_ids[0]"},
		{`{"max_cps":"5"}`, "max_cps"},
		{`{"max_attempts":1.5}`, "max_attempts"},
		{`{"retry":[]}`, "retry"},
		{`{"retry":{"zzz":{"max":1}}}`, "retry.zzz"},
		{`{"retry":{"busy":3}}`, "retry.busy"},
		{`{"retry":{"busy":null}}`, "retry.busy"},
		{`{"retry":{"busy":{"delay":1}}}`, "retry.busy.delay"},
		{`{"retry":{"busy":{"max":"2"}}}`, "retry.busy.max"},
		{`{"retry":{"busy":{"max":1,"max":2}}}`, "retry.busy.max"},
		{`{"schedule":"9-17"}`, "schedule"},
		{`{"schedule":{"begin":"0 9 * * *"}}`, "schedule.begin"},
		{`{"schedule":{"start":1}}`, "schedule.start"},
		// What the service checks.
		{`{` + settings + `}`, "name"},
		{`{"name":"x","caller_ids":["abc"],"list_ids":["` + leadListA + `"]}`, "caller_ids[0]"},
		{`{"name":"x","caller_ids":["+15558880002"],"list_ids":["` + unknownID + `"]}`, "list_ids[0]"},
		{`{"name":"x",` + settings + `,"retry":{"refused":{"max":1}}}`, "retry.refused"},
		{`{"name":"x",` + settings + `,"max_concurrent":-1}`, "max_concurrent"},
	} {
		requireError(t, b.do(t, http.MethodPost, "/v1/campaigns", tc.body), http.StatusBadRequest, controller.EINVALID, tc.field)
	}
	req := httptest.NewRequest(http.MethodPost, "/v1/campaigns", strings.NewReader(`{"name":"x"}`))
	req.Header.Set("Content-Type", "text/plain")
	requireError(t, b.serve(req), http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type")

	// Read.
	rec = b.do(t, http.MethodGet, "/v1/campaigns/"+campaignA, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var st controller.CampaignStatus
	decode(t, rec, &st)
	require.Equal(t, campaignA, st.ID)
	require.Equal(t, controller.IdleNotRunning, st.Idle)
	require.False(t, st.Dialling)
	require.Equal(t, controller.CampaignCounters{Leads: 2, Pending: 1, Done: 1, Attempts: 4,
		Outcomes: map[controller.Outcome]int{controller.OutcomeNoAnswer: 1}}, st.Counters)
	requireError(t, b.do(t, http.MethodGet, "/v1/campaigns/"+unknownID, ""), http.StatusNotFound, controller.ENOTFOUND, "")
	requireError(t, b.do(t, http.MethodGet, "/v1/campaigns/spring", ""), http.StatusNotFound, controller.ENOTFOUND, "")
	requireError(t, b.do(t, http.MethodGet, "/v1/campaigns/"+campaignA+"?verbose=1", ""), http.StatusBadRequest, controller.EINVALID, "verbose")

	// Update: the whole settings, while a draft or paused.
	rec = b.do(t, http.MethodPut, "/v1/campaigns/"+c.ID, `{"name":"Spring 2",`+settings+`}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var updated controller.Campaign
	decode(t, rec, &updated)
	require.Equal(t, "Spring 2", updated.Name)
	require.Nil(t, updated.Retry, "a setting left out is not kept")
	require.Equal(t, controller.CampaignDraft, updated.State)
	requireError(t, b.do(t, http.MethodPut, "/v1/campaigns/"+campaignRunning, `{"name":"x",`+settings+`}`), http.StatusConflict, controller.ECONFLICT, "")
	requireError(t, b.do(t, http.MethodPut, "/v1/campaigns/"+unknownID, `{"name":"x",`+settings+`}`), http.StatusNotFound, controller.ENOTFOUND, "")
	requireError(t, b.do(t, http.MethodPut, "/v1/campaigns/"+c.ID, `{"name":"x","state":"running",`+settings+`}`), http.StatusBadRequest, controller.EINVALID, "state")

	// Its life: each action allowed only from the states it leaves.
	for _, step := range []struct {
		action string
		status int
		want   controller.CampaignState
	}{
		{"start", http.StatusOK, controller.CampaignRunning},
		{"start", http.StatusConflict, ""},
		{"pause", http.StatusOK, controller.CampaignPaused},
		{"resume", http.StatusOK, controller.CampaignRunning},
		{"archive", http.StatusConflict, ""},
		{"stop", http.StatusOK, controller.CampaignStopped},
		{"resume", http.StatusConflict, ""},
		{"archive", http.StatusOK, controller.CampaignArchived},
	} {
		rec := b.do(t, http.MethodPost, "/v1/campaigns/"+c.ID+"/"+step.action, "")
		e := lastAudit(w)
		require.Equal(t, "POST /v1/campaigns/:id/"+step.action, e.Action, "the audit log names the action")
		require.Equal(t, c.ID, e.Target)
		if step.status != http.StatusOK {
			requireError(t, rec, step.status, controller.ECONFLICT, "")
			continue
		}
		require.Equal(t, http.StatusOK, rec.Code, "%s: %s", step.action, rec.Body.String())
		var got controller.Campaign
		decode(t, rec, &got)
		require.Equal(t, step.want, got.State, step.action)
	}
	requireError(t, b.do(t, http.MethodPost, "/v1/campaigns/"+campaignA+"/start", `{"force":true}`), http.StatusBadRequest, controller.EINVALID, "force")
	requireError(t, b.do(t, http.MethodPost, "/v1/campaigns/"+unknownID+"/start", ""), http.StatusNotFound, controller.ENOTFOUND, "")
	requireError(t, b.do(t, http.MethodPost, "/v1/campaigns/"+campaignA+"/restart", ""), http.StatusNotFound, controller.ENOTFOUND, "")

	// The listing leaves archived campaigns out unless asked.
	var list struct {
		Campaigns []controller.Campaign `json:"campaigns"`
	}
	rec = b.do(t, http.MethodGet, "/v1/campaigns", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	decode(t, rec, &list)
	require.Len(t, list.Campaigns, 3)
	rec = b.do(t, http.MethodGet, "/v1/campaigns?archived=true", "")
	decode(t, rec, &list)
	require.Len(t, list.Campaigns, 4)
	requireError(t, b.do(t, http.MethodGet, "/v1/campaigns?archived=yes", ""), http.StatusBadRequest, controller.EINVALID, "archived")
}

func TestCampaignLeadsAPI(t *testing.T) {
	t.Parallel()
	b, w, _ := setupCampaigns(t, api.Config{})
	leads := "/v1/campaigns/" + campaignA + "/leads"

	var page struct {
		Leads     []controller.CampaignLead `json:"leads"`
		NextAfter int64                     `json:"next_after"`
	}
	rec := b.do(t, http.MethodGet, leads, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	decode(t, rec, &page)
	require.Len(t, page.Leads, 2)
	require.Equal(t, "+15557770300", page.Leads[0].Phone, "admin sees numbers whole")
	require.Equal(t, "+15557770399", page.Leads[0].Fields["mobile"])
	require.EqualValues(t, leadDone, page.NextAfter)

	rec = b.do(t, http.MethodGet, leads+"?limit=1", "")
	decode(t, rec, &page)
	require.Len(t, page.Leads, 1)
	require.EqualValues(t, leadA, page.NextAfter)
	rec = b.do(t, http.MethodGet, leads+"?after=7&status=done", "")
	decode(t, rec, &page)
	require.Len(t, page.Leads, 1)
	require.EqualValues(t, leadDone, page.Leads[0].ID)
	rec = b.do(t, http.MethodGet, leads+"?after=8", "")
	decode(t, rec, &page)
	require.Empty(t, page.Leads)
	require.NotNil(t, page.Leads, "an empty page is [], not null")
	require.EqualValues(t, 8, page.NextAfter)
	for q, field := range map[string]string{"status=gone": "status", "limit=0": "limit", "limit=1001": "limit",
		"after=-1": "after", "after=x": "after", "page=2": "page"} {
		requireError(t, b.do(t, http.MethodGet, leads+"?"+q, ""), http.StatusBadRequest, controller.EINVALID, field)
	}
	requireError(t, b.do(t, http.MethodGet, "/v1/campaigns/"+unknownID+"/leads", ""), http.StatusNotFound, controller.ENOTFOUND, "")

	// A lead's attempts are calls.
	rec = b.do(t, http.MethodGet, leads+"/7/attempts", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var calls api.CallList
	decode(t, rec, &calls)
	require.Len(t, calls.Calls, 1)
	require.Equal(t, callAlice, calls.Calls[0].ID)
	require.Equal(t, "+15557770300", calls.Calls[0].To)
	rec = b.do(t, http.MethodGet, leads+"/8/attempts", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.JSONEq(t, `{"calls":[]}`, rec.Body.String())
	for _, lead := range []string{"99", "0", "abc", "-7", "07"} {
		requireError(t, b.do(t, http.MethodGet, leads+"/"+lead+"/attempts", ""), http.StatusNotFound, controller.ENOTFOUND, "")
	}
	requireError(t, b.do(t, http.MethodGet, "/v1/campaigns/"+campaignRunning+"/leads/7/attempts", ""), http.StatusNotFound, controller.ENOTFOUND, "")

	// Recycling puts done leads back.
	recycle := "/v1/campaigns/" + campaignA + "/recycle"
	rec = b.do(t, http.MethodPost, recycle, `{"outcomes":["no_answer","busy"]}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.JSONEq(t, `{"recycled":1}`, rec.Body.String())
	require.Equal(t, "1 leads recycled", lastAudit(w).Detail)
	rec = b.do(t, http.MethodPost, recycle, `{"outcomes":["no_answer"]}`)
	require.JSONEq(t, `{"recycled":0}`, rec.Body.String())
	for _, tc := range []struct{ body, field string }{
		{`{}`, "outcomes"},
		{`{"outcomes":[]}`, "outcomes"},
		{`{"outcomes":"busy"}`, "outcomes"},
		{`{"outcomes":["busy","nope"]}`, "outcomes[1]"},
		{`{"outcomes":["refused"]}`, "outcomes"}, // the service's rule
		{`{"outcome":["busy"]}`, "outcome"},
	} {
		requireError(t, b.do(t, http.MethodPost, recycle, tc.body), http.StatusBadRequest, controller.EINVALID, tc.field)
	}
	requireError(t, b.do(t, http.MethodPost, "/v1/campaigns/"+unknownID+"/recycle", `{"outcomes":["busy"]}`), http.StatusNotFound, controller.ENOTFOUND, "")
}

func TestLeadListsAPI(t *testing.T) {
	t.Parallel()
	b, w, _ := setupCampaigns(t, api.Config{})

	rec := b.do(t, http.MethodPost, "/v1/lead-lists", `{"name":"May leads"}`)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	var l controller.LeadList
	decode(t, rec, &l)
	require.Equal(t, tenantA, l.TenantID)
	require.Equal(t, "May leads", l.Name)
	require.Equal(t, "/v1/lead-lists/"+l.ID, rec.Header().Get("Location"))
	require.Equal(t, "lead list "+l.ID, lastAudit(w).Detail)
	for _, tc := range []struct{ body, field string }{
		{`{}`, "name"},
		{`{"name":5}`, "name"},
		{`{"name":"x","tenant_id":"globex"}`, "tenant_id"},
		{`{"name":"a{b}"}`, "name"}, // the service's rule
	} {
		requireError(t, b.do(t, http.MethodPost, "/v1/lead-lists", tc.body), http.StatusBadRequest, controller.EINVALID, tc.field)
	}

	rec = b.do(t, http.MethodGet, "/v1/lead-lists/"+l.ID, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	requireError(t, b.do(t, http.MethodGet, "/v1/lead-lists/"+unknownID, ""), http.StatusNotFound, controller.ENOTFOUND, "")
	requireError(t, b.do(t, http.MethodGet, "/v1/lead-lists/may", ""), http.StatusNotFound, controller.ENOTFOUND, "")

	rec = b.do(t, http.MethodGet, "/v1/lead-imports/"+leadImportA, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var im controller.LeadImport
	decode(t, rec, &im)
	require.Equal(t, []controller.LeadReject{{Line: 4, Reason: "not a phone number"}}, im.Rejects)
	requireError(t, b.do(t, http.MethodGet, "/v1/lead-imports/"+unknownID, ""), http.StatusNotFound, controller.ENOTFOUND, "")
}

// csvUpload is a lead upload request; a nil length hides it (sent chunked).
func csvUpload(target, ctype, body string, streamed bool) *http.Request {
	var r io.Reader = strings.NewReader(body)
	if streamed {
		r = io.MultiReader(r)
	}
	req := httptest.NewRequest(http.MethodPost, target, r)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	return req
}

// requireNoUploads fails when an upload is left in dir.
func requireNoUploads(t *testing.T, dir string) {
	t.Helper()
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, left, "uploads left behind")
}

func TestLeadImportAPI(t *testing.T) {
	t.Parallel()
	b, w, dir := setupCampaigns(t, api.Config{MaxBodyBytes: 64, MaxLeadImportBytes: 1024})
	imports := "/v1/lead-lists/" + leadListA + "/imports"
	upload := "phone,name,region\n" + strings.Repeat("+15558880009,Ann,north\n", 20) // over the JSON limit, under the upload's

	rec := b.serve(csvUpload(imports+"?default_region=gb&tag_columns=region,%20size", "text/csv; charset=utf-8", upload, false))
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	var im controller.LeadImport
	decode(t, rec, &im)
	require.Equal(t, "running", im.State)
	require.Equal(t, 20, im.Rows)
	require.Equal(t, "/v1/lead-imports/"+im.ID, rec.Header().Get("Location"))
	uploads, opts := w.imported()
	require.Equal(t, []string{upload}, uploads, "the service read the upload whole")
	require.Equal(t, "GB", opts.DefaultRegion)
	require.Equal(t, []string{"region", "size"}, opts.TagColumns)
	requireNoUploads(t, dir) // the service closed it: gone
	e := lastAudit(w)
	require.Equal(t, "POST /v1/lead-lists/:id/imports", e.Action)
	require.Equal(t, leadListA, e.Target)
	require.Contains(t, e.Detail, "import "+im.ID)

	rec = b.do(t, http.MethodGet, rec.Header().Get("Location"), "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	// Streamed without a length, it is the same.
	rec = b.serve(csvUpload(imports, "text/csv", upload, true))
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	requireNoUploads(t, dir)

	for _, tc := range []struct {
		name, target, ctype, body string
		streamed                  bool
		status                    int
		code, field               string
	}{
		{"JSON", imports, "application/json", `{"phone":"+15558880009"}`, false, http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type"},
		{"no media type", imports, "", upload, false, http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type"},
		{"bad region", imports + "?default_region=GBR", "text/csv", upload, false, http.StatusBadRequest, controller.EINVALID, "default_region"},
		{"bad tag column", imports + "?tag_columns=a,,b", "text/csv", upload, false, http.StatusBadRequest, controller.EINVALID, "tag_columns"},
		{"unknown option", imports + "?replace=true", "text/csv", upload, false, http.StatusBadRequest, controller.EINVALID, "replace"},
		{"unknown list", "/v1/lead-lists/" + unknownID + "/imports", "text/csv", upload, false, http.StatusNotFound, controller.ENOTFOUND, ""},
		{"malformed list ID", "/v1/lead-lists/may/imports", "text/csv", upload, false, http.StatusNotFound, controller.ENOTFOUND, ""},
		{"empty", imports, "text/csv", "", false, http.StatusBadRequest, controller.EINVALID, "csv"},
		{"no phone column", imports, "text/csv", "name\nAnn\n", false, http.StatusBadRequest, controller.EINVALID, "csv"},
		{"too large", imports, "text/csv", strings.Repeat("+15558880009\n", 100), false, http.StatusRequestEntityTooLarge, controller.ETOOLARGE, ""},
		{"too large, streamed", imports, "text/csv", strings.Repeat("+15558880009\n", 100), true, http.StatusRequestEntityTooLarge, controller.ETOOLARGE, ""},
	} {
		requireError(t, b.serve(csvUpload(tc.target, tc.ctype, tc.body, tc.streamed)), tc.status, tc.code, tc.field)
		requireNoUploads(t, dir)
	}
	uploads, _ = w.imported()
	require.Len(t, uploads, 3, "only the two imports and the upload without a phone column were read")

	// An import that does not start leaves nothing behind, whether the
	// service opened the upload or not.
	for _, afterOpen := range []bool{false, true} {
		w.failImports(controller.Errorf(controller.EUNAVAILABLE, "database down"), afterOpen)
		requireError(t, b.serve(csvUpload(imports, "text/csv", upload, false)), http.StatusServiceUnavailable, controller.EUNAVAILABLE, "")
		requireNoUploads(t, dir)
	}
	uploads, _ = w.imported()
	require.Len(t, uploads, 4, "the failure after opening read it")
}

// TestCampaignsUnavailable: without a campaign service every campaign and
// lead route answers 503 in the error shape.
func TestCampaignsUnavailable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	n := 0
	for _, rp := range b.srv.Policies() {
		if !strings.HasPrefix(rp.Path, "/v1/campaigns") && !strings.HasPrefix(rp.Path, "/v1/lead-") {
			continue
		}
		req := httptest.NewRequest(rp.Method, target(rp.Path, false), nil)
		requireError(t, b.serve(req), http.StatusServiceUnavailable, controller.EUNAVAILABLE, "")
		n++
	}
	require.Equal(t, 17, n)
}

func TestCampaignVariantsAPI(t *testing.T) {
	t.Parallel()
	b, _, _ := setupCampaigns(t, api.Config{})
	settings := `"name":"ab","caller_ids":["+15558880002"],"list_ids":["` + leadListA + `"]`
	rec := b.do(t, http.MethodPost, "/v1/campaigns", `{`+settings+`,"variants":[{"name":"control","flow_id":"pitch-a"},`+
		`{"name":"bold","flow_id":"pitch-b","weight":3}],"conversion_dispositions":["Sale","won"]}`)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	var c controller.Campaign
	decode(t, rec, &c)
	require.Equal(t, []controller.Variant{{Name: "control", FlowID: "pitch-a", Weight: 1},
		{Name: "bold", FlowID: "pitch-b", Weight: 3}}, c.Variants, "equal weights by default")
	require.Equal(t, []string{"sale", "won"}, c.ConversionDispositions)

	for _, tc := range []struct{ variants, field string }{
		// What the handler checks: JSON types and members.
		{`{}`, "variants"},
		{`"control"`, "variants"},
		{`[1]`, "variants[0]"},
		{`[{"name":"a","flow_id":"f"},null]`, "variants[1]"},
		{`[{"name":"a","flow":"f"}]`, "variants[0].flow"},
		{`[{"name":1}]`, "variants[0].name"},
		{`[{"name":"a\nb"}]`, "variants[0].name"},
		{`[{"name":"a","weight":"2"}]`, "variants[0].weight"},
		{`[{"name":"a","weight":1,"weight":2}]`, "variants[0].weight"},
		// What the service checks.
		{`[{"name":"a","flow_id":"f"}]`, "variants"},
		{`[{"name":"a","flow_id":"f"},{"name":"a","flow_id":"g"}]`, "variants[1].name"},
		{`[{"name":"a","flow_id":"f"},{"name":"b"}]`, "variants[1].flow_id"},
		{`[{"name":"a","flow_id":"f"},{"name":"b","flow_id":"g","weight":-1}]`, "variants[1].weight"},
	} {
		requireError(t, b.do(t, http.MethodPost, "/v1/campaigns", `{`+settings+`,"variants":`+tc.variants+`}`),
			http.StatusBadRequest, controller.EINVALID, tc.field)
	}
	requireError(t, b.do(t, http.MethodPost, "/v1/campaigns", `{`+settings+`,"flow_id":"x","variants":[{"name":"a","flow_id":"f"},{"name":"b","flow_id":"g"}]}`),
		http.StatusBadRequest, controller.EINVALID, "flow_id")
	requireError(t, b.do(t, http.MethodPost, "/v1/campaigns", `{`+settings+`,"conversion_dispositions":"sale"}`),
		http.StatusBadRequest, controller.EINVALID, "conversion_dispositions")
	requireError(t, b.do(t, http.MethodPost, "/v1/campaigns", `{`+settings+`,"conversion_dispositions":["sale","no sale"]}`),
		http.StatusBadRequest, controller.EINVALID, "conversion_dispositions[1]")
}

func TestCampaignStatsAPI(t *testing.T) {
	t.Parallel()
	b, _, _ := setupCampaigns(t, api.Config{})
	rec := b.do(t, http.MethodGet, "/v1/campaigns/"+campaignRunning+"/stats", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var st controller.CampaignStats
	decode(t, rec, &st)
	require.Equal(t, runningStats, st)
	// The wire names the API documents.
	var raw map[string]any
	decode(t, rec, &raw)
	require.ElementsMatch(t, []string{"campaign_id", "conversion_dispositions", "overall", "variants", "metrics"}, slices.Collect(maps.Keys(raw)))
	bold := raw["variants"].([]any)[1].(map[string]any)
	require.Equal(t, map[string]any{"control": "control", "difference": 0.15, "p_value": 0.0285, "significant": true}, bold["vs_control"])
	require.Contains(t, raw["overall"], "conversion_interval")
	require.NotContains(t, raw["metrics"], "agent_utilisation", "absent until campaigns dial for agents")
	require.Contains(t, raw["metrics"], "average_call_duration_seconds")

	// A campaign with no calls yet: zeros, no variants.
	rec = b.do(t, http.MethodGet, "/v1/campaigns/"+campaignA+"/stats", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var fresh map[string]any
	decode(t, rec, &fresh)
	require.Equal(t, []any{}, fresh["variants"])
	require.NotContains(t, fresh["overall"], "conversion_interval")

	requireError(t, b.do(t, http.MethodGet, "/v1/campaigns/"+unknownID+"/stats", ""), http.StatusNotFound, controller.ENOTFOUND, "")
	requireError(t, b.do(t, http.MethodGet, "/v1/campaigns/spring/stats", ""), http.StatusNotFound, controller.ENOTFOUND, "")
	requireError(t, b.do(t, http.MethodGet, "/v1/campaigns/"+campaignRunning+"/stats?variant=bold", ""),
		http.StatusBadRequest, controller.EINVALID, "variant")
	other := b.tokens.issue(t, tenantB, controller.RoleAdmin, "")
	req := httptest.NewRequest(http.MethodGet, "/v1/campaigns/"+campaignRunning+"/stats", nil)
	req.Header.Set("Authorization", "Bearer "+other)
	requireError(t, b.serve(req), http.StatusNotFound, controller.ENOTFOUND, "")
}
