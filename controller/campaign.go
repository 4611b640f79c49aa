package controller

import (
	"context"
	"io"
	"maps"
	"slices"
	"time"
)

// CampaignState is where a campaign is in its life.
type CampaignState string

const (
	CampaignDraft    CampaignState = "draft"    // created, editable, not dialling
	CampaignRunning  CampaignState = "running"  // dialling whenever its window, limits and leads allow
	CampaignPaused   CampaignState = "paused"   // no new calls; resume continues where it stopped
	CampaignStopped  CampaignState = "stopped"  // no new calls, ever; its leads keep their history
	CampaignArchived CampaignState = "archived" // stopped and hidden from the default listing
)

// CampaignTransition names an action on a campaign's state.
type CampaignTransition string

const (
	CampaignStart   CampaignTransition = "start"
	CampaignPause   CampaignTransition = "pause"
	CampaignResume  CampaignTransition = "resume"
	CampaignStop    CampaignTransition = "stop"
	CampaignArchive CampaignTransition = "archive"
)

// Next returns the state an action moves a campaign in state s to, and
// false when the action is not allowed from s.
func (t CampaignTransition) Next(s CampaignState) (CampaignState, bool) {
	switch {
	case t == CampaignStart && s == CampaignDraft:
		return CampaignRunning, true
	case t == CampaignPause && s == CampaignRunning:
		return CampaignPaused, true
	case t == CampaignResume && s == CampaignPaused:
		return CampaignRunning, true
	case t == CampaignStop && (s == CampaignRunning || s == CampaignPaused || s == CampaignDraft):
		return CampaignStopped, true
	case t == CampaignArchive && (s == CampaignStopped || s == CampaignDraft):
		return CampaignArchived, true
	}
	return s, false
}

// DialMode is how a campaign paces its calls.
type DialMode string

const (
	ModeBroadcast   DialMode = "broadcast"   // IVR robot: each answered call runs the flow
	ModePreview     DialMode = "preview"     // an agent accepts or skips each lead
	ModeProgressive DialMode = "progressive" // one call per available agent
	ModePredictive  DialMode = "predictive"  // dial ahead of agents within an abandon target
)

// Outcome classifies how one attempt to a lead ended; retry rules are keyed
// by it.
type Outcome string

const (
	OutcomeAnswered      Outcome = "answered"       // answered and ended normally
	OutcomeBusy          Outcome = "busy"           // USER_BUSY / SIP 486
	OutcomeNoAnswer      Outcome = "no_answer"      // rang out
	OutcomeRejected      Outcome = "rejected"       // CALL_REJECTED other than a 603
	OutcomeDeclined      Outcome = "declined"       // SIP 603 Decline: never retried
	OutcomeFailed        Outcome = "failed"         // network or switch failure
	OutcomeInvalidNumber Outcome = "invalid_number" // unallocated or malformed: never retried
	OutcomeMachine       Outcome = "machine"        // an answering machine answered
	OutcomeAbandoned     Outcome = "abandoned"      // answered, no agent in time
	OutcomeRefused       Outcome = "refused"        // the person refused further calls: never retried
	OutcomeBlocked       Outcome = "blocked"        // the gate blocked it for good (DNC, consent…)
	OutcomeHeld          Outcome = "held"           // the gate blocked it for now (hours, caps)
	OutcomeCanceled      Outcome = "canceled"       // withdrawn before it was dialled
)

// Outcomes lists every outcome.
var Outcomes = []Outcome{OutcomeAnswered, OutcomeBusy, OutcomeNoAnswer, OutcomeRejected,
	OutcomeDeclined, OutcomeFailed, OutcomeInvalidNumber, OutcomeMachine, OutcomeAbandoned,
	OutcomeRefused, OutcomeBlocked, OutcomeHeld, OutcomeCanceled}

// Final reports whether an outcome ends a lead's dialling whatever the
// retry rules say.
func (o Outcome) Final() bool {
	switch o {
	case OutcomeDeclined, OutcomeInvalidNumber, OutcomeRefused, OutcomeBlocked, OutcomeCanceled:
		return true
	}
	return false
}

// RetryRule says when to call a lead again after an outcome.
type RetryRule struct {
	DelaySeconds int `json:"delay_seconds"` // how long to wait before the next attempt
	Max          int `json:"max"`           // retries after attempts that end this way; 0: never retry
}

// Schedule is a campaign's dialling window: it opens at each Start and
// closes at each Stop (cron expressions, minute resolution) in TimeZone.
// An empty Start means always open. The compliance gate still applies each
// callee's own calling hours.
type Schedule struct {
	Start    string `json:"start,omitempty"`     // e.g. "0 9 * * 1-5"
	Stop     string `json:"stop,omitempty"`      // e.g. "0 17 * * 1-5"
	TimeZone string `json:"time_zone,omitempty"` // IANA; empty: UTC
}

// Campaign is a run of calls over lead lists.
type Campaign struct {
	ID            string                `json:"id"`
	TenantID      string                `json:"tenant_id"`
	Name          string                `json:"name"`
	State         CampaignState         `json:"state"`
	Mode          DialMode              `json:"mode"`
	FlowID        string                `json:"flow_id,omitempty"`
	Purpose       Purpose               `json:"purpose,omitempty"`
	CallerIDs     []string              `json:"caller_ids"` // the pool presented, in turn
	CallerIDName  string                `json:"caller_id_name,omitempty"`
	Switch        string                `json:"switch,omitempty"` // empty: any
	ListIDs       []string              `json:"list_ids"`
	Target        string                `json:"target,omitempty"` // tag expression; empty: every lead
	MaxConcurrent int                   `json:"max_concurrent"`
	MaxCPS        float64               `json:"max_cps"`
	MaxAttempts   int                   `json:"max_attempts"` // per lead, all outcomes together
	Retry         map[Outcome]RetryRule `json:"retry,omitempty"`
	Schedule      Schedule              `json:"schedule"`
	RingSeconds   int                   `json:"ring_seconds,omitempty"` // originate timeout
	CreatedAt     time.Time             `json:"created_at"`
	UpdatedAt     time.Time             `json:"updated_at"`
	StartedAt     *time.Time            `json:"started_at,omitempty"`
	EndedAt       *time.Time            `json:"ended_at,omitempty"`

	// Variants, when set, split the leads between flows for an A/B test
	// (FlowID is then empty); see Variant.
	Variants []Variant `json:"variants,omitempty"`
	// ConversionDispositions are the call dispositions that count as a
	// conversion in the campaign's statistics; empty: the defaults
	// (DefaultConversionDispositions).
	ConversionDispositions []string `json:"conversion_dispositions,omitempty"`
}

// CheckLimits fills in the default pacing limits of c left at zero (10
// concurrent calls, 5 per second, 3 attempts a lead) and checks them and
// its retry rules. Returns EINVALID naming the field.
func (c *Campaign) CheckLimits() error {
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = 10
	}
	if c.MaxConcurrent < 1 || c.MaxConcurrent > 100_000 {
		return FieldError("max_concurrent", "must be between 1 and 100000")
	}
	if c.MaxCPS == 0 {
		c.MaxCPS = 5
	}
	if !(c.MaxCPS > 0 && c.MaxCPS <= 10_000) {
		return FieldError("max_cps", "must be above 0 and at most 10000")
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 3
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > 100 {
		return FieldError("max_attempts", "must be between 1 and 100")
	}
	for _, o := range slices.Sorted(maps.Keys(c.Retry)) {
		r := c.Retry[o]
		field := "retry." + string(o)
		if !slices.Contains(Outcomes, o) {
			return FieldError(field, "unknown outcome %q", o)
		}
		if o.Final() || o == OutcomeAnswered {
			return FieldError(field, "a lead is never retried after %q", o)
		}
		if r.DelaySeconds < 0 || r.DelaySeconds > 30*86400 {
			return FieldError(field+".delay_seconds", "must be between 0 and 2592000 (30 days)")
		}
		if r.Max < 0 || r.Max > 100 {
			return FieldError(field+".max", "must be between 0 and 100")
		}
	}
	return nil
}

// CampaignCounters are a campaign's lead and call counts.
type CampaignCounters struct {
	Leads     int             `json:"leads"`
	Pending   int             `json:"pending"`  // waiting for their next attempt
	Due       int             `json:"due"`      // pending and due now
	Dialling  int             `json:"dialling"` // with a call that has not ended
	Done      int             `json:"done"`     // no more attempts
	Attempts  int             `json:"attempts"` // calls placed or blocked
	Outcomes  map[Outcome]int `json:"outcomes"` // last outcome of each done lead
	NextDueAt *time.Time      `json:"next_due_at,omitempty"`
}

// Why a running campaign is not dialling now.
const (
	IdleNotRunning   = "not_running"    // draft, paused, stopped or archived
	IdleOutsideHours = "outside_window" // its schedule's window is closed
	IdleNoLeads      = "no_leads_left"  // every lead is done
	IdleWaiting      = "waiting_retry"  // leads remain, none due yet
	IdleAtLimit      = "at_limit"       // max concurrent calls in flight
	IdleNoSwitch     = "no_switch"      // no healthy switch can take its calls
)

// CampaignStatus is a campaign with what it is doing now.
type CampaignStatus struct {
	Campaign
	Counters CampaignCounters `json:"counters"`
	Dialling bool             `json:"dialling"`       // placing calls now
	Idle     string           `json:"idle,omitempty"` // why not, when not
	Detail   string           `json:"detail,omitempty"`
	// Pacing is an agent-mode campaign's pacer on the controller that
	// answered: its inputs (answer rate, ring, talk and wrap-up times,
	// abandon rates) and current dial level.
	Pacing any `json:"pacing,omitempty"`
}

// LeadList is a named set of leads, deduplicated by phone number.
type LeadList struct {
	ID        string    `json:"id"`
	TenantID  string    `json:"tenant_id"`
	Name      string    `json:"name"`
	Leads     int       `json:"leads"`
	CreatedAt time.Time `json:"created_at"`
}

// Lead is one person to call.
type Lead struct {
	ID       int64             `json:"id"`
	ListID   string            `json:"list_id"`
	Phone    string            `json:"phone"` // E.164
	Name     string            `json:"name,omitempty"`
	TimeZone string            `json:"time_zone,omitempty"` // overrides the number's zones
	Tags     map[string]string `json:"tags,omitempty"`
	Fields   map[string]string `json:"fields,omitempty"`
}

// CampaignLead is a lead's progress in a campaign.
type CampaignLead struct {
	Lead
	Status      string     `json:"status"` // pending, dialling, done
	Attempts    int        `json:"attempts"`
	NextAt      *time.Time `json:"next_at,omitempty"`
	LastOutcome Outcome    `json:"last_outcome,omitempty"`
	Disposition string     `json:"disposition,omitempty"`
	CallID      CallID     `json:"call_id,omitempty"` // the latest call
	Variant     string     `json:"variant,omitempty"` // its A/B test variant
}

// LeadImport is the progress and result of one CSV upload into a list.
type LeadImport struct {
	ID         string       `json:"id"`
	TenantID   string       `json:"tenant_id"`
	ListID     string       `json:"list_id"`
	State      string       `json:"state"` // running, done, failed
	Rows       int          `json:"rows"`  // data rows read
	Imported   int          `json:"imported"`
	Duplicates int          `json:"duplicates"` // already in the list, or twice in the file
	Rejected   int          `json:"rejected"`
	Rejects    []LeadReject `json:"rejects,omitempty"` // the first ones, with why
	Error      string       `json:"error,omitempty"`
	StartedAt  time.Time    `json:"started_at"`
	FinishedAt *time.Time   `json:"finished_at,omitempty"`
}

// LeadReject is a CSV row that was not imported. Reason never holds the
// full number.
type LeadReject struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

// TagExpr is a parsed targeting expression over a lead's tags, such as
// region = "Nanshan" and size = "small". Op is one of "and", "or", "not"
// (over Args), "eq", "ne" (Key against Value), "in" (Key against Values) and
// "has" (Key is set).
type TagExpr struct {
	Op     string    `json:"op"`
	Key    string    `json:"key,omitempty"`
	Value  string    `json:"value,omitempty"`
	Values []string  `json:"values,omitempty"`
	Args   []TagExpr `json:"args,omitempty"`
}

// Match reports whether tags satisfy e (a nil e matches everything).
func (e *TagExpr) Match(tags map[string]string) bool {
	if e == nil {
		return true
	}
	switch e.Op {
	case "and":
		for i := range e.Args {
			if !e.Args[i].Match(tags) {
				return false
			}
		}
		return true
	case "or":
		for i := range e.Args {
			if e.Args[i].Match(tags) {
				return true
			}
		}
		return false
	case "not":
		return len(e.Args) == 1 && !e.Args[0].Match(tags)
	case "eq":
		v, ok := tags[e.Key]
		return ok && v == e.Value
	case "ne":
		v, ok := tags[e.Key]
		return !ok || v != e.Value
	case "in":
		v, ok := tags[e.Key]
		if !ok {
			return false
		}
		for _, w := range e.Values {
			if v == w {
				return true
			}
		}
		return false
	case "has":
		_, ok := tags[e.Key]
		return ok
	}
	return false
}

// CampaignDispatch is what one dispatch of a campaign found and did.
type CampaignDispatch struct {
	Running  bool // the campaign is running
	Created  int  // calls queued
	Dialling int  // leads with a live call before this dispatch
	Due      bool // some pending lead was due (when Created is 0)
	Budget   int  // calls the calls-per-second limit allowed now
}

// EndedLead is a dialling lead whose call has ended, to be settled.
type EndedLead struct {
	LeadID   int64
	Attempts int             // counted attempts before this one
	Outcomes map[Outcome]int // counted attempts per outcome before this one
	Call     Call
	Reasons  []string // the gate's block reasons, when blocked
}

// LeadSettlement is what becomes of an ended lead.
type LeadSettlement struct {
	Outcome     Outcome
	Counted     bool      // the attempt counts against the lead's limits
	Done        bool      // no more attempts
	NextAt      time.Time // when not done
	Disposition string    // the lead's final disposition, when done
}

// CampaignStore persists campaigns, lead lists and leads' progress.
// Implemented by controller/postgres.
type CampaignStore interface {
	CreateCampaign(ctx context.Context, c Campaign) (Campaign, error)
	UpdateCampaign(ctx context.Context, c Campaign) (Campaign, error)
	GetCampaign(ctx context.Context, tenant, id string) (Campaign, error)
	ListCampaigns(ctx context.Context, tenant string, archived bool) ([]Campaign, error)
	RunningCampaigns(ctx context.Context) ([]Campaign, error)
	// SettlingCampaigns returns the paused and stopped campaigns that
	// still have leads dialling: their calls' ends are settled all the same.
	SettlingCampaigns(ctx context.Context) ([]Campaign, error)
	TransitionCampaign(ctx context.Context, tenant, id string, t CampaignTransition, target *TagExpr) (Campaign, error)
	CampaignCounters(ctx context.Context, id string) (CampaignCounters, error)
	DispatchLeads(ctx context.Context, id string, max int, route RouteFunc) (CampaignDispatch, error)
	SettleLeads(ctx context.Context, id string, max int, settle func(EndedLead) LeadSettlement) (int, error)
	CampaignLeads(ctx context.Context, id, status string, after int64, limit int) ([]CampaignLead, error)
	LeadAttempts(ctx context.Context, tenant, id string, lead int64) ([]Call, error)
	RecycleLeads(ctx context.Context, id string, outcomes []Outcome) (int, error)
	CampaignCallCounts(ctx context.Context, id string, conversions []string) (CampaignCallCounts, error)
	CreateLeadList(ctx context.Context, tenant, name string) (LeadList, error)
	GetLeadList(ctx context.Context, tenant, id string) (LeadList, error)
	InsertLeads(ctx context.Context, tenant, listID string, leads []Lead, fresh bool) (int, error)
	StartLeadImport(ctx context.Context, tenant, listID string) (LeadImport, error)
	SaveLeadImport(ctx context.Context, im LeadImport) error
	GetLeadImport(ctx context.Context, tenant, id string) (LeadImport, error)
}

// CampaignService is what the HTTP API drives for campaigns and leads.
// Implemented by controller/dialer.
type CampaignService interface {
	// CreateCampaign validates c and stores it as a draft. Returns EINVALID
	// naming the field.
	CreateCampaign(ctx context.Context, c Campaign) (Campaign, error)
	// UpdateCampaign replaces a draft or paused campaign's settings.
	// Returns ENOTFOUND, EINVALID, ECONFLICT when it is running or ended,
	// or when it has started and the update changes its variants.
	UpdateCampaign(ctx context.Context, c Campaign) (Campaign, error)
	// Campaign returns a campaign with its counters and why it is not
	// dialling. Returns ENOTFOUND.
	Campaign(ctx context.Context, tenant, id string) (CampaignStatus, error)
	// Campaigns lists a tenant's campaigns, archived ones only if asked.
	Campaigns(ctx context.Context, tenant string, archived bool) ([]Campaign, error)
	// TransitionCampaign starts, pauses, resumes, stops or archives a
	// campaign. Pausing or stopping withdraws its calls not yet dialled,
	// in the same transaction. Returns ENOTFOUND, ECONFLICT when the action
	// is not allowed from the campaign's state.
	TransitionCampaign(ctx context.Context, tenant, id string, t CampaignTransition) (Campaign, error)
	// CampaignLeads lists a campaign's leads, after the lead ID after.
	CampaignLeads(ctx context.Context, tenant, id, status string, after int64, limit int) ([]CampaignLead, error)
	// LeadAttempts returns the calls placed to a lead by a campaign, oldest
	// first. Returns ENOTFOUND.
	LeadAttempts(ctx context.Context, tenant, campaignID string, leadID int64) ([]Call, error)
	// RecycleLeads puts a campaign's done leads whose last outcome is one of
	// outcomes back to pending, with their attempts reset. Returns how many.
	RecycleLeads(ctx context.Context, tenant, id string, outcomes []Outcome) (int, error)
	// CampaignStats returns a campaign's results, overall and per A/B test
	// variant, and its call metrics. Returns ENOTFOUND.
	CampaignStats(ctx context.Context, tenant, id string) (CampaignStats, error)

	// CreateLeadList creates an empty list. Returns EINVALID.
	CreateLeadList(ctx context.Context, tenant, name string) (LeadList, error)
	// LeadList returns a list with its lead count. Returns ENOTFOUND.
	LeadList(ctx context.Context, tenant, id string) (LeadList, error)
	// ImportLeads starts importing a CSV into a list in the background and
	// returns its import record at once. Returns ENOTFOUND for the list,
	// EINVALID for a bad header or options.
	ImportLeads(ctx context.Context, tenant, listID string, csv LeadCSV) (LeadImport, error)
	// LeadImport returns an import's progress. Returns ENOTFOUND.
	LeadImport(ctx context.Context, tenant, id string) (LeadImport, error)
}

// LeadCSV is an upload to import. Open is called once, by the import, for
// the data; the import closes what it returns.
type LeadCSV struct {
	DefaultRegion string   // for numbers without "+"
	TagColumns    []string // columns that are tags; "tag:x" columns always are
	Open          func() (io.ReadCloser, error)
}
