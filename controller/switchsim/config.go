package switchsim

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"
)

// Config configures a Sim. The zero value is usable: password ClueCon,
// 1000 sessions, no sessions-per-second limit, real time.
type Config struct {
	// Password clients must send with "auth". Empty means FreeSWITCH's
	// default, ClueCon. (callgate switchsim --password)
	Password string
	// MaxSessions is the switch's session limit (FreeSWITCH max-sessions); a
	// loopback call uses two sessions. Over it, originate fails with
	// DESTINATION_OUT_OF_ORDER and creates no channel. 0 means 1000.
	MaxSessions int
	// MaxSPS is the sessions-per-second budget (FreeSWITCH
	// sessions-per-second). Originates over it are delayed to the next
	// simulated second, never refused. 0 means unlimited.
	MaxSPS int
	// TimeScale multiplies every behaviour delay, timeout and pacing window:
	// 1 is real time, 0.01 runs a 60 s ring timeout in 600 ms. Timestamps and
	// billsec/duration are reported in unscaled (simulated) time. 0 means 1.
	// Ignored when Clock is set.
	TimeScale float64
	// Hostname is reported as FreeSWITCH-Hostname/Switchname. Empty means
	// "switchsim".
	Hostname string
	// Logger receives connection and call logs. Nil discards them.
	Logger *slog.Logger
	// Clock overrides the time source, e.g. a ManualClock in tests. Nil means
	// the wall clock scaled by TimeScale.
	Clock Clock
	// WriteTimeout bounds each socket write; a client that does not read for
	// this long is disconnected. 0 means 5 s.
	WriteTimeout time.Duration
	// RecordDir, when set, makes recordings real: a uuid_record or
	// record_session whose absolute path lies inside this directory is
	// written there as an 8 kHz 16-bit WAV file (stereo when the channel
	// has RECORD_STEREO=true) when it stops, before RECORD_STOP. Other
	// paths, and every path when empty, are not written. Missing
	// directories under it are created. (callgate switchsim --record-dir)
	RecordDir string
	// SofiaProfiles are the sofia profiles "sofia status profile <name>"
	// reports, by name. Nil means the shipped freeswitch-conf: "external"
	// (UDP/TCP) and "external-tls" (TLS only), both running. Change them at
	// run time with SetSofiaProfile.
	SofiaProfiles map[string]SofiaProfile

	// ARIUser and ARIPassword are the ARI credentials (ari.conf user and
	// password) clients must send as HTTP basic auth or api_key=user:pass.
	// Empty means "callgate" (the captured setup).
	ARIUser     string
	ARIPassword string
	// ARIApp is the Stasis application inbound ARI channels
	// (StartARIInboundChannel) enter. Empty means "callgate".
	ARIApp string
	// Callees, when set, is the population the numbers without a named
	// scenario (their last four digits match none) are drawn from, a call
	// at a time: answered after a ring and hung up after a talk time, busy,
	// or unanswered, as the model's distributions say. Nil: such numbers
	// follow the default scenario. CalleeSeed seeds the draws (same seed,
	// same sequence of draws).
	Callees    *CalleeModel
	CalleeSeed uint64
	// ARIRecordingDir is where ARI stored recordings are written
	// (<name>.wav) and served from. Empty means a temporary directory the
	// Sim removes on Close.
	ARIRecordingDir string
}

// Validate reports a configuration the simulator cannot run with.
func (c Config) Validate() error {
	switch {
	case c.MaxSessions < 0:
		return errors.New("switchsim: MaxSessions must not be negative")
	case c.MaxSPS < 0:
		return errors.New("switchsim: MaxSPS must not be negative")
	case c.TimeScale < 0:
		return errors.New("switchsim: TimeScale must not be negative")
	case c.WriteTimeout < 0:
		return errors.New("switchsim: WriteTimeout must not be negative")
	case c.Callees != nil:
		if err := c.Callees.Validate(); err != nil {
			return fmt.Errorf("switchsim: Callees: %w", err)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Password == "" {
		c.Password = "ClueCon"
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 1000
	}
	if c.MaxSPS < 0 {
		c.MaxSPS = 0
	}
	if c.TimeScale <= 0 {
		c.TimeScale = 1
	}
	if c.Hostname == "" {
		c.Hostname = "switchsim"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Clock == nil {
		c.Clock = newScaledClock(c.TimeScale)
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 5 * time.Second
	}
	if c.ARIUser == "" {
		c.ARIUser = "callgate"
	}
	if c.ARIPassword == "" {
		c.ARIPassword = "callgate"
	}
	if c.ARIApp == "" {
		c.ARIApp = "callgate"
	}
	if c.ARIRecordingDir != "" {
		if abs, err := filepath.Abs(c.ARIRecordingDir); err == nil {
			c.ARIRecordingDir = abs
		}
	}
	if c.RecordDir != "" {
		if abs, err := filepath.Abs(c.RecordDir); err == nil {
			c.RecordDir = abs
		}
	}
	return c
}
