package asterisk

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callgate/callgate/controller"
)

// IVR steps run on the answered Stasis channel. A step registers itself
// (and the ids of the playbacks, recordings and helper channels it creates,
// chosen by callgate) with the mediaHub before it sends the request, so an
// event that overtakes the REST reply (PlaybackStarted does) is not lost.
// The dispatcher feeds each step, in the call's event order, its DTMF, its
// objects' events, the call's hangup and a lost link.

type stepEventKind uint8

const (
	stepDTMF stepEventKind = iota + 1
	stepObject
	stepHungUp
	stepLinkLost
)

type stepEvent struct {
	kind  stepEventKind
	digit string
	ev    event // stepObject: the object's event
	err   error
}

// step is one running IVR step's mailbox: unbounded, so the dispatcher
// never blocks on it.
type step struct {
	call    controller.CallID
	dtmf    bool // wants the call's digits
	mu      sync.Mutex
	queue   []stepEvent
	notify  chan struct{}
	objects []string
}

func (st *step) put(e stepEvent) {
	st.mu.Lock()
	st.queue = append(st.queue, e)
	st.mu.Unlock()
	select {
	case st.notify <- struct{}{}:
	default:
	}
}

// next waits for the step's next event, the timer or ctx. ok is false when
// the timer fired.
func (st *step) next(ctx context.Context, timer <-chan time.Time) (stepEvent, bool, error) {
	for {
		st.mu.Lock()
		if len(st.queue) > 0 {
			e := st.queue[0]
			st.queue = st.queue[1:]
			st.mu.Unlock()
			return e, true, nil
		}
		st.mu.Unlock()
		select {
		case <-st.notify:
		case <-timer:
			return stepEvent{}, false, nil
		case <-ctx.Done():
			return stepEvent{}, false, ctx.Err()
		}
	}
}

type mediaHub struct {
	mu      sync.Mutex
	steps   map[controller.CallID]map[*step]struct{}
	objects map[string]*step
	buffer  map[controller.CallID]string // digits pressed while no gather ran
	down    map[controller.CallID]bool   // hangup seen
	recs    map[controller.CallID]*recSession
}

func newMediaHub() *mediaHub {
	return &mediaHub{steps: map[controller.CallID]map[*step]struct{}{}, objects: map[string]*step{},
		buffer: map[controller.CallID]string{}, down: map[controller.CallID]bool{},
		recs: map[controller.CallID]*recSession{}}
}

// begin registers a step on call. A gathering step takes the digits
// buffered since the last one. Returns ErrHungUp if the call hung up.
func (h *mediaHub) begin(call controller.CallID, dtmf bool) (*step, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down[call] {
		return nil, controller.ErrHungUp
	}
	st := &step{call: call, dtmf: dtmf, notify: make(chan struct{}, 1)}
	if h.steps[call] == nil {
		h.steps[call] = map[*step]struct{}{}
	}
	h.steps[call][st] = struct{}{}
	if dtmf {
		for _, d := range h.buffer[call] {
			st.queue = append(st.queue, stepEvent{kind: stepDTMF, digit: string(d)})
		}
		delete(h.buffer, call)
	}
	return st, nil
}

// bind routes the events of object id (a playback, recording or channel
// callgate created) to st.
func (h *mediaHub) bind(st *step, id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.objects[id] = st
	st.objects = append(st.objects, id)
}

func (h *mediaHub) end(st *step) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range st.objects {
		if h.objects[id] == st {
			delete(h.objects, id)
		}
	}
	delete(h.steps[st.call], st)
	if len(h.steps[st.call]) == 0 {
		delete(h.steps, st.call)
	}
}

func (h *mediaHub) hasObject(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.objects[id] != nil
}

func (h *mediaHub) isDown(call controller.CallID) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.down[call]
}

// objectEvent hands an event of a playback, recording or helper channel to
// its step; false if no step owns it.
func (h *mediaHub) objectEvent(ev *event) bool {
	id := ev.channelID()
	switch ev.Type {
	case evPlaybackStarted, evPlaybackFinished:
		id = ev.Playback.ID
	case evRecordingStarted, evRecordingFinished, evRecordingFailed:
		id = ev.Recording.Name
	}
	h.mu.Lock()
	st := h.objects[id]
	h.mu.Unlock()
	if st == nil {
		return false
	}
	st.put(stepEvent{kind: stepObject, ev: *ev})
	return true
}

func (h *mediaHub) dtmf(call controller.CallID, digit string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	took := false
	for st := range h.steps[call] {
		if st.dtmf {
			st.put(stepEvent{kind: stepDTMF, digit: digit})
			took = true
		}
	}
	if !took && len(h.buffer[call]) < 128 && len(digit) == 1 {
		h.buffer[call] += digit
	}
}

func (h *mediaHub) hungUp(call controller.CallID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.down[call] = true
	for st := range h.steps[call] {
		st.put(stepEvent{kind: stepHungUp, err: controller.ErrHungUp})
	}
}

// ended forgets a destroyed call and finishes its recording, if any, in the
// background.
func (h *mediaHub) ended(call controller.CallID, s *Switch) {
	h.hungUp(call)
	h.mu.Lock()
	delete(h.down, call)
	delete(h.buffer, call)
	rec := h.recs[call]
	delete(h.recs, call)
	h.mu.Unlock()
	if rec != nil {
		s.finishInBackground(rec)
	}
}

func (h *mediaHub) linkLost(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, steps := range h.steps {
		for st := range steps {
			st.put(stepEvent{kind: stepLinkLost, err: err})
		}
	}
}

// newID returns prefix-<random hex>, an id Asterisk accepts in a path.
func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// media is a prompt as Asterisk plays it: uri "" is silence for ms; a tone
// plays until callgate stops it after ms.
type media struct {
	uri string
	ms  int
}

var (
	soundPathRE = regexp.MustCompile(`^/[A-Za-z0-9/._-]{1,511}$`)
	toneRE      = regexp.MustCompile(`^tone_stream://%\((\d{1,6}),(\d{1,6}),(\d{1,5})(?:,(\d{1,5}))?\)(?:;loops=(\d{1,3}))?$`)
	silenceRE   = regexp.MustCompile(`^silence_stream://(\d{1,7})(?:,\d+)?$`)
)

// translate turns one of callgate's prompt forms into what Asterisk plays:
//
//	/x/y/name.wav                       → sound:/x/y/name (no extension)
//	tone_stream://%(on,off,f1[,f2])     → tone:f1[+f2], stopped after (on+off)·loops ms
//	silence_stream://ms                 → callgate waits ms
//	http(s)://…                         → EINVALID: not verified on Asterisk 22
func translate(field, p string) (media, error) {
	switch {
	case p == "":
		return media{}, controller.FieldError(field, "is required")
	case len(p) > 1024 || strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return media{}, controller.FieldError(field, "must be at most 1024 bytes without blanks or control characters")
	case strings.HasPrefix(p, "tone_stream://"):
		m := toneRE.FindStringSubmatch(p)
		if m == nil {
			return media{}, controller.FieldError(field, "tone must be tone_stream://%%(on_ms,off_ms,freq[,freq2])[;loops=n]")
		}
		on, _ := strconv.Atoi(m[1])
		off, _ := strconv.Atoi(m[2])
		loops := 1
		if m[5] != "" {
			loops, _ = strconv.Atoi(m[5])
		}
		ms := (on + off) * loops
		if ms <= 0 || ms > 10*60*1000 {
			return media{}, controller.FieldError(field, "tone must last 1 ms to 10 min")
		}
		uri := "tone:" + m[3]
		if m[4] != "" {
			uri += "+" + m[4]
		}
		return media{uri: uri, ms: ms}, nil
	case strings.HasPrefix(p, "silence_stream://"):
		m := silenceRE.FindStringSubmatch(p)
		if m == nil {
			return media{}, controller.FieldError(field, "silence must be silence_stream://ms")
		}
		ms, _ := strconv.Atoi(m[1])
		return media{ms: ms}, nil
	case strings.HasPrefix(p, "http://"), strings.HasPrefix(p, "https://"):
		return media{}, controller.FieldError(field, "http(s) prompts are not supported on Asterisk: use a file on the switch")
	case soundPathRE.MatchString(p) && !strings.Contains(p, ".."):
		name := p
		if i := strings.LastIndexByte(name, '.'); i > strings.LastIndexByte(name, '/') {
			name = name[:i]
		}
		return media{uri: "sound:" + name}, nil
	}
	return media{}, controller.FieldError(field, "must be an absolute file path or a tone_stream:// or silence_stream:// tone")
}

// player runs one prompt on a step.
type player struct {
	id       string // playback id; "" for silence
	m        media
	deadline <-chan time.Time // silence end or tone stop
	timer    *time.Timer
	done     bool
}

// startPrompt begins m on the call; for silence it only arms a timer.
func (s *Switch) startPrompt(ctx context.Context, st *step, m media) (*player, error) {
	p := &player{m: m}
	if m.ms > 0 {
		p.timer = time.NewTimer(time.Duration(m.ms) * time.Millisecond)
		p.deadline = p.timer.C
	}
	if m.uri == "" {
		return p, nil
	}
	p.id = newID("cgpb")
	s.media.bind(st, p.id)
	err := s.rest.do(ctx, "play", "POST", "/channels/"+url.PathEscape(string(st.call))+"/play",
		url.Values{"media": {m.uri}, "playbackId": {p.id}}, nil)
	if err != nil {
		p.stopTimer()
		return nil, s.stepError(st.call, "playing", err)
	}
	return p, nil
}

func (p *player) stopTimer() {
	if p.timer != nil {
		p.timer.Stop()
	}
}

// stop ends a playback early (DELETE /playbacks/{id}); its PlaybackFinished
// follows. A playback already gone (404) is fine.
func (s *Switch) stopPrompt(ctx context.Context, p *player) {
	p.stopTimer()
	p.deadline = nil
	if p.id == "" {
		p.done = true
		return
	}
	_ = s.rest.do(ctx, "stop playback", "DELETE", "/playbacks/"+url.PathEscape(p.id), nil, nil)
}

// observe updates p with a step event; it returns an error for a failed
// playback.
func (p *player) observe(e stepEvent) error {
	if e.kind != stepObject || e.ev.Playback.ID != p.id || p.id == "" {
		return nil
	}
	if e.ev.Type == evPlaybackFinished {
		p.done = true
		p.stopTimer()
		if e.ev.Playback.State == "failed" {
			return controller.Errorf(controller.EREFUSED, "the switch could not play %s", p.m.uri)
		}
	}
	return nil
}

// stepError wraps a REST failure of a step: a 404 on a call that hung up is
// ErrHungUp.
func (s *Switch) stepError(call controller.CallID, what string, err error) error {
	var re *restError
	if errors.As(err, &re) && re.status == 404 && s.media.isDown(call) {
		return fmt.Errorf("%s on call %s: %w", what, call, controller.ErrHungUp)
	}
	return fmt.Errorf("%s on call %s: %w", what, call, asController(s.cfg.Name, err))
}

// Play plays prompt and returns once it finished. Returns ErrHungUp if the
// call hangs up meanwhile, EUNAVAILABLE if the link is lost.
func (s *Switch) Play(ctx context.Context, id controller.CallID, prompt string) error {
	if !idRE.MatchString(string(id)) {
		return controller.FieldError("call_id", "must be 1-128 letters, digits, . _ or -")
	}
	m, err := translate("prompt", prompt)
	if err != nil {
		return err
	}
	st, err := s.beginStep(id, false)
	if err != nil {
		return fmt.Errorf("playing on call %s: %w", id, err)
	}
	defer s.media.end(st)
	return s.playOn(ctx, st, m)
}

func (s *Switch) playOn(ctx context.Context, st *step, m media) error {
	p, err := s.startPrompt(ctx, st, m)
	if err != nil {
		return err
	}
	defer p.stopTimer()
	for !p.done {
		e, ok, err := st.next(ctx, p.deadline)
		switch {
		case err != nil:
			s.stopPrompt(context.WithoutCancel(ctx), p)
			return fmt.Errorf("playing on call %s: %w", st.call, err)
		case !ok:
			s.stopPrompt(ctx, p)
			continue
		case e.kind == stepHungUp || e.kind == stepLinkLost:
			return fmt.Errorf("playing on call %s: %w", st.call, e.err)
		}
		if err := p.observe(e); err != nil {
			return fmt.Errorf("playing on call %s: %w", st.call, err)
		}
	}
	return nil
}

// beginStep starts an IVR step on a call the driver tracks. Returns
// ENOTFOUND for a call it does not (never originated here, or ended and
// forgotten) and ErrHungUp for one that is hanging up.
func (s *Switch) beginStep(id controller.CallID, dtmf bool) (*step, error) {
	if !s.calls.has(string(id)) {
		return nil, controller.Errorf(controller.ENOTFOUND, "switch %s has no call %s", s.cfg.Name, id)
	}
	return s.media.begin(id, dtmf)
}
