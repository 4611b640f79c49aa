package controller

import (
	"context"
	"time"
)

// Purpose is why a number is called; consent is given per purpose.
type Purpose string

const (
	PurposeMarketing     Purpose = "marketing"
	PurposeService       Purpose = "service"
	PurposeTransactional Purpose = "transactional"
)

// Gate stages: the gate runs when an attempt is created and again just
// before it is originated.
const (
	StageCreate = "create"
	StageDial   = "dial"
)

// Reason codes of blocking verdicts. Stable: metrics and clients key on them.
const (
	ReasonNumberInvalid    = "number_invalid"
	ReasonNumberSuspicious = "number_suspicious"
	ReasonNumberReassigned = "number_reassigned"
	ReasonCallerIDNotOwned = "caller_id_not_owned"
	ReasonConsentMissing   = "consent_missing"
	ReasonConsentExpired   = "consent_expired"
	ReasonConsentRevoked   = "consent_revoked"
	ReasonRefused          = "refused"
	ReasonDNCInternal      = "dnc_internal"
	ReasonDNCList          = "dnc_list"
	ReasonDNCScrubStale    = "dnc_scrub_stale"
	ReasonCapDaily         = "cap_daily"
	ReasonCapWindow        = "cap_window"
	ReasonOutsideHours     = "outside_hours"
	ReasonHoliday          = "holiday"
	ReasonZoneUnknown      = "zone_unknown"
	ReasonRuleError        = "rule_error" // a rule failed: fail closed
)

// Verdict is one rule's answer about one attempt.
type Verdict struct {
	Rule     string   `json:"rule"`
	Allow    bool     `json:"allow"`
	Review   bool     `json:"review,omitempty"` // allowed by the rule only after a human review: blocks dialing
	Reason   string   `json:"reason,omitempty"` // a Reason* code when !Allow or Review
	Detail   string   `json:"detail,omitempty"` // for people; never a full phone number
	Evidence []string `json:"evidence,omitempty"`
}

// Decision is the gate's answer, stored on the attempt.
type Decision struct {
	Allow         bool      `json:"allow"`
	Stage         string    `json:"stage"`
	Reasons       []string  `json:"reasons,omitempty"` // codes of the verdicts that blocked
	Verdicts      []Verdict `json:"verdicts"`
	PolicyID      string    `json:"policy_id"`
	PolicyVersion int       `json:"policy_version"`
	Number        string    `json:"number"` // E.164 of the callee
	DecidedAt     time.Time `json:"decided_at"`
}

// CheckRequest is what the gate judges.
type CheckRequest struct {
	TenantID   string
	To         string // as given; the gate normalises it
	From       string // caller ID to present
	CampaignID string
	Purpose    Purpose
	Region     string // ISO 3166-1 alpha-2 used to parse numbers without a + (e.g. "US", "CN")
	Stage      string
	At         time.Time
	// CalleeZone is an IANA zone known for the callee (a lead's time zone).
	// Calling-hours rules then require the local time to be inside the hours
	// in it as well as in every zone of the number's range; it places a
	// number whose range has no known zone. It never loosens a rule.
	CalleeZone string
}

// Consent is evidence that a person agreed to be called for a purpose.
type Consent struct {
	ID            string     `json:"id"`
	TenantID      string     `json:"tenant_id"`
	Number        string     `json:"number"` // E.164
	Purpose       Purpose    `json:"purpose"`
	Source        string     `json:"source"` // ivr | sms_link | api_import | agent
	ProofRef      string     `json:"proof_ref,omitempty"`
	PromptID      string     `json:"prompt_id,omitempty"`
	PromptVersion string     `json:"prompt_version,omitempty"`
	Digit         string     `json:"digit,omitempty"`
	CallID        CallID     `json:"call_id,omitempty"`
	GivenAt       time.Time  `json:"given_at"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
}

// Refusal locks a number enterprise-wide (all tenants' campaigns of the
// enterprise, i.e. the whole installation) until Until; nil Until is forever.
type Refusal struct {
	ID       string     `json:"id"`
	Number   string     `json:"number"`
	Source   string     `json:"source"` // ivr | sms | agent | api
	CallID   CallID     `json:"call_id,omitempty"`
	At       time.Time  `json:"at"`
	Until    *time.Time `json:"until,omitempty"`
	LiftedAt *time.Time `json:"lifted_at,omitempty"`
}

// DNCHit is a do-not-call list entry matching a number.
type DNCHit struct {
	ListID   string `json:"list_id"`
	ListKind string `json:"list_kind"` // internal | national | other
}

// DNCList describes a do-not-call list.
type DNCList struct {
	ID          string    `json:"id"`
	TenantID    string    `json:"tenant_id"`
	Name        string    `json:"name"`
	Kind        string    `json:"kind"` // internal | national | other
	Source      string    `json:"source,omitempty"`
	LastScrubAt time.Time `json:"last_scrub_at,omitzero"`
	Entries     int64     `json:"entries"`
}

// Lookup is what the rules read. The store implements it inside the
// transaction that will create the attempt, holding a per-number lock, so a
// cap is counted and reserved atomically (exact across controllers).
type Lookup interface {
	// ActiveConsent returns the newest consent for number and purpose, valid
	// or not (the rule judges expiry and revocation); nil if none.
	ActiveConsent(ctx context.Context, tenant, number string, purpose Purpose) (*Consent, error)
	// ActiveRefusal returns a refusal lock in force at at, or nil.
	ActiveRefusal(ctx context.Context, number string, at time.Time) (*Refusal, error)
	// DNCHits returns the lists (of the tenant, and global ones) holding number.
	DNCHits(ctx context.Context, tenant, number string) ([]DNCHit, error)
	// DNCLists returns the tenant's lists and the global ones, with their
	// last scrub time.
	DNCLists(ctx context.Context, tenant string) ([]DNCList, error)
	// CountAttempts counts attempts allowed for number (any tenant, any
	// campaign) created at or after since.
	CountAttempts(ctx context.Context, number string, since time.Time) (int, error)
	// CallerIDOwned reports whether the tenant registered number as its own.
	CallerIDOwned(ctx context.Context, tenant, number string) (bool, error)
}

// Recheck is one claimed call for CallStore.RecheckAttempts and the gate to
// run on it. Of Call, the store reads ID, TenantID, AttemptID, To and From.
type Recheck struct {
	Call   Call
	Decide DecideFunc
	Hint   LookupHint // what the decision will not read
}

// RecheckResult is the outcome of one Recheck. Err set means the call must
// not be originated; Decision then holds the decision if one was taken.
type RecheckResult struct {
	Decision Decision
	Err      error
}

// DecideFunc runs the compliance gate with lookups from l. Stores call it
// inside the transaction that holds the number's lock; it must be quick and
// must not use the store itself.
type DecideFunc = func(ctx context.Context, l Lookup) (Decision, error)

// Gatekeeper is the compliance gate (controller/compliance.Gate).
type Gatekeeper interface {
	// Check judges req with what l reads. Rule failures block (fail closed);
	// it returns an error only when ctx has ended.
	Check(ctx context.Context, req CheckRequest, l Lookup) (Decision, error)
}

// Attempt is a call's durable origination attempt with what the gate
// decided about it.
type Attempt struct {
	ID             int64      `json:"id"`
	CallID         CallID     `json:"call_id"`
	TenantID       string     `json:"tenant_id"`
	Status         string     `json:"status"` // queued | claimed | sent | done | canceled | blocked
	ToNumber       string     `json:"to_number,omitempty"`
	AllowedAt      *time.Time `json:"allowed_at,omitempty"` // when its frequency-cap slot was reserved
	Decision       *Decision  `json:"decision,omitempty"`   // at creation
	DialDecision   *Decision  `json:"dial_decision,omitempty"`
	BlockedReasons []string   `json:"blocked_reasons,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
}

// LookupHint tells a store which reads a decision will not need, so that it
// can skip reading them ahead (a Lookup still answers them if asked: a wrong
// hint costs a round trip, never a wrong answer). The zero value skips
// nothing.
type LookupHint struct {
	NoConsents bool // the policy requires no consent for the call's purpose
	NoCallerID bool // the policy does not restrict caller IDs to owned numbers
}

type lookupHintKey struct{}

// WithLookupHint returns ctx carrying h for the store's Lookup.
func WithLookupHint(ctx context.Context, h LookupHint) context.Context {
	return context.WithValue(ctx, lookupHintKey{}, h)
}

// LookupHintFrom returns the hint ctx carries (the zero hint if none).
func LookupHintFrom(ctx context.Context) LookupHint {
	h, _ := ctx.Value(lookupHintKey{}).(LookupHint)
	return h
}
