package freeswitch

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/callgate/callgate/controller"
)

var _ controller.Media = (*Switch)(nil)

// IVR steps run on the parked channel as `sendmsg <uuid>` executes with
// event-lock and our own Event-UUID, which FreeSWITCH reports back as the
// Application-UUID of the step's CHANNEL_EXECUTE_COMPLETE. A waiter
// registered before the sendmsg is written receives that event from the
// dispatcher, in the call's event order; the call's CHANNEL_HANGUP ends every
// waiter of the call with ErrHungUp (an application interrupted by a hangup
// still completes, but its result no longer matters), and a lost connection
// ends them all (its events may be lost with it).

// gatherVar is the channel variable play_and_get_digits stores input in.
const gatherVar = "cg_digits"

// execResult is what a step's completion carried.
type execResult struct {
	digits      string // gatherVar
	readResult  string // variable_read_result
	disposition string // variable_originate_disposition (bridge)
	bridgeCause string // variable_last_bridge_hangup_cause
	dtmf        int    // DTMF events of the call seen while the step ran
	err         error
}

type execWaiter struct {
	call controller.CallID
	done chan execResult // buffered 1
	dtmf int
}

// execs is the registry of running steps, by Application-UUID.
type execs struct {
	mu      sync.Mutex
	byApp   map[string]*execWaiter
	hungUp  map[controller.CallID]bool // calls whose CHANNEL_HANGUP was delivered
	running map[controller.CallID]int  // waiters per call
}

func (x *execs) add(call controller.CallID, app string) (*execWaiter, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.hungUp[call] {
		return nil, controller.ErrHungUp
	}
	if x.byApp == nil {
		x.byApp, x.hungUp, x.running = map[string]*execWaiter{}, map[controller.CallID]bool{}, map[controller.CallID]int{}
	}
	w := &execWaiter{call: call, done: make(chan execResult, 1)}
	x.byApp[app] = w
	x.running[call]++
	return w, nil
}

// remove forgets a waiter whatever became of it.
func (x *execs) remove(app string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeLocked(app)
}

func (x *execs) removeLocked(app string) {
	w := x.byApp[app]
	if w == nil {
		return
	}
	delete(x.byApp, app)
	if x.running[w.call]--; x.running[w.call] <= 0 {
		delete(x.running, w.call)
	}
}

func (w *execWaiter) finish(r execResult) {
	select {
	case w.done <- r:
	default:
	}
}

// event handles one delivered channel event of a call callgate tracks.
func (x *execs) event(ce controller.ChannelEvent, ev *event) {
	x.mu.Lock()
	defer x.mu.Unlock()
	switch ce.Kind {
	case EventDTMF:
		for _, w := range x.byApp {
			if w.call == ce.CallID {
				w.dtmf++
			}
		}
	case EventExecuteComplete:
		app := ev.get(hAppUUID)
		w := x.byApp[app]
		if w == nil || w.call != ce.CallID {
			return
		}
		w.finish(execResult{digits: ev.get(hGatherDigits), readResult: ev.get(hReadResult),
			disposition: ev.get(hOriginateDisposition), bridgeCause: ev.get(hLastBridgeCause), dtmf: w.dtmf})
		x.removeLocked(app)
	case controller.EventHangup, controller.EventHangupComplete:
		if x.hungUp == nil {
			x.byApp, x.hungUp, x.running = map[string]*execWaiter{}, map[controller.CallID]bool{}, map[controller.CallID]int{}
		}
		x.hungUp[ce.CallID] = true
		x.failCall(ce.CallID, controller.ErrHungUp)
	case controller.EventDestroy:
		x.failCall(ce.CallID, controller.ErrHungUp)
		delete(x.hungUp, ce.CallID)
	}
}

func (x *execs) failCall(call controller.CallID, err error) {
	if x.running[call] == 0 {
		return
	}
	for app, w := range x.byApp {
		if w.call == call {
			w.finish(execResult{err: err})
			x.removeLocked(app)
		}
	}
}

// failAll ends every waiter: the connection carrying their events is gone.
func (x *execs) failAll(err error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for app, w := range x.byApp {
		w.finish(execResult{err: err})
		x.removeLocked(app)
	}
}

// forget drops what is known about a call that is no longer tracked.
func (x *execs) forget(call controller.CallID) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.hungUp, call)
}

// sendmsgCommand is
//
//	sendmsg <uuid>
//	call-command: execute
//	execute-app-name: <app>
//	execute-app-arg: <arg>
//	event-lock: true
//	Event-UUID: <app uuid>
//
// Every part is validated by the step that builds it; BuildMessage is
// checked once more by checkWire per line.
type sendmsgCommand struct {
	call    controller.CallID
	app     string
	arg     string
	appUUID string
}

func (c sendmsgCommand) BuildMessage() string {
	var b strings.Builder
	b.WriteString("sendmsg ")
	b.WriteString(string(c.call))
	b.WriteString("\ncall-command: execute\nexecute-app-name: ")
	b.WriteString(c.app)
	if c.arg != "" {
		b.WriteString("\nexecute-app-arg: ")
		b.WriteString(c.arg)
	}
	b.WriteString("\nevent-lock: true\nEvent-UUID: ")
	b.WriteString(c.appUUID)
	return b.String()
}

// execute runs app with arg on the call's channel and waits for its
// completion.
func (s *Switch) execute(ctx context.Context, id controller.CallID, app, arg string) (execResult, error) {
	if !validUUID(string(id)) {
		return execResult{}, controller.FieldError("call_id", "must be a lower-case UUID")
	}
	if err := checkWire(arg); err != nil {
		return execResult{}, controller.FieldError(app, "holds a control character")
	}
	appUUID := uuid.NewString()
	w, err := s.media.add(id, appUUID)
	if err != nil {
		return execResult{}, fmt.Errorf("running %s on call %s: %w", app, id, err)
	}
	defer s.media.remove(appUUID)
	resp, err := s.api(ctx, "sendmsg "+app, sendmsgCommand{call: id, app: app, arg: arg, appUUID: appUUID})
	if err != nil {
		return execResult{}, fmt.Errorf("running %s on call %s: %w", app, id, err)
	}
	if msg := replyError(resp); msg != "" {
		if strings.Contains(strings.ToLower(msg), "invalid session") || strings.Contains(strings.ToLower(msg), "no such channel") {
			return execResult{}, fmt.Errorf("running %s on call %s: %w", app, id,
				controller.Errorf(controller.ENOTFOUND, "switch %s has no channel %s", s.cfg.Name, id))
		}
		return execResult{}, fmt.Errorf("running %s on call %s: %w", app, id,
			controller.Errorf(controller.EREFUSED, "switch %s refused %s: %s", s.cfg.Name, app, msg))
	}
	select {
	case r := <-w.done:
		if r.err != nil {
			return r, fmt.Errorf("running %s on call %s: %w", app, id, r.err)
		}
		return r, nil
	case <-ctx.Done():
		return execResult{}, fmt.Errorf("running %s on call %s: %w", app, id, ctx.Err())
	}
}

// Play plays prompt with the playback application.
func (s *Switch) Play(ctx context.Context, id controller.CallID, prompt string) error {
	p, err := playable("prompt", prompt)
	if err != nil {
		return err
	}
	_, err = s.execute(ctx, id, "playback", p)
	return err
}

// Gather runs play_and_get_digits:
//
//	<min> <max> <tries> <timeout> <terminators> <prompt> <invalid> cg_digits <regex> <digit timeout>
//
// Input that never matched is GatherInvalid; no input at all GatherTimeout.
func (s *Switch) Gather(ctx context.Context, id controller.CallID, req controller.GatherRequest) (controller.GatherResult, error) {
	arg, err := gatherArg(req)
	if err != nil {
		return controller.GatherResult{}, err
	}
	// A value left by an earlier gather must not read as this one's.
	if _, err := s.api(ctx, "api uuid_setvar", apiCommand{command: "uuid_setvar", args: []string{string(id), gatherVar}}); err != nil {
		return controller.GatherResult{}, fmt.Errorf("gathering digits on call %s: %w", id, err)
	}
	r, err := s.execute(ctx, id, "play_and_get_digits", arg)
	if err != nil {
		return controller.GatherResult{}, err
	}
	switch {
	case r.readResult == "success" && r.digits != "":
		return controller.GatherResult{Digits: r.digits, Status: controller.GatherSuccess}, nil
	case r.dtmf > 0:
		return controller.GatherResult{Status: controller.GatherInvalid}, nil
	default:
		return controller.GatherResult{Status: controller.GatherTimeout}, nil
	}
}

// gatherArg builds and checks play_and_get_digits' arguments.
func gatherArg(req controller.GatherRequest) (string, error) {
	if req.MinDigits < 1 || req.MaxDigits < req.MinDigits || req.MaxDigits > 128 {
		return "", controller.FieldError("max_digits", "need 1 ≤ min_digits ≤ max_digits ≤ 128")
	}
	if req.Tries < 1 || req.Tries > 10 {
		return "", controller.FieldError("tries", "must be 1 to 10")
	}
	timeout, digitTimeout := req.Timeout, req.DigitTimeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	if digitTimeout == 0 {
		digitTimeout = timeout
	}
	if timeout < time.Millisecond || timeout > time.Minute || digitTimeout < time.Millisecond || digitTimeout > time.Minute {
		return "", controller.FieldError("timeout", "must be between 1 ms and 60 s")
	}
	terms := req.Terminators
	if terms == "" {
		terms = "none"
	} else if !dtmfRE.MatchString(terms) {
		return "", controller.FieldError("terminators", "only digits, * and #")
	}
	prompt, err := playable("prompt", req.Prompt)
	if err != nil {
		return "", err
	}
	invalid := "silence_stream://250"
	if req.InvalidPrompt != "" {
		if invalid, err = playable("invalid_prompt", req.InvalidPrompt); err != nil {
			return "", err
		}
	}
	re := req.Regex
	if re == "" {
		re = `^[0-9*#]+$`
	}
	if len(re) > 256 || !regexSafe(re) {
		return "", controller.FieldError("regex", "must be at most 256 bytes without blanks, quotes or braces")
	}
	if _, err := regexp.Compile(re); err != nil {
		return "", controller.FieldError("regex", "does not compile: %v", err)
	}
	return strings.Join([]string{strconv.Itoa(req.MinDigits), strconv.Itoa(req.MaxDigits), strconv.Itoa(req.Tries),
		strconv.FormatInt(timeout.Milliseconds(), 10), terms, prompt, invalid, gatherVar, re,
		strconv.FormatInt(digitTimeout.Milliseconds(), 10)}, " "), nil
}

// regexSafe reports whether re holds none of the bytes that would split or
// quote play_and_get_digits' arguments.
func regexSafe(re string) bool { return !strings.ContainsAny(re, " \t'\"\\{}") }

var dtmfRE = regexp.MustCompile(`^[0-9*#]{1,8}$`)

// Record applies action with `api uuid_record <uuid> start|stop|mask|unmask
// <path>`; start first sets RECORD_STEREO=true (callee left, callgate's
// side right).
func (s *Switch) Record(ctx context.Context, id controller.CallID, action controller.RecordAction, path string) error {
	if !validUUID(string(id)) {
		return controller.FieldError("call_id", "must be a lower-case UUID")
	}
	switch action {
	case controller.RecordStart, controller.RecordStop, controller.RecordMask, controller.RecordUnmask:
	default:
		return controller.FieldError("action", "must be start, stop, mask or unmask")
	}
	if !safePathRE.MatchString(path) || strings.Contains(path, "..") {
		return controller.FieldError("path", "must be an absolute path of letters, digits and /._-")
	}
	run := func(cmd apiCommand) error {
		resp, err := s.api(ctx, "api "+cmd.command, cmd)
		if err != nil {
			return fmt.Errorf("recording call %s (%s): %w", id, action, err)
		}
		if msg := replyError(resp); msg != "" {
			if strings.Contains(strings.ToLower(msg), "no such channel") || strings.Contains(strings.ToLower(msg), "cannot locate session") {
				if s.media.isHungUp(id) {
					return fmt.Errorf("recording call %s (%s): %w", id, action, controller.ErrHungUp)
				}
				return controller.Errorf(controller.ENOTFOUND, "switch %s has no channel %s", s.cfg.Name, id)
			}
			return controller.Errorf(controller.EREFUSED, "switch %s refused uuid_record %s: %s", s.cfg.Name, action, msg)
		}
		return nil
	}
	if action == controller.RecordStart {
		if err := run(apiCommand{command: "uuid_setvar", args: []string{string(id), "RECORD_STEREO", "true"}}); err != nil {
			return err
		}
	}
	return run(apiCommand{command: "uuid_record", args: []string{string(id), string(action), path}})
}

func (x *execs) isHungUp(call controller.CallID) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.hungUp[call]
}

var safePathRE = regexp.MustCompile(`^/[A-Za-z0-9/._-]{1,511}$`)

// Transfer bridges the call to dest with the bridge application and waits
// until the bridge ends. dest is a dial string of letters, digits and
// /_.@:;=+- (no channel variables: those stay under callgate's control).
func (s *Switch) Transfer(ctx context.Context, id controller.CallID, dest string) (controller.TransferResult, error) {
	if err := validateDialTemplate(dest+"{number}", ""); err != nil || len(dest) > 256 || dest == "" {
		return controller.TransferResult{}, controller.FieldError("to", "must be a dial string of letters, digits and /_.@:;=+-")
	}
	r, err := s.execute(ctx, id, "bridge", dest)
	if err != nil {
		return controller.TransferResult{}, err
	}
	res := controller.TransferResult{Bridged: r.disposition == "SUCCESS", HangupCause: r.bridgeCause}
	if !res.Bridged && r.disposition != "" {
		res.HangupCause = r.disposition
	}
	return res, nil
}

// playable checks a prompt and returns it as the switch plays it: an
// absolute file path, a tone_stream:// or silence_stream:// tone, or an
// http(s) URL fetched through mod_http_cache. Nothing in it may split an
// application's arguments.
func playable(field, p string) (string, error) {
	switch {
	case p == "":
		return "", controller.FieldError(field, "is required")
	case len(p) > 1024 || strings.ContainsAny(p, " \t'\"\\{}") || checkWire(p) != nil:
		return "", controller.FieldError(field, "must be at most 1024 bytes without blanks, quotes, braces or control characters")
	case strings.HasPrefix(p, "tone_stream://"), strings.HasPrefix(p, "silence_stream://"):
		return p, nil
	case strings.HasPrefix(p, "https://"), strings.HasPrefix(p, "http://"):
		return "http_cache://" + p, nil
	case safePathRE.MatchString(p) && !strings.Contains(p, ".."):
		return p, nil
	}
	return "", controller.FieldError(field, "must be an absolute file path, an http(s) URL or a tone_stream:// or silence_stream:// tone")
}
