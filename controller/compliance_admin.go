package controller

import (
	"context"
	"encoding/json"
	"io"
	"time"
)

// DefaultRefusalLock is how long a manual refusal locks a number when the
// request names no end.
const DefaultRefusalLock = 90 * 24 * time.Hour

// RefusalRequest asks for a manual refusal lock on a number.
type RefusalRequest struct {
	Number  string     // as given; normalised to E.164
	Source  string     // ivr | sms | agent | api; empty: api
	CallID  CallID     // the call the refusal was heard on, if any
	Until   *time.Time // end of the lock; nil: DefaultRefusalLock from now (unless Forever)
	Forever bool       // a lock without end; excludes Until
}

// RefusalLock is a recorded refusal and the queued calls it canceled.
type RefusalLock struct {
	Refusal       Refusal `json:"refusal"`
	CanceledCalls int     `json:"canceled_calls"`
}

// DNCImport says how the administration API loads an upload.
type DNCImport struct {
	Scrub bool // the upload is a fresh copy of the list's source: mark the list scrubbed now
}

// DNCImportResult is what an upload did to a do-not-call list.
type DNCImportResult struct {
	ListID       string        `json:"list_id"`
	Rows         int64         `json:"rows"`       // data rows read (a header row and blank lines excluded)
	Accepted     int64         `json:"accepted"`   // numbers new to the list
	Duplicates   int64         `json:"duplicates"` // valid rows already on the list or repeated in the upload
	Rejected     int64         `json:"rejected"`   // rows not loaded; the first ones are in RejectedRows
	RejectedRows []DNCRowError `json:"rejected_rows"`
	Header       bool          `json:"header"`  // the first row was a header and was skipped
	Entries      int64         `json:"entries"` // numbers on the list afterwards
	LastScrubAt  time.Time     `json:"last_scrub_at,omitzero"`
}

// PolicyAssignment says which policy governs a campaign ("" is the
// tenant's default for campaigns without their own).
type PolicyAssignment struct {
	PolicyID   string `json:"policy_id"`
	CampaignID string `json:"campaign_id"`
}

// ComplianceAdmin is the administration of compliance data the API drives:
// consents, refusal locks, do-not-call lists, owned caller IDs and
// policies. Numbers are accepted as given and normalised to E.164 (a number
// without + is read in the service's default region); a bad number is
// EINVALID naming the field. Implemented by controller/dialer.
type ComplianceAdmin interface {
	// CreateConsent records consent evidence for the tenant and returns the
	// stored consent. Returns EINVALID naming the field for a bad number,
	// purpose, source, time or ID.
	CreateConsent(ctx context.Context, tenant string, c Consent) (Consent, error)
	// GetConsent returns ENOTFOUND if the consent does not exist for the tenant.
	GetConsent(ctx context.Context, tenant, id string) (Consent, error)
	// RevokeConsent revokes a consent now and returns it. Returns ENOTFOUND,
	// or ECONFLICT if it was already revoked.
	RevokeConsent(ctx context.Context, tenant, id string) (Consent, error)
	// ListConsents returns the tenant's consents for number, newest first.
	// Returns EINVALID naming "number" for a bad number.
	ListConsents(ctx context.Context, tenant, number string) ([]Consent, error)

	// LockNumber records a manual refusal and cancels every queued call to
	// the number, in every tenant, in the same transaction. Returns EINVALID
	// naming the field for a bad number, source, call ID or end.
	LockNumber(ctx context.Context, tenant string, req RefusalRequest) (RefusalLock, error)
	// ListRefusals returns every refusal of number, lifted and expired ones
	// included, newest first. Returns EINVALID naming "number" for a bad number.
	ListRefusals(ctx context.Context, number string) ([]Refusal, error)
	// LiftRefusal ends a refusal lock now and returns it. Returns ENOTFOUND,
	// or ECONFLICT if it was already lifted.
	LiftRefusal(ctx context.Context, tenant, id string) (Refusal, error)

	// CreateDNCList records a list of the tenant and returns it. Returns
	// EINVALID naming the field for bad input, ECONFLICT if the ID exists.
	CreateDNCList(ctx context.Context, tenant string, l DNCList) (DNCList, error)
	// ListDNCLists returns the tenant's lists and the global ones with their
	// entry counts and last scrub times.
	ListDNCLists(ctx context.Context, tenant string) ([]DNCList, error)
	// AddDNCNumber puts a number on a list the tenant can see and returns it
	// as stored (E.164) with whether it was new there. Returns ENOTFOUND for
	// an unknown list, EINVALID naming "number" for a bad number.
	AddDNCNumber(ctx context.Context, tenant, listID, number string) (e164 string, added bool, err error)
	// RemoveDNCNumber takes a number off a list the tenant can see. Returns
	// ENOTFOUND for an unknown list or a number not on it, EINVALID naming
	// "number" for a bad number.
	RemoveDNCNumber(ctx context.Context, tenant, listID, number string) error
	// MarkDNCScrubbed records that a list was scrubbed against its source
	// now and returns it. Returns ENOTFOUND for an unknown list.
	MarkDNCScrubbed(ctx context.Context, tenant, listID string) (DNCList, error)
	// ImportDNC streams a CSV upload (number in the first column, optional
	// header) into a list the tenant can see, all or nothing: bad rows are
	// reported with their line numbers and skipped, good rows kept. Returns
	// ENOTFOUND for an unknown list, EINVALID for an overlong line, or the
	// reader's error (e.g. *http.MaxBytesError) if reading stops.
	ImportDNC(ctx context.Context, tenant, listID string, r io.Reader, opts DNCImport) (DNCImportResult, error)

	// AddCallerID registers a number the tenant owns and may present; it
	// returns the number as stored. Returns EINVALID naming "number".
	AddCallerID(ctx context.Context, tenant, number string) (string, error)
	// RemoveCallerID returns ENOTFOUND if the tenant does not own number,
	// EINVALID naming "number" for a bad number.
	RemoveCallerID(ctx context.Context, tenant, number string) error
	// ListCallerIDs returns the tenant's caller IDs in order.
	ListCallerIDs(ctx context.Context, tenant string) ([]string, error)

	// PutPolicy validates body (a compliance policy document; unknown
	// fields rejected) and stores it as the next version of policy id,
	// returning the stored version. Returns EINVALID naming the field for a
	// malformed or invalid policy, ECONFLICT if id belongs to another tenant.
	PutPolicy(ctx context.Context, tenant, id string, body json.RawMessage) (PolicyRecord, error)
	// GetPolicy returns a version of a policy (0: the latest). Returns
	// ENOTFOUND if the tenant cannot see it, EINVALID for a negative version.
	GetPolicy(ctx context.Context, tenant, id string, version int) (PolicyRecord, error)
	// DeletePolicy removes every version of a policy the tenant owns.
	// Returns ENOTFOUND if there is none, ECONFLICT while it is assigned.
	DeletePolicy(ctx context.Context, tenant, id string) error
	// ListPolicies returns the latest version of every policy the tenant can see.
	ListPolicies(ctx context.Context, tenant string) ([]PolicyRecord, error)
	// AssignPolicy makes a policy govern a campaign of the tenant (empty:
	// the tenant's default). Returns ENOTFOUND if the tenant cannot see it.
	AssignPolicy(ctx context.Context, tenant string, a PolicyAssignment) error
}
