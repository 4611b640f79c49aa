package controller

import (
	"context"
	"io"
)

// FlowProblem is one finding of flow validation, pointing at a node.
type FlowProblem struct {
	Node     string `json:"node,omitempty"`
	Field    string `json:"field,omitempty"`
	Severity string `json:"severity"` // "error" (the flow is refused) or "warning"
	Message  string `json:"message"`
}

// FlowAdmin is what the HTTP API drives for IVR flows and prompts.
// Implemented by controller/ivr.
type FlowAdmin interface {
	// SaveFlow validates body (a flow document) and stores it as the next
	// version of flow id. Returns the problems found; if any is an error,
	// nothing is stored and the error is EINVALID.
	SaveFlow(ctx context.Context, tenant, id string, body []byte) (FlowRecord, []FlowProblem, error)
	// ValidateFlow validates body without storing it. Returns EINVALID only
	// for a document that cannot be decoded at all.
	ValidateFlow(ctx context.Context, tenant string, body []byte) ([]FlowProblem, error)
	// GetFlow returns version of a flow, the newest if 0. Returns ENOTFOUND.
	GetFlow(ctx context.Context, tenant, id string, version int) (FlowRecord, error)
	// ListFlows returns the newest version of each flow.
	ListFlows(ctx context.Context, tenant string) ([]FlowRecord, error)
	// FlowRun returns the path a call took through its flow. Returns
	// ENOTFOUND if the call ran no flow.
	FlowRun(ctx context.Context, tenant string, call CallID) (FlowRun, error)
	// UploadPrompt validates wav (a PCM WAV file) and stores it with p's
	// Name, Text and Language as the prompt's next version. Returns
	// EINVALID for audio the switch cannot play or a bad name.
	UploadPrompt(ctx context.Context, p Prompt, wav io.Reader) (Prompt, error)
	// GetPrompt returns version of a prompt, the newest if 0. Returns ENOTFOUND.
	GetPrompt(ctx context.Context, tenant, name string, version int) (Prompt, error)
	// ListPrompts returns the newest version of each prompt.
	ListPrompts(ctx context.Context, tenant string) ([]Prompt, error)
}

// RecordingAdmin is what the HTTP API drives for recordings. Who may list,
// stream or download them is decided by the API's authorisation.
type RecordingAdmin interface {
	// GetRecording returns a recording's metadata. Returns ENOTFOUND.
	GetRecording(ctx context.Context, tenant, id string) (Recording, error)
	// ListRecordings returns the recordings of a call, oldest first.
	ListRecordings(ctx context.Context, tenant string, call CallID) ([]Recording, error)
	// OpenRecording returns a recording's metadata and its decrypted WAV.
	// Returns ENOTFOUND, or ECONFLICT if it is not stored (still recording,
	// failed, or shredded past retention).
	OpenRecording(ctx context.Context, tenant, id string) (Recording, io.ReadCloser, error)
	// PauseRecording masks the active recording of a call (PCI: card
	// numbers are not recorded) and ResumeRecording unmasks it. Return
	// ENOTFOUND if the call has no active recording.
	PauseRecording(ctx context.Context, tenant string, call CallID) error
	ResumeRecording(ctx context.Context, tenant string, call CallID) error
}
