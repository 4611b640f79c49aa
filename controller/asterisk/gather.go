package asterisk

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/callgate/callgate/controller"
)

// gatherPlan is a checked GatherRequest.
type gatherPlan struct {
	prompt, invalid media
	hasInvalid      bool
	min, max, tries int
	timeout, digit  time.Duration
	terms           string
	re              *regexp.Regexp
}

var dtmfRE = regexp.MustCompile(`^[0-9*#]{1,8}$`)

func planGather(req controller.GatherRequest) (gatherPlan, error) {
	var g gatherPlan
	if req.MinDigits < 1 || req.MaxDigits < req.MinDigits || req.MaxDigits > 128 {
		return g, controller.FieldError("max_digits", "need 1 ≤ min_digits ≤ max_digits ≤ 128")
	}
	if req.Tries < 1 || req.Tries > 10 {
		return g, controller.FieldError("tries", "must be 1 to 10")
	}
	g.min, g.max, g.tries = req.MinDigits, req.MaxDigits, req.Tries
	g.timeout, g.digit = req.Timeout, req.DigitTimeout
	if g.timeout == 0 {
		g.timeout = 5 * time.Second
	}
	if g.digit == 0 {
		g.digit = g.timeout
	}
	if g.timeout < time.Millisecond || g.timeout > time.Minute || g.digit < time.Millisecond || g.digit > time.Minute {
		return g, controller.FieldError("timeout", "must be between 1 ms and 60 s")
	}
	if req.Terminators != "" && !dtmfRE.MatchString(req.Terminators) {
		return g, controller.FieldError("terminators", "only digits, * and #")
	}
	g.terms = req.Terminators
	var err error
	if g.prompt, err = translate("prompt", req.Prompt); err != nil {
		return g, err
	}
	if req.InvalidPrompt != "" {
		if g.invalid, err = translate("invalid_prompt", req.InvalidPrompt); err != nil {
			return g, err
		}
		g.hasInvalid = true
	}
	re := req.Regex
	if re == "" {
		re = `^[0-9*#]+$`
	}
	if len(re) > 256 {
		return g, controller.FieldError("regex", "must be at most 256 bytes")
	}
	if g.re, err = regexp.Compile(re); err != nil {
		return g, controller.FieldError("regex", "does not compile: %v", err)
	}
	return g, nil
}

// Gather plays req.Prompt and collects digits from ChannelDtmfReceived
// events with the semantics of FreeSWITCH's play_and_get_digits: digits
// pressed during the prompt count (the first one stops it); after the
// prompt, Timeout waits for the first digit and DigitTimeout between
// digits; a terminator or MaxDigits ends input; input of at least
// MinDigits that matches Regex succeeds; otherwise InvalidPrompt is played
// and the next try starts, up to Tries. Input that never matched is
// GatherInvalid, no input at all GatherTimeout. Digits pressed since the
// previous step count too (FreeSWITCH queues them on the channel).
func (s *Switch) Gather(ctx context.Context, id controller.CallID, req controller.GatherRequest) (controller.GatherResult, error) {
	if !idRE.MatchString(string(id)) {
		return controller.GatherResult{}, controller.FieldError("call_id", "must be 1-128 letters, digits, . _ or -")
	}
	g, err := planGather(req)
	if err != nil {
		return controller.GatherResult{}, err
	}
	st, err := s.beginStep(id, true)
	if err != nil {
		return controller.GatherResult{}, fmt.Errorf("gathering digits on call %s: %w", id, err)
	}
	defer s.media.end(st)
	input := false
	for try := 0; try < g.tries; try++ {
		digits, pressed, err := s.collect(ctx, st, &g)
		if err != nil {
			return controller.GatherResult{}, fmt.Errorf("gathering digits on call %s: %w", id, err)
		}
		input = input || pressed
		if len(digits) >= g.min && g.re.MatchString(digits) {
			return controller.GatherResult{Digits: digits, Status: controller.GatherSuccess}, nil
		}
		if g.hasInvalid {
			if err := s.playOn(ctx, st, g.invalid); err != nil {
				return controller.GatherResult{}, err
			}
		}
		st.mu.Lock()
		for _, e := range st.queue { // digits pressed during the invalid prompt are flushed
			input = input || e.kind == stepDTMF
		}
		st.queue = dropDTMF(st.queue)
		st.mu.Unlock()
	}
	if input {
		return controller.GatherResult{Status: controller.GatherInvalid}, nil
	}
	return controller.GatherResult{Status: controller.GatherTimeout}, nil
}

func dropDTMF(q []stepEvent) []stepEvent {
	out := q[:0]
	for _, e := range q {
		if e.kind != stepDTMF {
			out = append(out, e)
		}
	}
	return out
}

// collect runs one try: the prompt, then the digit timers. pressed reports
// whether any key (a terminator included) was pressed.
func (s *Switch) collect(ctx context.Context, st *step, g *gatherPlan) (digits string, pressed bool, err error) {
	p, err := s.startPrompt(ctx, st, g.prompt)
	if err != nil {
		return "", false, err
	}
	defer p.stopTimer()
	var wait *time.Timer
	defer func() {
		if wait != nil {
			wait.Stop()
		}
	}()
	arm := func(d time.Duration) {
		if wait != nil {
			wait.Stop()
		}
		wait = time.NewTimer(d)
	}
	playing := true
	for {
		var timer <-chan time.Time
		switch {
		case playing:
			timer = p.deadline
		case wait != nil:
			timer = wait.C
		}
		e, ok, err := st.next(ctx, timer)
		if err != nil {
			if playing {
				s.stopPrompt(context.WithoutCancel(ctx), p)
			}
			return "", pressed, err
		}
		if !ok {
			if playing {
				s.stopPrompt(ctx, p)
				if p.done { // silence: over
					playing = false
					arm(g.timeout)
				}
				continue
			}
			return digits, pressed, nil
		}
		switch e.kind {
		case stepHungUp, stepLinkLost:
			return "", pressed, e.err
		case stepDTMF:
			pressed = true
			if playing {
				s.stopPrompt(ctx, p)
				playing = false
			}
			if strings.Contains(g.terms, e.digit) {
				return digits, pressed, nil
			}
			digits += e.digit
			if len(digits) >= g.max {
				return digits, pressed, nil
			}
			arm(g.digit)
		case stepObject:
			if err := p.observe(e); err != nil {
				return "", pressed, err
			}
			if p.done && playing {
				playing = false
				arm(g.timeout)
			}
		}
	}
}
