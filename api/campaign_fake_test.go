package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/callgate/callgate/controller"
)

// Acme's campaign data (see the world): a draft campaign, a running and a
// paused one (so every action has a campaign it is allowed on), a lead
// list with one import, and two leads of the draft campaign.
const (
	campaignA       = "aaaaaaaa-2222-4000-8000-00000000d4af" // draft
	campaignRunning = "aaaaaaaa-2222-4000-8000-0000000000a1"
	campaignPaused  = "aaaaaaaa-2222-4000-8000-0000000000a2"
	leadListA       = "aaaaaaaa-3333-4000-8000-000000000001"
	leadImportA     = "aaaaaaaa-4444-4000-8000-000000000001"
	leadA           = 7 // pending, called once
	leadDone        = 8 // done, no answer
)

// campaignMarkers are acme's campaign IDs, which globex must never see.
var campaignMarkers = []string{campaignA, campaignRunning, campaignPaused, leadListA, leadImportA}

// fakeCampaigns is an in-memory, tenant-aware controller.CampaignService
// that checks settings as controller/dialer does, except the targeting
// expression and the schedule's cron expressions, which it does not parse.
type fakeCampaigns struct {
	mu        sync.Mutex
	seq       int
	campaigns map[string]controller.Campaign
	leadLists map[string]controller.LeadList
	imports   map[string]controller.LeadImport
	leads     map[string][]controller.CampaignLead // by campaign
	attempts  map[int64][]controller.Call          // by lead
	stats     map[string]controller.CampaignStats  // by campaign; others have none yet

	// importErr, when set, fails ImportLeads: before it opens the upload,
	// or after reading and closing it when importErrAfterOpen.
	importErr          error
	importErrAfterOpen bool
	// uploads are what each ImportLeads read; lastCSV its options.
	uploads []string
	lastCSV controller.LeadCSV
}

var _ controller.CampaignService = (*fakeCampaigns)(nil)

func newFakeCampaigns() *fakeCampaigns {
	return &fakeCampaigns{campaigns: map[string]controller.Campaign{}, leadLists: map[string]controller.LeadList{},
		imports: map[string]controller.LeadImport{}, leads: map[string][]controller.CampaignLead{},
		attempts: map[int64][]controller.Call{}, stats: map[string]controller.CampaignStats{}}
}

// seedAcme stores acme's campaign data.
func (f *fakeCampaigns) seedAcme() {
	f.leadLists[leadListA] = controller.LeadList{ID: leadListA, TenantID: tenantA, Name: "acme leads", Leads: 2, CreatedAt: fixedTime}
	f.imports[leadImportA] = controller.LeadImport{ID: leadImportA, TenantID: tenantA, ListID: leadListA, State: "done",
		Rows: 3, Imported: 2, Rejected: 1, Rejects: []controller.LeadReject{{Line: 4, Reason: "not a phone number"}}, StartedAt: fixedTime}
	for id, state := range map[string]controller.CampaignState{campaignA: controller.CampaignDraft,
		campaignRunning: controller.CampaignRunning, campaignPaused: controller.CampaignPaused} {
		f.campaigns[id] = controller.Campaign{ID: id, TenantID: tenantA, Name: "acme " + string(state), State: state,
			Mode: controller.ModeBroadcast, CallerIDs: []string{callerA}, ListIDs: []string{leadListA}, MaxConcurrent: 10,
			MaxCPS: 5, MaxAttempts: 3, RingSeconds: 30, CreatedAt: fixedTime, UpdatedAt: fixedTime}
	}
	next := fixedTime.Add(time.Hour)
	f.leads[campaignA] = []controller.CampaignLead{
		{Lead: controller.Lead{ID: leadA, ListID: leadListA, Phone: "+15557770300", Name: "Ann", Tags: map[string]string{"region": "north"},
			Fields: map[string]string{"mobile": "+15557770399"}}, Status: "pending", Attempts: 1, NextAt: &next,
			LastOutcome: controller.OutcomeBusy, CallID: callAlice},
		{Lead: controller.Lead{ID: leadDone, ListID: leadListA, Phone: "+15557770301"}, Status: "done", Attempts: 3,
			LastOutcome: controller.OutcomeNoAnswer, Disposition: "no_answer"},
	}
	f.attempts[leadA] = []controller.Call{{ID: callAlice, TenantID: tenantA, To: "+15557770300", From: callerA,
		State: controller.CallFailed, HangupCause: "USER_BUSY", CreatedAt: fixedTime, UpdatedAt: fixedTime}}
	f.stats[campaignRunning] = runningStats
}

// runningStats are the running campaign's statistics: an A/B test of two
// flows, bold ahead of the control.
var runningStats = controller.CampaignStats{CampaignID: campaignRunning, ConversionDispositions: []string{"sale"},
	Overall: controller.VariantStats{Leads: 200, Attempts: 200, Connected: 110, ConnectRate: 0.55,
		ConnectInterval: &controller.Interval{Low: 0.48, High: 0.62}, AvgTalkSeconds: 35, Conversions: 75,
		ConversionRate: 0.375, ConversionInterval: &controller.Interval{Low: 0.31, High: 0.44}},
	Variants: []controller.VariantStats{
		{Name: "control", FlowID: "pitch-a", Weight: 1, Leads: 100, Attempts: 100, Connected: 50, ConnectRate: 0.5,
			Conversions: 30, ConversionRate: 0.3},
		{Name: "bold", FlowID: "pitch-b", Weight: 1, Leads: 100, Attempts: 100, Connected: 60, ConnectRate: 0.6,
			Conversions: 45, ConversionRate: 0.45,
			VsControl: &controller.Comparison{Control: "control", Difference: 0.15, PValue: 0.0285, Significant: true}},
	},
	Metrics: controller.CampaignMetrics{Originated: 200, CallSetupSuccessRate: 0.8, AnswerSeizureRatio: 0.55,
		AverageCallDuration: 35, AbandonRate: 0.02, BlockedAttempts: 3, BlockedByReason: map[string]int{"dnc_list": 3}},
}

func (f *fakeCampaigns) newID() string {
	f.seq++
	return fmt.Sprintf("cccccccc-0000-4000-8000-%012d", f.seq)
}

// snapshot is everything the fake stores, as comparable text.
func (f *fakeCampaigns) snapshot() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("%+v", []any{f.campaigns, f.leadLists, f.imports, f.leads})
}

// campaign returns the tenant's campaign; callers hold f.mu.
func (f *fakeCampaigns) campaign(tenant, id string) (controller.Campaign, error) {
	c, ok := f.campaigns[id]
	if !ok || c.TenantID != tenant {
		return c, controller.Errorf(controller.ENOTFOUND, "campaign not found")
	}
	return c, nil
}

// fakeFlowID is controller/dialer's form of a flow ID.
var fakeFlowID = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// validate is controller/dialer's Campaigns.validate but for the target
// and cron expressions; callers hold f.mu.
func (f *fakeCampaigns) validate(c *controller.Campaign) error {
	c.Name = strings.TrimSpace(c.Name)
	if c.Name == "" || len(c.Name) > 200 {
		return controller.FieldError("name", "must be 1 to 200 characters")
	}
	if err := controller.CheckText("name", c.Name); err != nil {
		return err
	}
	switch c.Mode {
	case "":
		c.Mode = controller.ModeBroadcast
	case controller.ModeBroadcast:
	default:
		return controller.FieldError("mode", "use broadcast")
	}
	if c.FlowID != "" && !fakeFlowID.MatchString(c.FlowID) {
		return controller.FieldError("flow_id", "malformed")
	}
	switch c.Purpose {
	case "", controller.PurposeMarketing, controller.PurposeService, controller.PurposeTransactional:
	default:
		return controller.FieldError("purpose", "must be marketing, service or transactional")
	}
	if len(c.CallerIDs) == 0 || len(c.CallerIDs) > 100 {
		return controller.FieldError("caller_ids", "give 1 to 100 numbers to present")
	}
	for i, n := range c.CallerIDs {
		if !e164.MatchString(n) {
			return controller.FieldError(fmt.Sprintf("caller_ids[%d]", i), "not a phone number")
		}
	}
	if len(c.CallerIDName) > 64 {
		return controller.FieldError("caller_id_name", "must be at most 64 characters")
	}
	if err := controller.CheckText("caller_id_name", c.CallerIDName); err != nil {
		return err
	}
	if c.Switch != "" && c.Switch != "fs1" {
		return controller.FieldError("switch", "no such switch")
	}
	if len(c.ListIDs) == 0 || len(c.ListIDs) > 50 {
		return controller.FieldError("list_ids", "give 1 to 50 lead lists")
	}
	for i, id := range c.ListIDs {
		if l, ok := f.leadLists[id]; !ok || l.TenantID != c.TenantID {
			return controller.FieldError(fmt.Sprintf("list_ids[%d]", i), "no such lead list")
		}
	}
	if err := c.CheckLimits(); err != nil {
		return err
	}
	if tz := c.Schedule.TimeZone; tz != "" {
		if _, err := time.LoadLocation(tz); err != nil || tz == "Local" {
			return controller.FieldError("schedule.time_zone", "unknown time zone")
		}
	}
	if (c.Schedule.Start == "") != (c.Schedule.Stop == "") {
		return controller.FieldError("schedule", "give both start and stop, or neither")
	}
	if c.RingSeconds == 0 {
		c.RingSeconds = 30
	}
	if c.RingSeconds < 1 || c.RingSeconds > 300 {
		return controller.FieldError("ring_seconds", "must be between 1 and 300")
	}
	return fakeValidateVariants(c)
}

// fakeDisposition is controller's form of a disposition.
var fakeDisposition = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// fakeValidateVariants is controller/dialer's validateVariants.
func fakeValidateVariants(c *controller.Campaign) error {
	if len(c.Variants) > 0 {
		if len(c.Variants) < 2 || len(c.Variants) > 10 {
			return controller.FieldError("variants", "give 2 to 10 variants, or none")
		}
		if c.FlowID != "" {
			return controller.FieldError("flow_id", "leave it out with variants")
		}
		seen := map[string]bool{}
		for i := range c.Variants {
			v, field := &c.Variants[i], fmt.Sprintf("variants[%d]", i)
			if !fakeFlowID.MatchString(v.Name) || seen[v.Name] {
				return controller.FieldError(field+".name", "malformed or repeated")
			}
			seen[v.Name] = true
			if !fakeFlowID.MatchString(v.FlowID) {
				return controller.FieldError(field+".flow_id", "malformed")
			}
			if v.Weight == 0 {
				v.Weight = 1
			}
			if v.Weight < 1 || v.Weight > 1000 {
				return controller.FieldError(field+".weight", "must be between 1 and 1000")
			}
		}
	}
	if len(c.ConversionDispositions) > 20 {
		return controller.FieldError("conversion_dispositions", "at most 20")
	}
	for i, d := range c.ConversionDispositions {
		d = strings.ToLower(d)
		if !fakeDisposition.MatchString(d) {
			return controller.FieldError(fmt.Sprintf("conversion_dispositions[%d]", i), "not a disposition")
		}
		c.ConversionDispositions[i] = d
	}
	slices.Sort(c.ConversionDispositions)
	c.ConversionDispositions = slices.Compact(c.ConversionDispositions)
	return nil
}

func (f *fakeCampaigns) CreateCampaign(_ context.Context, c controller.Campaign) (controller.Campaign, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.validate(&c); err != nil {
		return controller.Campaign{}, err
	}
	c.ID, c.State, c.CreatedAt, c.UpdatedAt = f.newID(), controller.CampaignDraft, fixedTime, fixedTime
	f.campaigns[c.ID] = c
	return c, nil
}

func (f *fakeCampaigns) UpdateCampaign(_ context.Context, c controller.Campaign) (controller.Campaign, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old, err := f.campaign(c.TenantID, c.ID)
	if err != nil {
		return controller.Campaign{}, err
	}
	if old.State != controller.CampaignDraft && old.State != controller.CampaignPaused {
		return controller.Campaign{}, controller.Errorf(controller.ECONFLICT, "a %s campaign cannot be changed", old.State)
	}
	if err := f.validate(&c); err != nil {
		return controller.Campaign{}, err
	}
	c.State, c.CreatedAt, c.UpdatedAt, c.StartedAt = old.State, old.CreatedAt, fixedTime.Add(time.Minute), old.StartedAt
	f.campaigns[c.ID] = c
	return c, nil
}

func (f *fakeCampaigns) Campaign(_ context.Context, tenant, id string) (controller.CampaignStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.campaign(tenant, id)
	if err != nil {
		return controller.CampaignStatus{}, err
	}
	st := controller.CampaignStatus{Campaign: c, Counters: controller.CampaignCounters{Outcomes: map[controller.Outcome]int{}}}
	for _, l := range f.leads[id] {
		st.Counters.Leads++
		st.Counters.Attempts += l.Attempts
		switch l.Status {
		case "pending":
			st.Counters.Pending++
		case "dialling":
			st.Counters.Dialling++
		case "done":
			st.Counters.Done++
			st.Counters.Outcomes[l.LastOutcome]++
		}
	}
	if c.State != controller.CampaignRunning {
		st.Idle, st.Detail = controller.IdleNotRunning, "the campaign is "+string(c.State)
	} else {
		st.Dialling = true
	}
	return st, nil
}

func (f *fakeCampaigns) Campaigns(_ context.Context, tenant string, archived bool) ([]controller.Campaign, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []controller.Campaign
	for _, id := range slices.Sorted(maps.Keys(f.campaigns)) {
		c := f.campaigns[id]
		if c.TenantID == tenant && (archived || c.State != controller.CampaignArchived) {
			out = append(out, c)
		}
	}
	return out, nil
}

func (f *fakeCampaigns) TransitionCampaign(_ context.Context, tenant, id string, t controller.CampaignTransition) (controller.Campaign, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.campaign(tenant, id)
	if err != nil {
		return c, err
	}
	next, ok := t.Next(c.State)
	if !ok {
		return controller.Campaign{}, controller.Errorf(controller.ECONFLICT, "cannot %s a %s campaign", t, c.State)
	}
	now := fixedTime.Add(time.Minute)
	switch next {
	case controller.CampaignRunning:
		if c.StartedAt == nil {
			c.StartedAt = &now
		}
	case controller.CampaignStopped:
		c.EndedAt = &now
	}
	c.State, c.UpdatedAt = next, now
	f.campaigns[id] = c
	return c, nil
}

func (f *fakeCampaigns) CampaignLeads(_ context.Context, tenant, id, status string, after int64, limit int) ([]controller.CampaignLead, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.campaign(tenant, id); err != nil {
		return nil, err
	}
	if limit == 0 {
		limit = 100
	}
	if limit < 1 || limit > 1000 {
		return nil, controller.FieldError("limit", "must be between 1 and 1000")
	}
	var out []controller.CampaignLead
	for _, l := range f.leads[id] {
		if l.ID > after && (status == "" || l.Status == status) && len(out) < limit {
			out = append(out, l)
		}
	}
	return out, nil
}

func (f *fakeCampaigns) LeadAttempts(_ context.Context, tenant, id string, lead int64) ([]controller.Call, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.campaign(tenant, id); err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(f.leads[id], func(l controller.CampaignLead) bool { return l.ID == lead }) {
		return nil, controller.Errorf(controller.ENOTFOUND, "lead not in the campaign")
	}
	return f.attempts[lead], nil
}

func (f *fakeCampaigns) RecycleLeads(_ context.Context, tenant, id string, outcomes []controller.Outcome) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range outcomes {
		if o == controller.OutcomeRefused || o == controller.OutcomeDeclined || o == controller.OutcomeBlocked {
			return 0, controller.FieldError("outcomes", "leads that ended %q are never called again", o)
		}
	}
	if _, err := f.campaign(tenant, id); err != nil {
		return 0, err
	}
	n := 0
	for i, l := range f.leads[id] {
		if l.Status == "done" && slices.Contains(outcomes, l.LastOutcome) {
			l.Status, l.Attempts = "pending", 0
			f.leads[id][i] = l
			n++
		}
	}
	return n, nil
}

func (f *fakeCampaigns) CampaignStats(_ context.Context, tenant, id string) (controller.CampaignStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.campaign(tenant, id); err != nil {
		return controller.CampaignStats{}, err
	}
	if st, ok := f.stats[id]; ok {
		return st, nil
	}
	return controller.CampaignStats{CampaignID: id, ConversionDispositions: controller.DefaultConversionDispositions,
		Variants: []controller.VariantStats{}, Metrics: controller.CampaignMetrics{BlockedByReason: map[string]int{}}}, nil
}

func (f *fakeCampaigns) CreateLeadList(_ context.Context, tenant, name string) (controller.LeadList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return controller.LeadList{}, controller.FieldError("name", "must be 1 to 200 characters")
	}
	if err := controller.CheckText("name", name); err != nil {
		return controller.LeadList{}, err
	}
	l := controller.LeadList{ID: f.newID(), TenantID: tenant, Name: name, CreatedAt: fixedTime}
	f.leadLists[l.ID] = l
	return l, nil
}

func (f *fakeCampaigns) LeadList(_ context.Context, tenant, id string) (controller.LeadList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.leadLists[id]
	if !ok || l.TenantID != tenant {
		return controller.LeadList{}, controller.Errorf(controller.ENOTFOUND, "lead list not found")
	}
	return l, nil
}

// ImportLeads reads and closes the upload at once (the real import checks
// the header before it answers, and reads the rows in the background), and
// records an import of every row after the header.
func (f *fakeCampaigns) ImportLeads(ctx context.Context, tenant, listID string, up controller.LeadCSV) (controller.LeadImport, error) {
	if _, err := f.LeadList(ctx, tenant, listID); err != nil {
		return controller.LeadImport{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastCSV = up
	if f.importErr != nil && !f.importErrAfterOpen {
		return controller.LeadImport{}, f.importErr
	}
	if up.Open == nil {
		return controller.LeadImport{}, controller.FieldError("csv", "no upload")
	}
	rc, err := up.Open()
	if err != nil {
		return controller.LeadImport{}, err
	}
	b, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return controller.LeadImport{}, err
	}
	f.uploads = append(f.uploads, string(b))
	if f.importErr != nil {
		return controller.LeadImport{}, f.importErr
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	if !sc.Scan() || !slices.ContainsFunc(strings.Split(strings.ToLower(sc.Text()), ","), func(col string) bool {
		col = strings.TrimSpace(col)
		return col == "phone" || col == "number" || col == "phone_number"
	}) {
		return controller.LeadImport{}, controller.FieldError("csv", "the header names no phone column")
	}
	im := controller.LeadImport{ID: f.newID(), TenantID: tenant, ListID: listID, State: "running", StartedAt: fixedTime}
	for sc.Scan() {
		im.Rows++
	}
	f.imports[im.ID] = im
	return im, nil
}

func (f *fakeCampaigns) LeadImport(_ context.Context, tenant, id string) (controller.LeadImport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	im, ok := f.imports[id]
	if !ok || im.TenantID != tenant {
		return controller.LeadImport{}, controller.Errorf(controller.ENOTFOUND, "lead import not found")
	}
	return im, nil
}

// failImports makes ImportLeads fail with err, after reading the upload if
// afterOpen.
func (f *fakeCampaigns) failImports(err error, afterOpen bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.importErr, f.importErrAfterOpen = err, afterOpen
}

// imported returns the uploads read so far and the last options.
func (f *fakeCampaigns) imported() ([]string, controller.LeadCSV) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.uploads), f.lastCSV
}
