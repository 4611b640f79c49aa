package controller

import (
	"context"
	"time"
)

// The media capabilities an IVR flow needs from a switch, one small
// interface each (a driver implements all of them: Media). Every step runs
// on the answered channel of a call callgate originated and returns when the
// switch reports the step complete. A step interrupted because the call hung
// up returns an error wrapping ErrHungUp; ENOTFOUND if the switch has no such
// channel; EINVALID for an argument the switch's wire format cannot carry
// safely (whitespace or control characters in a prompt or a path, for
// example). Prompts are what the switch can play: an absolute file path, an
// http(s) URL, or a tone ("tone_stream://…", "silence_stream://…").

// Player plays prompts.
type Player interface {
	// Play plays prompt to the callee and returns once it has finished.
	Play(ctx context.Context, id CallID, prompt string) error
}

// Gatherer plays a prompt and collects digits.
type Gatherer interface {
	// Gather plays req.Prompt and collects between req.MinDigits and
	// req.MaxDigits digits, retrying up to req.Tries times.
	Gather(ctx context.Context, id CallID, req GatherRequest) (GatherResult, error)
}

// Recorder starts, stops, pauses (masks) and resumes recordings.
type Recorder interface {
	// Record applies action to the recording of the call at path (a path
	// on the switch's file system). A stereo recording is started; the
	// switch reports the finished file with an EventRecordStop.
	Record(ctx context.Context, id CallID, action RecordAction, path string) error
}

// Transferrer hands a call to another destination.
type Transferrer interface {
	// Transfer bridges the call to dest (a dial string such as
	// sofia/gateway/pbx/sip:agent@example.com, after the driver's own
	// checks) and returns once the bridge has ended.
	Transfer(ctx context.Context, id CallID, dest string) (TransferResult, error)
}

// Media is a switch that can run IVR flows.
type Media interface {
	Player
	Gatherer
	Recorder
	Transferrer
}

// ErrHungUp marks a media step that ended because the call hung up.
var ErrHungUp = Errorf(ECONFLICT, "the call hung up")

// GatherRequest is one prompt-and-collect step. Timeouts of zero take the
// driver's defaults (5 s for Timeout, Timeout for DigitTimeout).
type GatherRequest struct {
	Prompt        string        // played before collecting
	InvalidPrompt string        // played after input that does not match; "" plays nothing
	MinDigits     int           // at least 1
	MaxDigits     int           // at least MinDigits, at most 128
	Tries         int           // at least 1
	Timeout       time.Duration // for the first digit, after the prompt
	DigitTimeout  time.Duration // between digits
	Terminators   string        // digits that end input early, e.g. "#"; "" for none
	Regex         string        // valid input; "" accepts any digits
}

// Gather outcomes.
const (
	GatherSuccess = "success" // Digits holds valid input
	GatherInvalid = "invalid" // input was given but never matched
	GatherTimeout = "timeout" // no input at all
)

// GatherResult is what a Gather collected.
type GatherResult struct {
	Digits string `json:"digits,omitempty"`
	Status string `json:"status"` // GatherSuccess, GatherInvalid or GatherTimeout
}

// RecordAction is what Record does.
type RecordAction string

const (
	RecordStart  RecordAction = "start"
	RecordStop   RecordAction = "stop"
	RecordMask   RecordAction = "mask"   // pause: silence is recorded instead (PCI)
	RecordUnmask RecordAction = "unmask" // resume
)

// TransferResult is how a transfer ended.
type TransferResult struct {
	Bridged     bool   `json:"bridged"`                // the other side answered
	HangupCause string `json:"hangup_cause,omitempty"` // why the bridge ended or failed
}

// Recording events, delivered through the EventSink like channel events.
const (
	EventRecordStart EventKind = "record_start" // RECORD_START; RecordPath set
	EventRecordStop  EventKind = "record_stop"  // RECORD_STOP; RecordPath set, the file is complete
)
