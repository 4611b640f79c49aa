package controller

import (
	"context"
	"time"
)

// CreateCallRequest is an API client's request for one call.
type CreateCallRequest struct {
	TenantID       string            `json:"-"`
	AgentID        string            `json:"-"` // the agent placing the call (their token's); empty: none
	To             string            `json:"to"`
	From           string            `json:"from"`
	CallerIDName   string            `json:"caller_id_name,omitempty"`
	Purpose        Purpose           `json:"purpose,omitempty"`
	FlowID         string            `json:"flow_id,omitempty"`
	Switch         string            `json:"switch,omitempty"`
	TimeoutSeconds int               `json:"timeout_seconds,omitempty"`
	Variables      map[string]string `json:"variables,omitempty"`
	IdempotencyKey string            `json:"-"`
}

// CallFilter selects calls for a listing. Zero fields do not filter.
type CallFilter struct {
	TenantID      string
	AgentID       string // only the calls assigned to this agent
	State         CallState
	Switch        string
	To            string
	CreatedAfter  time.Time
	CreatedBefore time.Time
	Cursor        string // opaque, from CallPage.NextCursor
	Limit         int    // 1..200; zero means 50
}

// CallPage is one page of a listing, newest first.
type CallPage struct {
	Calls      []Call `json:"calls"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// CallEventRecord is one stored event of a call: a state change or a fact
// that changed the CDR, in the switch's order.
type CallEventRecord struct {
	ID         int64        `json:"id"`
	CallID     CallID       `json:"call_id"`
	FromState  CallState    `json:"from_state"`
	ToState    CallState    `json:"to_state"`
	Event      ChannelEvent `json:"event"`
	RecordedAt time.Time    `json:"recorded_at"`
}

// CallUpdate is a call after an event was applied, with the state it had
// before. Stores persist the call and the event together.
type CallUpdate struct {
	Call  Call
	From  CallState
	Event ChannelEvent
}

// SwitchRecord is a configured switch as stored, with its ownership lease.
type SwitchRecord struct {
	Name        string
	Kind        string
	Address     string
	MaxSessions int
	MaxCPS      int
	Owner       string
	LeaseUntil  time.Time
}

// CallStore persists calls, their attempts and events. Implemented by
// controller/postgres.
type CallStore interface {
	// CreateCall writes c (state queued) and its attempt in one transaction
	// and fills in IDs and timestamps. With a non-empty idempotency key it
	// returns the call first created with that key and created=false when the
	// key was used before with the same request hash; ECONFLICT when it was
	// used with a different request.
	CreateCall(ctx context.Context, c Call, requestHash string) (call Call, created bool, err error)
	// GetCall returns ENOTFOUND if the call does not exist for the tenant.
	GetCall(ctx context.Context, tenant string, id CallID) (Call, error)
	// ListCalls returns EINVALID for a malformed cursor.
	ListCalls(ctx context.Context, f CallFilter) (CallPage, error)
	// ListCallEvents returns a call's events in the switch's order. Returns
	// ENOTFOUND if the call does not exist for the tenant.
	ListCallEvents(ctx context.Context, tenant string, id CallID) ([]CallEventRecord, error)
	// ClaimAttempts claims up to n due, queued attempts that may run on the
	// named switch (those naming it, or no switch), for owner, with
	// FOR UPDATE SKIP LOCKED. The calls are returned still queued.
	ClaimAttempts(ctx context.Context, switchName, owner string, n int) ([]Call, error)
	// ClaimAttemptsExcept is ClaimAttempts leaving in the queue, untouched,
	// the attempts whose calls use one of busyTrunks ("" is the switch's
	// default trunk): the trunks at their limit of concurrent calls.
	ClaimAttemptsExcept(ctx context.Context, switchName, owner string, n int, busyTrunks []string) ([]Call, error)
	// MarkOriginating moves claimed calls to originating on the switch, in one
	// transaction, before the originate is sent: after this a crash can
	// never lead to a second originate of the same call.
	MarkOriginating(ctx context.Context, ids []CallID, switchName string, at time.Time) error
	// ReleaseAttempt returns a claimed attempt whose call is still queued to
	// the queue, due at notBefore, recording why. Returns ECONFLICT if the
	// call has left the queued state.
	ReleaseAttempt(ctx context.Context, id CallID, notBefore time.Time, reason string) error
	// RequeueRefused puts a call the switch refused before creating any
	// channel back in the queue (originating → queued), due at notBefore,
	// recording ev. Returns ECONFLICT if the call is no longer originating.
	RequeueRefused(ctx context.Context, id CallID, notBefore time.Time, ev ChannelEvent) error
	// SaveCallUpdates persists calls and their events in one round trip.
	SaveCallUpdates(ctx context.Context, ups []CallUpdate) error
	// InFlightCalls returns the calls sent to a switch that have not ended.
	InFlightCalls(ctx context.Context, switchName string) ([]Call, error)
	// RecoverClaims returns to the queue the attempts claimed by owners other
	// than owner whose calls were never sent (still queued) and whose claim is
	// older than staleAfter. An owner "instance#life" names one life of an
	// instance: claims of its other lives (a process that died and was
	// restarted under the same instance ID) are recovered at once. Returns how
	// many.
	RecoverClaims(ctx context.Context, owner string, staleAfter time.Duration) (int, error)
	// TagCall merges tags into a call's (an empty value removes one) and
	// sets its disposition unless empty. Returns ENOTFOUND.
	TagCall(ctx context.Context, tenant string, id CallID, tags map[string]string, disposition string) (Call, error)
	// CancelCall cancels a call that is still queued. Returns ENOTFOUND or
	// ECONFLICT if it has been sent.
	CancelCall(ctx context.Context, tenant string, id CallID) (Call, error)
	// UpsertSwitch records a configured switch.
	UpsertSwitch(ctx context.Context, s SwitchRecord) error
	// AcquireSwitchLease takes or renews the lease on a switch for owner and
	// reports whether owner holds it until now+ttl.
	AcquireSwitchLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	// ReleaseSwitchLease gives up owner's lease on a switch.
	ReleaseSwitchLease(ctx context.Context, name, owner string) error
	// WaitForAttempts blocks until an attempt is queued (LISTEN/NOTIFY), the
	// timeout passes or ctx ends. It returns nil in the first two cases.
	WaitForAttempts(ctx context.Context, timeout time.Duration) error
	// Ping checks the database is reachable.
	Ping(ctx context.Context) error

	// CreateCallGated is CreateCall with the compliance gate run by decide in
	// the same transaction, under a lock of the callee's number: the call is
	// queued if allowed, stored blocked (terminal) with its reasons if not.
	CreateCallGated(ctx context.Context, c Call, requestHash string, decide DecideFunc) (Call, bool, Decision, error)
	// RecheckAttempts runs the gate again on claimed calls just before they
	// are originated, a batch at a time; a block marks a call blocked. The
	// results follow the batch's order; any error in one means its call must
	// not be originated.
	RecheckAttempts(ctx context.Context, batch []Recheck) []RecheckResult
	// Gate runs decide as a dry run for number, writing nothing.
	Gate(ctx context.Context, tenant, number string, decide DecideFunc) (Decision, error)
	// GetAttempt returns a call's attempt with its decisions. Returns
	// ENOTFOUND if the call does not exist for the tenant.
	GetAttempt(ctx context.Context, tenant string, id CallID) (Attempt, error)
}

// CallService is what the HTTP API drives. Implemented by controller/dialer.
type CallService interface {
	// CreateCall validates req, writes the call and its attempt durably and
	// returns it queued. Returns EINVALID naming the field for bad input,
	// ECONFLICT when the idempotency key was used with another request, and
	// ENOTFOUND for an unknown switch. created is false when an idempotent
	// replay returned an existing call.
	CreateCall(ctx context.Context, req CreateCallRequest) (call Call, created bool, err error)
	// GetCall returns ENOTFOUND if the call does not exist.
	GetCall(ctx context.Context, tenant string, id CallID) (Call, error)
	// ListCalls returns EINVALID for a bad filter or cursor.
	ListCalls(ctx context.Context, f CallFilter) (CallPage, error)
	// CallEvents returns a call's CDR events. Returns ENOTFOUND if the call
	// does not exist.
	CallEvents(ctx context.Context, tenant string, id CallID) ([]CallEventRecord, error)
	// HangupCall cancels a queued call or hangs up a live one with cause
	// (default NORMAL_CLEARING). Returns ENOTFOUND, ECONFLICT for an ended
	// call, EINVALID for an unknown cause, EUNAVAILABLE if the switch is
	// unreachable.
	HangupCall(ctx context.Context, tenant string, id CallID, cause string) (Call, error)
	// TagCall merges tags into a call's (an empty value removes a tag) and
	// sets its disposition if not empty. Returns EINVALID naming the field
	// for a bad tag or disposition, ENOTFOUND if the call does not exist.
	TagCall(ctx context.Context, tenant string, id CallID, tags map[string]string, disposition string) (Call, error)
	// Switches reports every configured switch.
	Switches(ctx context.Context) []SwitchStatus
	// Ready returns nil when the database and at least one switch are reachable.
	Ready(ctx context.Context) error
	// CheckCompliance runs the compliance gate on req as a dry run and
	// explains its decision; it creates nothing. Returns EINVALID for a
	// malformed request.
	CheckCompliance(ctx context.Context, req CheckRequest) (Decision, error)
	// GetAttempt returns a call's attempt with the gate's decisions. Returns
	// ENOTFOUND if the call does not exist.
	GetAttempt(ctx context.Context, tenant string, id CallID) (Attempt, error)
}

// TraceRow is one call of a regulator traceability export: where it came
// from, the number it called and the one it presented, what the compliance
// gate decided (at creation and at dial time, with the policy and each
// rule's evidence), the consents it relied on or produced, and its
// recordings. Numbers are whole: exports are for admins only.
type TraceRow struct {
	CallID       CallID     `json:"call_id"`
	TenantID     string     `json:"tenant_id"`
	Source       string     `json:"source"` // "api" (campaigns arrive later)
	CreatedAt    time.Time  `json:"created_at"`
	EndedAt      *time.Time `json:"ended_at,omitempty"`
	To           string     `json:"to"`
	CallerID     string     `json:"caller_id"`
	Purpose      string     `json:"purpose,omitempty"`
	State        CallState  `json:"state"`
	HangupCause  string     `json:"hangup_cause,omitempty"`
	Decision     *Decision  `json:"decision,omitempty"`
	DialDecision *Decision  `json:"dial_decision,omitempty"`
	ConsentIDs   []string   `json:"consent_ids"`   // consents the decisions cited or the call recorded
	RecordingIDs []string   `json:"recording_ids"` // their integrity hashes are in the recordings API
}

// TraceExporter streams the traceability export (controller/postgres,
// through an adapter in cmd/callgate).
type TraceExporter interface {
	// ExportTrace calls fn with the traceability row of each of the
	// tenant's calls created in [from, to), oldest first, in constant
	// memory; it stops at fn's first error and returns it. Returns
	// EINVALID for an empty tenant or when from is not before to.
	ExportTrace(ctx context.Context, tenant string, from, to time.Time, fn func(TraceRow) error) error
}
