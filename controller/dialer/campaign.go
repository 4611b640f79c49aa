package dialer

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
)

// CampaignConfig configures the campaign runner.
type CampaignConfig struct {
	Tick   time.Duration    // how often running campaigns are settled and dispatched; default 20 ms
	Batch  int              // leads dispatched or settled per transaction; default 200
	Logger *slog.Logger     // default slog.Default()
	Now    func() time.Time // default time.Now
	// OnTick, when set, is called after every pass over the running
	// campaigns (tests wait on it instead of polling).
	OnTick func()
	// Registerer, when set, gets the running campaigns' call metrics
	// (campaignCollector).
	Registerer prometheus.Registerer
	// Agents, when set, has its timed-out wrap-ups ended on every pass.
	Agents *Agents
}

// campaignStore is what the runner needs of the database: campaigns and,
// for agent modes, agents.
type campaignStore interface {
	controller.CampaignStore
	controller.AgentStore
}

// Campaigns runs campaigns over the call service: it validates and stores
// them, and on every tick settles the leads whose calls ended (retry
// rules) and queues calls for due leads within each campaign's window and
// limits. Every step is a transaction on the shared database, so any number
// of controllers can run it at once.
type Campaigns struct {
	cfg    CampaignConfig
	store  campaignStore
	calls  *Service
	log    *slog.Logger
	pacers pacers

	imports sync.WaitGroup
	bg      context.Context // imports run under it
	cancel  context.CancelFunc
	done    chan struct{}
}

var _ controller.CampaignService = (*Campaigns)(nil)

// NewCampaigns returns a runner over store, dialling through calls.
func NewCampaigns(cfg CampaignConfig, store campaignStore, calls *Service) *Campaigns {
	if cfg.Tick <= 0 {
		cfg.Tick = 20 * time.Millisecond
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 200
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	bg, cancel := context.WithCancel(context.Background())
	cs := &Campaigns{cfg: cfg, store: store, calls: calls, log: cfg.Logger.With("component", "campaigns"),
		bg: bg, cancel: cancel}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(newCampaignCollector(cs))
	}
	return cs
}

// Start runs the dispatch loop until ctx ends or Stop is called.
func (cs *Campaigns) Start(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	cs.done = make(chan struct{})
	go func() {
		<-cs.bg.Done()
		cancel()
	}()
	go func() {
		defer close(cs.done)
		t := time.NewTicker(cs.cfg.Tick)
		defer t.Stop()
		for {
			cs.RunOnce(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// Stop ends the loop and the imports in progress (they are reported
// interrupted) and waits for them.
func (cs *Campaigns) Stop() {
	cs.cancel()
	if cs.done != nil {
		<-cs.done
	}
	cs.imports.Wait()
}

// RunOnce settles and dispatches every running campaign once.
func (cs *Campaigns) RunOnce(ctx context.Context) {
	running, err := cs.store.RunningCampaigns(ctx)
	if err != nil {
		if ctx.Err() == nil {
			cs.log.Warn("listing running campaigns", "err", err)
		}
		return
	}
	for _, c := range running {
		if err := cs.step(ctx, c); err != nil && ctx.Err() == nil {
			cs.log.Warn("running campaign", "campaign_id", c.ID, "err", err)
		}
	}
	// A paused or stopped campaign dials nothing, but the calls it had on
	// the switch still end: their leads get their outcomes and retries.
	settling, err := cs.store.SettlingCampaigns(ctx)
	if err != nil && ctx.Err() == nil {
		cs.log.Warn("listing settling campaigns", "err", err)
	}
	for _, c := range settling {
		if err := cs.settleEnded(ctx, c); err != nil && ctx.Err() == nil {
			cs.log.Warn("settling campaign", "campaign_id", c.ID, "err", err)
		}
	}
	if cs.cfg.Agents != nil {
		cs.cfg.Agents.EndWrapUps(ctx)
		cs.cfg.Agents.Release(ctx)
	}
	if cs.cfg.OnTick != nil {
		cs.cfg.OnTick()
	}
}

// step settles a campaign's ended leads, then dispatches its due ones if
// its window is open and a switch can take them.
func (cs *Campaigns) step(ctx context.Context, c controller.Campaign) error {
	if err := cs.settleEnded(ctx, c); err != nil {
		return err
	}
	if idle, _ := cs.blocked(ctx, c); idle != "" {
		return nil
	}
	route, err := cs.calls.campaignRoute(ctx, c) // routing.go
	if err != nil {
		return err
	}
	if agentMode(c.Mode) {
		// The pacer decides once per pass, from the agents and calls it
		// sees now.
		n, idle, err := cs.agentBudget(ctx, c)
		if err != nil || idle != "" {
			return err
		}
		_, err = cs.store.DispatchLeads(ctx, c.ID, min(n, cs.cfg.Batch), route)
		return err
	}
	for {
		d, err := cs.store.DispatchLeads(ctx, c.ID, cs.cfg.Batch, route)
		if err != nil {
			return err
		}
		if d.Created < cs.cfg.Batch {
			return nil
		}
	}
}

// settleEnded settles every lead of c whose call has ended.
func (cs *Campaigns) settleEnded(ctx context.Context, c controller.Campaign) error {
	for {
		n, err := cs.store.SettleLeads(ctx, c.ID, cs.cfg.Batch, func(e controller.EndedLead) controller.LeadSettlement {
			return cs.settle(c, e)
		})
		if err != nil || n < cs.cfg.Batch {
			return err
		}
	}
}

// settle applies the campaign's rules to a lead whose call ended.
func (cs *Campaigns) settle(c controller.Campaign, e controller.EndedLead) controller.LeadSettlement {
	o := ClassifyCall(e.Call, e.Reasons)
	counted := o != controller.OutcomeHeld && o != controller.OutcomeCanceled
	attempts, per := e.Attempts, e.Outcomes[o]
	if counted {
		attempts, per = attempts+1, per+1
	}
	now := cs.cfg.Now()
	cs.observe(c, e, o, now)
	if o == controller.OutcomeCanceled {
		// Withdrawn before it was dialled (a refusal of its number, an
		// operator): try again now; the gate decides.
		return controller.LeadSettlement{Outcome: o, NextAt: now}
	}
	st := NextStep(c, o, attempts, per, now)
	r := controller.LeadSettlement{Outcome: o, Counted: counted, Done: st.Done, NextAt: st.NextAt}
	if st.Done {
		r.Disposition = e.Call.Disposition
		if r.Disposition == "" {
			r.Disposition = string(o)
		}
	}
	return r
}

// blocked says why a running campaign cannot dial now, or "".
func (cs *Campaigns) blocked(ctx context.Context, c controller.Campaign) (string, string) {
	w, err := parseSchedule(c.Schedule)
	if err != nil {
		return controller.IdleOutsideHours, "the schedule cannot be read: " + controller.ErrorMessage(err)
	}
	if open, next := w.open(cs.cfg.Now()); !open {
		return controller.IdleOutsideHours, "the window opens at " + next.Format(time.RFC3339)
	}
	healthy := false
	for _, s := range cs.calls.Switches(ctx) {
		if s.Connected && (c.Switch == "" || s.Name == c.Switch) {
			healthy = true
		}
	}
	if !healthy {
		if c.Switch != "" {
			return controller.IdleNoSwitch, fmt.Sprintf("switch %q is not connected", c.Switch)
		}
		return controller.IdleNoSwitch, "no switch is connected"
	}
	return "", ""
}

// validate checks a campaign's settings and fills in defaults.
func (cs *Campaigns) validate(ctx context.Context, c *controller.Campaign) error {
	c.TenantID = tenantOr(c.TenantID)
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
	case controller.ModeProgressive, controller.ModePredictive:
		if c.FlowID == "" && len(c.Variants) == 0 {
			return controller.FieldError("flow_id", "a %s campaign needs a flow with an agent node: it connects answered calls to agents", c.Mode)
		}
	case controller.ModePreview:
		if c.FlowID == "" && len(c.Variants) == 0 {
			return controller.FieldError("flow_id", "a preview campaign needs a flow with an agent node: it connects the answered call to the agent who accepted the lead")
		}
	default:
		return controller.FieldError("mode", "must be broadcast, preview, progressive or predictive")
	}
	if c.FlowID != "" && !flowIDRE.MatchString(c.FlowID) {
		return controller.FieldError("flow_id", "must match %s", flowIDRE)
	}
	if err := validateVariants(c); err != nil {
		return err
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
		e164, err := compliance.NormalizeNumber(n, cs.calls.cfg.DefaultRegion)
		if err != nil {
			return controller.FieldError(fmt.Sprintf("caller_ids[%d]", i), "%s", controller.ErrorMessage(err))
		}
		c.CallerIDs[i] = e164
	}
	if len(c.CallerIDName) > 64 {
		return controller.FieldError("caller_id_name", "must be at most 64 characters")
	}
	if err := controller.CheckText("caller_id_name", c.CallerIDName); err != nil {
		return err
	}
	if c.Switch != "" && cs.calls.owner(c.Switch) == nil {
		return &controller.Error{Code: controller.EINVALID, Field: "switch", Message: fmt.Sprintf("no switch named %q", c.Switch)}
	}
	if len(c.ListIDs) == 0 || len(c.ListIDs) > 50 {
		return controller.FieldError("list_ids", "give 1 to 50 lead lists")
	}
	for i, id := range c.ListIDs {
		field := fmt.Sprintf("list_ids[%d]", i)
		if _, err := uuid.Parse(id); err != nil {
			return controller.FieldError(field, "not a list ID")
		}
		if _, err := cs.store.GetLeadList(ctx, c.TenantID, id); err != nil {
			if controller.ErrorCode(err) == controller.ENOTFOUND {
				return controller.FieldError(field, "no lead list %s", id)
			}
			return err
		}
	}
	slices.Sort(c.ListIDs)
	c.ListIDs = slices.Compact(c.ListIDs)
	if _, err := ParseTarget(c.Target); err != nil {
		return err
	}
	if err := c.CheckLimits(); err != nil {
		return err
	}
	if _, err := parseSchedule(c.Schedule); err != nil {
		return err
	}
	if c.RingSeconds == 0 {
		c.RingSeconds = int(cs.calls.cfg.DefaultTimeout / time.Second)
	}
	if c.RingSeconds < 1 || time.Duration(c.RingSeconds)*time.Second > cs.calls.cfg.MaxTimeout {
		return controller.FieldError("ring_seconds", "must be between 1 and %d", int(cs.calls.cfg.MaxTimeout/time.Second))
	}
	return nil
}

// CreateCampaign validates c and stores it as a draft.
func (cs *Campaigns) CreateCampaign(ctx context.Context, c controller.Campaign) (controller.Campaign, error) {
	if err := cs.validate(ctx, &c); err != nil {
		return c, err
	}
	return cs.store.CreateCampaign(ctx, c)
}

// UpdateCampaign validates c and replaces a draft or paused campaign's
// settings.
func (cs *Campaigns) UpdateCampaign(ctx context.Context, c controller.Campaign) (controller.Campaign, error) {
	if err := cs.validate(ctx, &c); err != nil {
		return c, err
	}
	return cs.store.UpdateCampaign(ctx, c)
}

// Campaign returns a campaign with its counters and why it is not dialling.
func (cs *Campaigns) Campaign(ctx context.Context, tenant, id string) (controller.CampaignStatus, error) {
	c, err := cs.store.GetCampaign(ctx, tenantOr(tenant), id)
	if err != nil {
		return controller.CampaignStatus{}, err
	}
	k, err := cs.store.CampaignCounters(ctx, c.ID)
	if err != nil {
		return controller.CampaignStatus{}, err
	}
	st := controller.CampaignStatus{Campaign: c, Counters: k}
	st.Idle, st.Detail = cs.idle(ctx, c, k)
	st.Dialling = st.Idle == ""
	if p := cs.Pacing(c.ID); p != nil {
		st.Pacing = p
	}
	return st, nil
}

// idle says why a campaign with counters k is not dialling, or "".
func (cs *Campaigns) idle(ctx context.Context, c controller.Campaign, k controller.CampaignCounters) (string, string) {
	switch {
	case c.State != controller.CampaignRunning:
		return controller.IdleNotRunning, "the campaign is " + string(c.State)
	case k.Pending+k.Dialling == 0:
		return controller.IdleNoLeads, fmt.Sprintf("all %d leads are done", k.Leads)
	}
	if why, detail := cs.blocked(ctx, c); why != "" {
		return why, detail
	}
	if agentMode(c.Mode) {
		a, err := cs.store.CampaignAgents(ctx, c.TenantID, c.ID)
		if err == nil && a.Available+a.OnCall+a.WrapUp == 0 {
			return controller.IdleNoAgents, fmt.Sprintf("%d agents logged in, none available, on a call or in wrap-up", a.LoggedIn)
		}
	}
	switch {
	case k.Dialling >= c.MaxConcurrent:
		return controller.IdleAtLimit, fmt.Sprintf("%d calls in flight, the limit is %d", k.Dialling, c.MaxConcurrent)
	case k.Due == 0 && k.Dialling == 0:
		detail := "no lead is due"
		if k.NextDueAt != nil {
			detail = "the next lead is due at " + k.NextDueAt.UTC().Format(time.RFC3339)
		}
		return controller.IdleWaiting, detail
	}
	return "", ""
}

// Campaigns lists a tenant's campaigns.
func (cs *Campaigns) Campaigns(ctx context.Context, tenant string, archived bool) ([]controller.Campaign, error) {
	return cs.store.ListCampaigns(ctx, tenantOr(tenant), archived)
}

// TransitionCampaign starts, pauses, resumes, stops or archives a campaign.
// Starting or resuming a campaign whose settings no longer hold (a deleted
// list) returns EINVALID.
func (cs *Campaigns) TransitionCampaign(ctx context.Context, tenant, id string, t controller.CampaignTransition) (controller.Campaign, error) {
	tenant = tenantOr(tenant)
	var target *controller.TagExpr
	if t == controller.CampaignStart || t == controller.CampaignResume {
		c, err := cs.store.GetCampaign(ctx, tenant, id)
		if err != nil {
			return c, err
		}
		if target, err = ParseTarget(c.Target); err != nil {
			return c, err
		}
	}
	switch t {
	case controller.CampaignStart, controller.CampaignPause, controller.CampaignResume,
		controller.CampaignStop, controller.CampaignArchive:
	default:
		return controller.Campaign{}, controller.FieldError("action", "must be start, pause, resume, stop or archive")
	}
	c, err := cs.store.TransitionCampaign(ctx, tenant, id, t, target)
	if err == nil {
		cs.log.Info("campaign "+string(t), "campaign_id", id, "state", c.State)
	}
	return c, err
}

// CampaignLeads lists a campaign's leads. Returns ENOTFOUND, EINVALID for
// a bad status or limit.
func (cs *Campaigns) CampaignLeads(ctx context.Context, tenant, id, status string, after int64, limit int) ([]controller.CampaignLead, error) {
	if _, err := cs.store.GetCampaign(ctx, tenantOr(tenant), id); err != nil {
		return nil, err
	}
	switch status {
	case "", "pending", "dialling", "done":
	default:
		return nil, controller.FieldError("status", "must be pending, dialling or done")
	}
	if limit == 0 {
		limit = 100
	}
	if limit < 1 || limit > 1000 {
		return nil, controller.FieldError("limit", "must be between 1 and 1000")
	}
	return cs.store.CampaignLeads(ctx, id, status, after, limit)
}

// LeadAttempts returns a lead's calls in a campaign, oldest first.
func (cs *Campaigns) LeadAttempts(ctx context.Context, tenant, id string, lead int64) ([]controller.Call, error) {
	return cs.store.LeadAttempts(ctx, tenantOr(tenant), id, lead)
}

// RecycleLeads puts done leads with the given last outcomes back to pending.
func (cs *Campaigns) RecycleLeads(ctx context.Context, tenant, id string, outcomes []controller.Outcome) (int, error) {
	if len(outcomes) == 0 {
		return 0, controller.FieldError("outcomes", "name the outcomes to recycle")
	}
	for _, o := range outcomes {
		if !slices.Contains(controller.Outcomes, o) {
			return 0, controller.FieldError("outcomes", "unknown outcome %q", o)
		}
		if o == controller.OutcomeRefused || o == controller.OutcomeDeclined || o == controller.OutcomeBlocked {
			return 0, controller.FieldError("outcomes", "leads that ended %q are never called again", o)
		}
	}
	if _, err := cs.store.GetCampaign(ctx, tenantOr(tenant), id); err != nil {
		return 0, err
	}
	return cs.store.RecycleLeads(ctx, id, outcomes)
}
