package freeswitch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/callgate/callgate/controller"
	"github.com/percipia/eslgo"
	"github.com/percipia/eslgo/command"
)

// ErrAtCapacity is wrapped when callgate already has MaxSessions calls on the
// switch.
var ErrAtCapacity = controller.Errorf(controller.EREFUSED, "switch at its session limit")

// Originate places req with `bgapi originate … &park()` and returns once the
// switch has accepted the job; the call's events, and finally its
// BACKGROUND_JOB as originate_accepted or originate_failed, go to the sink.
// The call is tracked before the command is written, so no event is missed.
//
// Returns an EINVALID error naming the field for input the command cannot
// carry safely; an error wrapping controller.ErrNotSent when the command was
// certainly not written (not connected, write failed, MaxSessions reached,
// ctx ended while pacing to MaxCPS), which may be retried; ECONFLICT if the
// call is already in flight; EREFUSED if the switch rejected the command; and
// an error wrapping ErrNoReply when it was written but not answered in time:
// the call may exist and must never be originated again.
//
// A request whose Media requires TLS or SRTP is sent only while the
// switch's SecureMedia status is confirmed (see secure.go); otherwise it
// returns an error wrapping controller.ErrNotSent and ErrMediaInsecure
// (EREFUSED, media_insecure). With SRTP the originate carries
// rtp_secure_media=mandatory:<suites…>.
func (s *Switch) Originate(ctx context.Context, req controller.OriginateRequest) error {
	cmd, err := buildOriginate(s.plan, req)
	if err != nil {
		return fmt.Errorf("originating call on %s: %w", s.cfg.Name, err)
	}
	if err := s.secureRefusal(req); err != nil {
		s.log.Warn("originate not sent: secure media not confirmed", "call_id", req.CallID, "to", controller.MaskNumber(req.To), "err", err)
		return err
	}
	id := req.CallID
	log := s.log.With("call_id", id)
	notSent := func(cause error) error {
		return fmt.Errorf("originating call %s on %s: %w: %w", id, s.cfg.Name, controller.ErrNotSent, cause)
	}
	if s.current() == nil {
		return notSent(ErrNotConnected)
	}
	if err := s.pace.Wait(ctx); err != nil {
		return notSent(err)
	}
	c := s.current()
	if c == nil {
		return notSent(ErrNotConnected)
	}
	switch s.calls.addNew(id, log, s.cfg.MaxSessions) {
	case addDuplicate:
		return controller.Errorf(controller.ECONFLICT, "call %s is already in flight on %s", id, s.cfg.Name)
	case addFull:
		return notSent(ErrAtCapacity)
	}
	resp, err := c.run(ctx, "bgapi originate", cmd)
	if err != nil {
		var ce *cmdError
		if errors.As(err, &ce) && !ce.sent {
			s.calls.remove(id)
			log.Warn("originate not sent", "to", controller.MaskNumber(req.To), "err", err)
			return notSent(err)
		}
		log.Error("originate written but not acknowledged; never retry it", "to", controller.MaskNumber(req.To), "err", err)
		return fmt.Errorf("originating call %s on %s: %w", id, s.cfg.Name, err)
	}
	if msg := replyError(resp); msg != "" || !resp.IsOk() {
		s.calls.remove(id) // the switch refused the command: no job, no channel
		log.Warn("switch refused the originate", "to", controller.MaskNumber(req.To), "reply", msg)
		return controller.Errorf(controller.EREFUSED, "switch %s refused originate of %s: %s", s.cfg.Name, id, strings.TrimSpace(resp.GetReply()))
	}
	job := resp.GetHeader("Job-UUID")
	if job == "" {
		job = strings.TrimSpace(strings.TrimPrefix(resp.GetReply(), "+OK Job-UUID:"))
	}
	if validUUID(job) {
		s.calls.setJob(id, job)
	}
	log.Info("originate accepted", "to", controller.MaskNumber(req.To), "from", controller.MaskNumber(req.CallerIDNumber), "job", job)
	return nil
}

// Hangup ends a call with `api uuid_kill <uuid> <cause>`; an empty cause is
// NORMAL_CLEARING. Returns EINVALID for a malformed id or an unknown cause,
// ENOTFOUND if the switch has no such channel, and EUNAVAILABLE (ErrNotConnected
// or ErrNoReply) when the switch cannot be asked.
func (s *Switch) Hangup(ctx context.Context, id controller.CallID, cause string) error {
	if !validUUID(string(id)) {
		return controller.FieldError("call_id", "must be a lower-case UUID")
	}
	if cause == "" {
		cause = "NORMAL_CLEARING"
	}
	if !controller.ValidHangupCause(cause) {
		return controller.FieldError("cause", "unknown hangup cause")
	}
	resp, err := s.api(ctx, "api uuid_kill", killCommand(id, cause))
	if err != nil {
		return fmt.Errorf("hanging up call %s on %s: %w", id, s.cfg.Name, err)
	}
	if msg := replyError(resp); msg != "" {
		if strings.Contains(strings.ToLower(msg), "no such channel") {
			return controller.Errorf(controller.ENOTFOUND, "switch %s has no channel %s", s.cfg.Name, id)
		}
		return controller.Errorf(controller.EREFUSED, "switch %s refused hangup of %s: %s", s.cfg.Name, id, msg)
	}
	return nil
}

// Channels lists the switch's live channels (`api show channels as json`),
// every channel, not only callgate's. As a side effect, a call callgate
// tracks that is missing from two consecutive listings is forgotten (its
// end was lost across a reconnect). Returns EUNAVAILABLE when the switch is
// not connected or does not answer, EINTERNAL for a reply it cannot parse.
func (s *Switch) Channels(ctx context.Context) ([]controller.Channel, error) {
	before := s.calls.mark()
	resp, err := s.api(ctx, "api show channels", channelsCommand)
	if err != nil {
		return nil, fmt.Errorf("listing channels on %s: %w", s.cfg.Name, err)
	}
	if msg := replyError(resp); msg != "" {
		return nil, controller.Errorf(controller.EUNAVAILABLE, "switch %s: show channels: %s", s.cfg.Name, msg)
	}
	chans, err := parseChannels(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("listing channels on %s: %w", s.cfg.Name, err)
	}
	listed := make(map[string]bool, len(chans))
	for _, ch := range chans {
		listed[ch.UUID] = true
	}
	if n := s.calls.prune(listed, before); n > 0 {
		s.log.Info("forgot calls the switch no longer has", "count", n)
	}
	return chans, nil
}

// api runs a command on the current connection.
func (s *Switch) api(ctx context.Context, name string, cmd command.Command) (*eslgo.RawResponse, error) {
	c := s.current()
	if c == nil {
		return nil, ErrNotConnected
	}
	return c.run(ctx, name, cmd)
}

// parseChannels reads `show channels as json`: {"row_count":N,"rows":[…]},
// or {"row_count": 0} with no rows.
func parseChannels(body []byte) ([]controller.Channel, error) {
	var out struct {
		RowCount int `json:"row_count"`
		Rows     []struct {
			UUID      string `json:"uuid"`
			Name      string `json:"name"`
			State     string `json:"state"`
			CallState string `json:"callstate"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, controller.Errorf(controller.EINTERNAL, "unreadable channel list: %v", err)
	}
	chans := make([]controller.Channel, 0, len(out.Rows))
	for _, r := range out.Rows {
		cs := strings.ToUpper(r.CallState)
		chans = append(chans, controller.Channel{
			UUID:      r.UUID,
			Name:      r.Name,
			State:     r.State,
			CallState: r.CallState,
			Answered:  cs == "ACTIVE" || cs == "HELD" || cs == "UNHELD",
		})
	}
	return chans, nil
}
