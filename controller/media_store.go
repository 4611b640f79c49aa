package controller

import (
	"context"
	"encoding/json"
	"time"
)

// FlowRecord is one stored version of an IVR flow (controller/ivr decodes
// and validates Body). Saving a flow under an existing ID adds a version;
// calls name a flow by ID and run its newest version at the time they start.
type FlowRecord struct {
	ID        string          `json:"id"`
	TenantID  string          `json:"tenant_id"`
	Name      string          `json:"name"`
	Version   int             `json:"version"`
	Body      json.RawMessage `json:"flow"`
	CreatedAt time.Time       `json:"created_at"`
}

// FlowRun is the path one call took through its flow, stored with the call.
type FlowRun struct {
	CallID      CallID          `json:"call_id"`
	TenantID    string          `json:"tenant_id"`
	FlowID      string          `json:"flow_id"`
	FlowVersion int             `json:"flow_version"`
	Outcome     string          `json:"outcome"` // controller/ivr's outcome codes, "running" while it runs
	Path        json.RawMessage `json:"path"`    // the steps, as controller/ivr records them
	StartedAt   time.Time       `json:"started_at"`
	EndedAt     *time.Time      `json:"ended_at,omitempty"`
}

// FlowStore keeps flows and the runs of calls through them.
type FlowStore interface {
	// PutFlow stores f as the next version of flow f.ID (a new flow if the
	// ID is unused) and returns it with its version and creation time.
	// Returns EINVALID for a malformed ID.
	PutFlow(ctx context.Context, f FlowRecord) (FlowRecord, error)
	// GetFlow returns version of a flow, the newest if version is 0.
	// Returns ENOTFOUND if the flow or version does not exist for the tenant.
	GetFlow(ctx context.Context, tenant, id string, version int) (FlowRecord, error)
	// ListFlows returns the newest version of each of the tenant's flows.
	ListFlows(ctx context.Context, tenant string) ([]FlowRecord, error)
	// SaveFlowRun inserts or replaces the run of a call.
	SaveFlowRun(ctx context.Context, r FlowRun) error
	// GetFlowRun returns ENOTFOUND if the call has no run for the tenant.
	GetFlowRun(ctx context.Context, tenant string, id CallID) (FlowRun, error)
}

// Prompt is an uploaded audio prompt with the text it speaks. Each upload
// under a name adds a version; consent evidence names the version played.
type Prompt struct {
	ID         string    `json:"id"` // "<name>.v<version>", the name flows use is Name
	TenantID   string    `json:"tenant_id"`
	Name       string    `json:"name"`
	Version    int       `json:"version"`
	Text       string    `json:"text"`
	Language   string    `json:"language,omitempty"`
	DurationMS int64     `json:"duration_ms"`
	Size       int64     `json:"size"`
	SHA256     string    `json:"sha256"`
	File       string    `json:"file"` // file name in the prompt directory
	CreatedAt  time.Time `json:"created_at"`
}

// PromptStore keeps prompt metadata (the audio is in the prompt directory).
type PromptStore interface {
	// PutPrompt stores p as the next version of prompt p.Name and returns it
	// with its ID, version and creation time. Returns EINVALID for a
	// malformed name.
	PutPrompt(ctx context.Context, p Prompt) (Prompt, error)
	// GetPrompt returns version of a prompt, the newest if version is 0.
	// Returns ENOTFOUND if it does not exist for the tenant.
	GetPrompt(ctx context.Context, tenant, name string, version int) (Prompt, error)
	// ListPrompts returns the newest version of each of the tenant's prompts.
	ListPrompts(ctx context.Context, tenant string) ([]Prompt, error)
}

// Recording states.
const (
	RecordingActive   = "recording" // the switch is writing the plaintext file
	RecordingStored   = "stored"    // encrypted in the recording store, plaintext removed
	RecordingFailed   = "failed"    // the file was lost or unreadable; Error says why
	RecordingShredded = "shredded"  // past retention: data key destroyed, ciphertext deleted
)

// Recording is one call recording's metadata. The audio is encrypted under a
// per-recording data key (AES-256-GCM); WrappedKey is that key wrapped by the
// master key KeyID. Neither the master key nor the plain data key is ever
// stored in the database.
type Recording struct {
	ID          string     `json:"id"`
	TenantID    string     `json:"tenant_id"`
	CallID      CallID     `json:"call_id"`
	Status      string     `json:"status"`
	SpoolPath   string     `json:"-"` // where the switch writes the plaintext
	BlobKey     string     `json:"-"` // the ciphertext's key in the recording store
	KeyID       string     `json:"key_id,omitempty"`
	WrappedKey  []byte     `json:"-"`
	SHA256      string     `json:"sha256,omitempty"` // of the plaintext WAV
	Size        int64      `json:"size,omitempty"`   // plaintext bytes
	DurationMS  int64      `json:"duration_ms,omitempty"`
	Channels    int        `json:"channels,omitempty"`
	ConsentID   string     `json:"consent_id,omitempty"` // the consent it was started under, if any
	Error       string     `json:"error,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	StoredAt    *time.Time `json:"stored_at,omitempty"`
	RetainUntil *time.Time `json:"retain_until,omitempty"`
	ShreddedAt  *time.Time `json:"shredded_at,omitempty"`
}

// RecordingStore keeps recording metadata and wrapped data keys.
type RecordingStore interface {
	// CreateRecording stores a new recording in state RecordingActive and
	// returns it with its ID and creation time.
	CreateRecording(ctx context.Context, r Recording) (Recording, error)
	// GetRecording returns ENOTFOUND if it does not exist for the tenant
	// ("" for any tenant: internal use only).
	GetRecording(ctx context.Context, tenant, id string) (Recording, error)
	// ListRecordings returns the recordings of a call, oldest first.
	ListRecordings(ctx context.Context, tenant string, call CallID) ([]Recording, error)
	// ActiveRecordings returns every recording still in RecordingActive,
	// oldest first (for the start-up sweep and the RECORD_STOP handler).
	ActiveRecordings(ctx context.Context) ([]Recording, error)
	// MarkStored records a sealed recording: r's BlobKey, KeyID, WrappedKey,
	// SHA256, Size, DurationMS, Channels and RetainUntil. Returns ECONFLICT
	// unless it was RecordingActive.
	MarkStored(ctx context.Context, r Recording) error
	// MarkFailed moves an active recording to RecordingFailed with why.
	MarkFailed(ctx context.Context, id, why string) error
	// RewrapKeys calls rewrap for every stored recording whose key is not
	// keyID and saves what it returns (the same data key under keyID), in
	// batches; it stops at the first error. Returns how many were rewrapped.
	RewrapKeys(ctx context.Context, keyID string, rewrap func(r Recording) ([]byte, error)) (int, error)
	// ExpiredRecordings returns up to limit stored recordings whose
	// RetainUntil is before now.
	ExpiredRecordings(ctx context.Context, now time.Time, limit int) ([]Recording, error)
	// ShredRecording destroys a recording's wrapped data key — after which
	// nobody can decrypt it — and marks it RecordingShredded.
	ShredRecording(ctx context.Context, id string, at time.Time) error
}
