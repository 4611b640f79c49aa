package switchsim

import (
	"strconv"
	"strings"
	"time"
)

// ariStep is one dialplan application of the callee (the ;2 half), in
// Asterisk terms: Answer, Wait, SendDTMF, Busy, Congestion, Hangup,
// Ringing, MusicOnHold, Echo.
type ariStep struct {
	App  string
	Data string
}

// ariScenario is the cgtest context of cgtest-extensions.conf (the
// Asterisk side of the scenario table; 1011..1015 exist only there).
type ariScenario struct {
	Exten string
	Steps []ariStep
}

var ariScenarios = []ariScenario{
	{"1001", []ariStep{{"Answer", ""}, {"Wait", "1.5"}, {"SendDTMF", "1"}, {"Wait", "20"}, {"Hangup", ""}}},
	{"1002", []ariStep{{"Answer", ""}, {"Wait", "1.5"}, {"SendDTMF", "2"}, {"Wait", "20"}, {"Hangup", ""}}},
	{"1003", []ariStep{{"Busy", "5"}}},
	{"1004", []ariStep{{"Ringing", ""}, {"Wait", "60"}, {"Hangup", ""}}},
	{"1005", []ariStep{{"Answer", ""}, {"Wait", "60"}, {"Hangup", ""}}},
	{"1006", []ariStep{{"Answer", ""}, {"Wait", "2"}, {"Hangup", ""}}},
	{"1007", []ariStep{{"Hangup", "21"}}},
	{"1008", []ariStep{{"Hangup", "1"}}},
	{"1009", []ariStep{{"Ringing", ""}, {"Wait", "1"}, {"Answer", ""}, {"Wait", "3"}, {"Hangup", ""}}},
	// 1010 is not in cgtest-extensions.conf: the ESL side's hangup-mid-prompt.
	{"1010", []ariStep{{"Answer", ""}, {"Wait", "1.2"}, {"Hangup", ""}}},
	{"1011", []ariStep{{"Answer", ""}, {"Wait", "1.5"}, {"SendDTMF", "1"}, {"MusicOnHold", "default,20"}, {"Hangup", ""}}},
	{"1012", []ariStep{{"Answer", ""}, {"Wait", "1"}, {"SendDTMF", "12#,250,100"}, {"MusicOnHold", "default,20"}, {"Hangup", ""}}},
	{"1013", []ariStep{{"Hangup", "17"}}},
	{"1014", []ariStep{{"Congestion", "5"}}},
	{"1015", []ariStep{{"Answer", ""}, {"Echo", ""}, {"Hangup", ""}}},
}

// ARIScenarios returns the Asterisk callee table (cgtest context) as
// extension → dialplan applications ("App(data)").
func ARIScenarios() map[string][]string {
	out := map[string][]string{}
	for _, sc := range ariScenarios {
		for _, st := range sc.Steps {
			out[sc.Exten] = append(out[sc.Exten], st.App+"("+st.Data+")")
		}
	}
	return out
}

// ariScenarioFor picks the callee by the last four digits of the number;
// false when there is no such extension.
func ariScenarioFor(number string) (ariScenario, bool) {
	digits := make([]byte, 0, len(number))
	for i := 0; i < len(number); i++ {
		if c := number[i]; c >= '0' && c <= '9' {
			digits = append(digits, c)
		}
	}
	if len(digits) >= 4 {
		suffix := string(digits[len(digits)-4:])
		for _, sc := range ariScenarios {
			if sc.Exten == suffix {
				return sc, true
			}
		}
	}
	return ariScenario{}, false
}

// Answer() waits up to this long for the first media frame.
const ariAnswerWait = 500 * time.Millisecond

func secs(v string) time.Duration {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f < 0 {
		return 0
	}
	return time.Duration(f * float64(time.Second))
}

// ariAfter runs f on b's step timer after d (unless b hangs up). Caller
// holds s.mu.
func (s *Sim) ariAfter(b *ariChan, d time.Duration, f func()) {
	if b.timer != nil {
		b.timer.Stop()
	}
	var t Timer
	t = s.afterFunc(d, func() {
		if b.timer != t || b.hungup {
			return
		}
		b.timer = nil
		f()
	})
	b.timer = t
}

// ariNextStep runs the callee's next dialplan application. Caller holds
// s.mu.
func (s *Sim) ariNextStep(c *ariCall) {
	b := c.b
	if b.hungup || c.a.hungup && c.form == ariFormOriginate {
		return
	}
	if c.step >= len(c.sc.Steps) {
		s.ariCalleeHangup(c, 16)
		return
	}
	st := c.sc.Steps[c.step]
	c.step++
	b.priority = c.step
	s.evDialplan(b, st.App, st.Data)
	next := func() { s.ariNextStep(c) }
	switch st.App {
	case "Answer":
		b.state = "Up"
		s.chanEvent(b, "ChannelStateChange", nil, nil)
		s.ariAnswered(c)
		if b.hungup || c.ended {
			return
		}
		c.answering = true
		c.answerDue = s.now.Add(ariAnswerWait)
		if d, ok := s.ariMediaToCallee(c); ok && d < ariAnswerWait {
			c.answerDue = s.now.Add(d)
		}
		s.ariAfter(b, c.answerDue.Sub(s.now), func() { c.answering = false; next() })
	case "Ringing":
		if !c.answered {
			s.evStateChange(c.a, "Ringing")
			s.queue(func() {
				if !c.ended && !c.answered && !c.a.hungup {
					s.evDial(c, "RINGING")
				}
			})
		}
		next()
	case "Wait":
		s.ariAfter(b, secs(st.Data), next)
	case "SendDTMF":
		f := strings.Split(st.Data, ",")
		between, dur := 250*time.Millisecond, 100*time.Millisecond
		if len(f) > 1 && f[1] != "" {
			between = time.Duration(atoiDef(f[1], 250)) * time.Millisecond
		}
		if len(f) > 2 && f[2] != "" {
			dur = time.Duration(atoiDef(f[2], 100)) * time.Millisecond
		}
		digits := f[0]
		var send func(i int)
		send = func(i int) {
			if i >= len(digits) {
				next()
				return
			}
			s.ariAfter(b, dur, func() {
				if c.answered && !c.a.hungup {
					s.evDTMF(c.a, string(digits[i]), int(dur/time.Millisecond))
				}
				s.ariAfter(b, between, func() { send(i + 1) })
			})
		}
		s.ariAfter(b, 100*time.Millisecond, func() { send(0) })
	case "MusicOnHold":
		f := strings.Split(st.Data, ",")
		b.moh = true
		s.ariUpdateMedia(c)
		if len(f) > 1 && f[1] != "" {
			s.ariAfter(b, secs(f[1]), func() {
				b.moh = false
				s.ariUpdateMedia(c)
				next()
			})
		}
	case "Echo":
		b.echo = true
		s.ariUpdateMedia(c)
	case "Busy", "Congestion":
		s.ariIndicateFailure(c, st.App, secs(st.Data))
	case "Hangup":
		cause := 16
		if st.Data != "" {
			cause = atoiDef(st.Data, 16)
		}
		s.ariCalleeHangup(c, cause)
	default:
		next()
	}
}

func atoiDef(v string, def int) int {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return def
	}
	return n
}

// ariAnswered: the callee answered; the Stasis channel goes Up and (in the
// originate form) enters the app. Caller holds s.mu.
func (s *Sim) ariAnswered(c *ariCall) {
	if c.answered || c.ended || c.a.hungup {
		return
	}
	c.answered = true
	if c.timeoutTimer != nil {
		c.timeoutTimer.Stop()
		c.timeoutTimer = nil
	}
	a := c.a
	s.evStateChange(a, "Up")
	s.evDial(c, "ANSWER")
	if c.form != ariFormOriginate || c.app == "" {
		return // an originate to an extension stays in the dialplan, Up
	}
	if !s.ariAppActive(c.app) {
		// Stasis() fails for an application nobody registered: the
		// channel hangs up; no event reaches anybody.
		s.ariAppHangupFlow(a, 16, false)
		return
	}
	a.appName, a.appData = "Stasis", c.app
	s.evVarset(a, "STASISSTATUS", "")
	s.evStasisStart(a, c.args)
}

// ariIndicateFailure: Busy() or Congestion() before an answer.
func (s *Sim) ariIndicateFailure(c *ariCall, app string, wait time.Duration) {
	b := c.b
	status, bcause := "BUSY", 17
	if app == "Congestion" {
		status, bcause = "CONGESTION", 34
	}
	if c.answered {
		// After an answer the indication only plays; the app waits.
		s.ariAfter(b, wait, func() { s.ariCalleeHangup(c, 16) })
		return
	}
	s.evStateChange(b, "Busy")
	c.ended = true
	if c.timeoutTimer != nil {
		c.timeoutTimer.Stop()
		c.timeoutTimer = nil
	}
	s.evDial(c, status)
	switch {
	case c.sip:
		b.stopTimers()
		s.ariDestroy(b, bcause)
		s.ariDestroy(c.a, bcause)
	case c.form == ariFormOriginate:
		b.stopTimers()
		s.evHangupRequest(b, 0, false)
		s.ariDestroy(c.a, 0)
		s.evHangupRequest(b, 16, true)
		s.ariDestroy(b, bcause)
	default:
		// channels/create + dial: the Stasis channel stays, Down; the
		// callee gives up after the indication's timeout.
		s.ariAfter(b, wait, func() { s.ariDestroy(b, bcause) })
	}
}

// ariCalleeHangup: the callee side hangs up with cause (Hangup(n), the end
// of its dialplan, or HangupChannel). Caller holds s.mu.
func (s *Sim) ariCalleeHangup(c *ariCall, cause int) {
	a, b := c.a, c.b
	if b.hungup && a.hungup {
		return
	}
	c.ended = true
	if c.timeoutTimer != nil {
		c.timeoutTimer.Stop()
		c.timeoutTimer = nil
	}
	b.stopTimers()
	if !b.hungup && b.kind == ariLocal2 {
		s.evHangupRequest(b, 16, true)
	}
	if a.hungup {
		s.ariDestroy(b, cause)
		return
	}
	if !c.dialed && c.form == ariFormCreate {
		// A created channel that was never dialled: only the app side.
		s.ariDestroy(b, cause)
		s.ariAppHangupFlow(a, cause, false)
		return
	}
	switch {
	case c.answered:
		s.evHangupRequest(a, cause, false)
		s.ariDestroy(b, cause)
		s.ariLeaveStasis(a)
		s.ariDestroy(a, cause)
	case c.form == ariFormCreate:
		s.ariDestroy(b, cause)
		s.ariAppHangupFlow(a, cause, false)
	case c.sip:
		s.ariDestroy(b, cause)
		s.evDial(c, ariDialStatus(cause))
		s.ariDestroy(a, cause)
	default:
		s.evHangupRequest(a, cause, false)
		s.ariDestroy(b, cause)
		s.evDial(c, ariDialStatus(cause))
		s.ariDestroy(a, cause)
	}
}

// ariDialStatus is Dial's DIALSTATUS for a callee that hung up unanswered.
func ariDialStatus(cause int) string {
	switch cause {
	case 17:
		return "BUSY"
	case 34, 38, 41, 42, 44:
		return "CONGESTION"
	case 1, 3, 28:
		return "NOANSWER" // as captured for cause 1
	}
	return "NOANSWER"
}

// ariMediaToCallee says when the Stasis side next sends a frame to the
// callee (a playback or DTMF running), which ends Answer()'s wait.
func (s *Sim) ariMediaToCallee(c *ariCall) (time.Duration, bool) {
	if len(c.a.plays) > 0 && c.a.plays[0].state == "playing" {
		return 20 * time.Millisecond, true
	}
	return 0, false
}

// ariCalleeHearsMedia is called when the Stasis side starts sending media
// (in d): a pending Answer() wait ends then.
func (s *Sim) ariCalleeHearsMedia(c *ariCall, d time.Duration) {
	if c == nil || !c.answering || c.b.hungup {
		return
	}
	due := s.now.Add(d)
	if !due.Before(c.answerDue) {
		return
	}
	c.answerDue = due
	s.ariAfter(c.b, d, func() { c.answering = false; s.ariNextStep(c) })
}

// ariUpdateMedia recomputes whether the Stasis channel receives audio from
// the callee (MusicOnHold, or Echo while the app plays something). Caller
// holds s.mu.
func (s *Sim) ariUpdateMedia(c *ariCall) {
	if c == nil {
		return
	}
	a, b := c.a, c.b
	on := !b.hungup && c.answered && (b.moh || b.echo && len(a.plays) > 0 && a.plays[0].state == "playing")
	if on == a.media.on {
		return
	}
	a.media.set(on, s.now)
	if a.bridge != nil {
		s.bridgeMediaUpdate(a.bridge)
	}
	for _, r := range a.recs {
		s.scheduleRecordingEnd(r)
	}
}
