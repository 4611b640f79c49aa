package controller

import (
	"context"
	"encoding/json"
	"io"
	"time"
)

// DNCImportOptions says how to load an upload into a do-not-call list.
type DNCImportOptions struct {
	// Scrub marks the upload as a fresh copy of the list's source (a
	// national registry download): the list's last scrub time becomes
	// ScrubAt, or the database's now if ScrubAt is zero.
	Scrub   bool
	ScrubAt time.Time
	// Replace makes the upload the whole list: entries not in it are
	// removed. It fails closed: an upload with any bad row is refused
	// (EINVALID, nothing applied), since a number lost to a typo would
	// otherwise leave the list.
	Replace bool
	// MaxRowErrors caps the bad rows listed in the report (all are
	// counted); zero means the store's default.
	MaxRowErrors int
	// SortRows caps how many numbers are sorted in memory, 8 bytes each;
	// zero means the store's default. An upload that fits is deduplicated
	// in Go and, into an empty list, copied straight into the entries'
	// btree in key order: no staging table, no sort in the database. A
	// bigger one streams through a staging table, about twice as slowly.
	SortRows int
}

// DNCImportReport is what an import did, as the store counts it.
type DNCImportReport struct {
	ListID      string        `json:"list_id"`
	Rows        int64         `json:"rows"`    // data rows read (a header row and blank lines excluded)
	Valid       int64         `json:"valid"`   // rows holding a valid number
	Added       int64         `json:"added"`   // numbers new to the list
	Removed     int64         `json:"removed"` // numbers removed (Replace)
	Invalid     int64         `json:"invalid"` // rows not loaded; the first ones are in Errors
	Errors      []DNCRowError `json:"errors,omitempty"`
	Header      bool          `json:"header"`  // the first row was a header and was skipped
	Entries     int64         `json:"entries"` // numbers on the list afterwards
	LastScrubAt time.Time     `json:"last_scrub_at,omitzero"`
}

// DNCRowError is a row of a do-not-call upload that was not loaded.
type DNCRowError struct {
	Line  int64  `json:"line"` // 1-based line of the upload where the row starts
	Error string `json:"error"`
}

// PolicyRecord is one stored version of a compliance policy: its rules as
// JSON, which controller/compliance reads.
type PolicyRecord struct {
	ID        string          `json:"id"`
	Version   int             `json:"version"`
	TenantID  string          `json:"tenant_id,omitempty"` // empty: a preset every tenant may use
	Name      string          `json:"name"`
	Body      json.RawMessage `json:"body"`
	CreatedAt time.Time       `json:"created_at"`
}

// ComplianceStore persists the compliance data an administrator edits:
// consents, refusal locks, do-not-call lists, owned caller IDs and
// policies. Implemented by controller/postgres; numbers are E.164.
type ComplianceStore interface {
	// CreateConsent records consent evidence and returns its ID. Returns
	// EINVALID naming the field for bad input or an unknown tenant.
	CreateConsent(ctx context.Context, c Consent) (string, error)
	// GetConsent returns ENOTFOUND if the consent does not exist for the tenant.
	GetConsent(ctx context.Context, tenant, id string) (Consent, error)
	// RevokeConsent revokes a consent at at (now if zero) and returns it.
	// Returns ENOTFOUND, or ECONFLICT if it was already revoked.
	RevokeConsent(ctx context.Context, tenant, id string, at time.Time) (Consent, error)
	// ListConsents returns the tenant's consents for number, newest first.
	// Returns EINVALID if number is not E.164.
	ListConsents(ctx context.Context, tenant, number string) ([]Consent, error)

	// LockNumber records a refusal and cancels every queued call to its
	// number in the same transaction. Returns the refusal's ID and how many
	// calls were canceled; EINVALID naming the field for bad input.
	LockNumber(ctx context.Context, tenant string, r Refusal) (string, int, error)
	// ListRefusals returns every refusal of number, newest first. Returns
	// EINVALID if number is not E.164.
	ListRefusals(ctx context.Context, number string) ([]Refusal, error)
	// LiftRefusal ends a refusal lock at at (now if zero) and returns it.
	// Returns ENOTFOUND, or ECONFLICT if it was already lifted.
	LiftRefusal(ctx context.Context, tenant, id string, at time.Time) (Refusal, error)

	// CreateDNCList records a list and returns it. Returns EINVALID naming
	// the field for bad input, ECONFLICT if the ID exists.
	CreateDNCList(ctx context.Context, l DNCList) (DNCList, error)
	// GetDNCList returns a list the tenant can see. Returns ENOTFOUND otherwise.
	GetDNCList(ctx context.Context, tenant, id string) (DNCList, error)
	// ListDNCLists returns the tenant's lists and the global ones.
	ListDNCLists(ctx context.Context, tenant string) ([]DNCList, error)
	// AddDNCNumber puts number on a list and reports whether it was new
	// there. Returns ENOTFOUND for an unknown list.
	AddDNCNumber(ctx context.Context, listID, number string) (bool, error)
	// RemoveDNCNumber takes number off a list and reports whether it was
	// there. Returns ENOTFOUND for an unknown list.
	RemoveDNCNumber(ctx context.Context, listID, number string) (bool, error)
	// SetDNCScrubbed records that a list was scrubbed at at. Returns
	// ENOTFOUND for an unknown list.
	SetDNCScrubbed(ctx context.Context, listID string, at time.Time) error
	// ImportDNC loads a streamed CSV upload into a list, all or nothing;
	// bad rows are reported with their line numbers and skipped. Returns
	// ENOTFOUND for an unknown list, EINVALID for an overlong line.
	ImportDNC(ctx context.Context, listID string, r io.Reader, normalize func(string) (string, error), opts DNCImportOptions) (DNCImportReport, error)

	// AddOwnedNumber registers a caller ID the tenant owns. Returns EINVALID
	// for a bad number or an unknown tenant.
	AddOwnedNumber(ctx context.Context, tenant, number string) error
	// RemoveOwnedNumber returns ENOTFOUND if the tenant does not own number.
	RemoveOwnedNumber(ctx context.Context, tenant, number string) error
	// ListOwnedNumbers returns the tenant's caller IDs in order.
	ListOwnedNumbers(ctx context.Context, tenant string) ([]string, error)

	// PutPolicy saves body as the next version of policy id and returns
	// that version. Returns EINVALID naming the field for bad input,
	// ECONFLICT if the id belongs to another tenant.
	PutPolicy(ctx context.Context, tenant, id, name string, body json.RawMessage) (int, error)
	// GetPolicy returns a version (0: the latest) of a policy the tenant
	// can see. Returns ENOTFOUND otherwise.
	GetPolicy(ctx context.Context, tenant, id string, version int) (PolicyRecord, error)
	// ListPolicies returns the latest version of every policy the tenant
	// can see, ordered by ID.
	ListPolicies(ctx context.Context, tenant string) ([]PolicyRecord, error)
	// AssignPolicy makes a policy govern a campaign of the tenant (empty:
	// the tenant's default). Returns ENOTFOUND if the tenant cannot see it.
	AssignPolicy(ctx context.Context, tenant, campaign, policyID string) error
	// DeletePolicy removes every version of a policy the tenant owns.
	// Returns ENOTFOUND if there is none, ECONFLICT while it is assigned.
	DeletePolicy(ctx context.Context, tenant, id string) error
	// PolicyFor returns the latest version of the policy governing a
	// campaign of the tenant (its own assignment, else the tenant default).
	// Returns ENOTFOUND when neither is assigned.
	PolicyFor(ctx context.Context, tenant, campaign string) (PolicyRecord, error)
}
