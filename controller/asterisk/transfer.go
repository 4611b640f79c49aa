package asterisk

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/callgate/callgate/controller"
)

var destRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{0,15}/[A-Za-z0-9_.@:+=-]{1,240}$`)

// Transfer bridges the call to dest (an Asterisk dial string such as
// PJSIP/agent@pbx) and returns once the bridge has ended: it creates a
// mixing bridge holding the call, originates dest into the app as a second
// channel, adds it to the bridge when it answers (StasisStart, state Up) and
// waits until it hangs up. A destination that fails returns Bridged false
// with the failure's cause. Returns ErrHungUp if the call hangs up first.
func (s *Switch) Transfer(ctx context.Context, id controller.CallID, dest string) (controller.TransferResult, error) {
	if !idRE.MatchString(string(id)) {
		return controller.TransferResult{}, controller.FieldError("call_id", "must be 1-128 letters, digits, . _ or -")
	}
	if !destRE.MatchString(dest) || strings.Contains(dest, "..") {
		return controller.TransferResult{}, controller.FieldError("to", "must be a dial string Tech/resource of letters, digits and _.@:+=-")
	}
	st, err := s.beginStep(id, false)
	if err != nil {
		return controller.TransferResult{}, fmt.Errorf("transferring call %s: %w", id, err)
	}
	defer s.media.end(st)
	bridge, leg := newID("cgbr"), newID("cgxfer")
	s.media.bind(st, leg)
	fail := func(err error) (controller.TransferResult, error) {
		return controller.TransferResult{}, s.stepError(id, "transferring", err)
	}
	if err := s.rest.do(ctx, "create bridge", "POST", "/bridges", url.Values{"type": {"mixing"}, "bridgeId": {bridge}}, nil); err != nil {
		return fail(err)
	}
	defer func() {
		_ = s.rest.do(context.WithoutCancel(ctx), "destroy bridge", "DELETE", "/bridges/"+bridge, nil, nil)
	}()
	if err := s.rest.do(ctx, "add channel", "POST", "/bridges/"+bridge+"/addChannel", url.Values{"channel": {string(id)}}, nil); err != nil {
		return fail(err)
	}
	if err := s.rest.do(ctx, "originate transfer", "POST", "/channels", url.Values{"endpoint": {dest}, "app": {s.cfg.App},
		"channelId": {leg}, "timeout": {"60"}}, nil); err != nil {
		return fail(err)
	}
	bridged, dialStatus := false, ""
	for {
		e, _, err := st.next(ctx, nil)
		if err != nil {
			_ = s.rest.do(context.WithoutCancel(ctx), "hang up transfer", "DELETE", "/channels/"+leg, nil, nil)
			return controller.TransferResult{}, fmt.Errorf("transferring call %s: %w", id, err)
		}
		switch e.kind {
		case stepHungUp, stepLinkLost:
			_ = s.rest.do(context.WithoutCancel(ctx), "hang up transfer", "DELETE", "/channels/"+leg, nil, nil)
			return controller.TransferResult{Bridged: bridged}, fmt.Errorf("transferring call %s: %w", id, e.err)
		case stepObject:
			ev := e.ev
			switch ev.Type {
			case evDial:
				if finalDial(ev.DialStatus) {
					dialStatus = ev.DialStatus
				}
			case evStasisStart:
				if ev.Channel.State == "Up" && !bridged {
					bridged = true
					if err := s.rest.do(ctx, "add channel", "POST", "/bridges/"+bridge+"/addChannel", url.Values{"channel": {leg}}, nil); err != nil {
						return fail(err)
					}
				}
			case evDestroyed:
				return controller.TransferResult{Bridged: bridged, HangupCause: failureCause(dialStatus, ev.Cause, bridged)}, nil
			}
		}
	}
}
