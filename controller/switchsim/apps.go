package switchsim

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// appOrigin says who started an application and so what happens after it.
type appOrigin int

const (
	originScript appOrigin = iota // a dialplan step: the next step follows
	originESL                     // sendmsg execute: the next queued sendmsg follows
	originInline                  // the originate's &app(): the channel hangs up after it
)

// appRun is one execution of a dialplan application on a channel.
type appRun struct {
	name     string
	data     string
	uuid     string // Application-UUID (sendmsg's Event-UUID when given)
	origin   appOrigin
	loops    int // sendmsg "loops"
	loop     int
	response string        // Application-Response
	started  time.Time     // for playback
	length   time.Duration // for playback
	pg       *pagd
	br       *bridge // a running bridge
}

// defaultPromptLength is how long a sound file the simulator cannot size
// (anything but tone_stream:// and silence_stream://) plays.
const defaultPromptLength = time.Second

// execute starts run on ch with CHANNEL_EXECUTE, as switch_core_session_exec
// does, and reports whether it already completed.
func (s *Sim) execute(ch *channel, run *appRun) bool {
	ch.apps = append(ch.apps, run)
	v := &ch.vars
	if run.origin == originESL {
		v.set("current_loop", strconv.Itoa(run.loop))
		v.set("total_loops", strconv.Itoa(run.loops))
	}
	v.set("current_application", run.name)
	v.set("current_application_data", run.data)
	ch.lastApp, ch.lastArg = run.name, run.data
	run.response = "_none_"
	if run.data != "" {
		s.emitChannel(ch, "CHANNEL_EXECUTE", "Application", run.name, "Application-Data", run.data,
			"Application-UUID", run.uuid)
	} else {
		s.emitChannel(ch, "CHANNEL_EXECUTE", "Application", run.name, "Application-UUID", run.uuid)
	}
	v.set("current_application", run.name)
	run.started = s.now

	switch run.name {
	case "answer", "pre_answer":
		if ch.kind == legLoopbackB || ch.kind == legRemote {
			s.calleeAnswered(ch)
		}
		if ch.visible() && ch.answered.IsZero() {
			s.markAnswered(ch)
			v.set("endpoint_disposition", "ANSWER")
		}
	case "ring_ready":
		if ch.kind == legLoopbackB || ch.kind == legRemote {
			s.calleeRinging(ch)
		}
		if ch.visible() && ch.progress.IsZero() && ch.answered.IsZero() {
			ch.progress = s.now
			s.emitChannel(ch, "CHANNEL_PROGRESS")
		}
	case "sleep":
		if d := time.Duration(leadingInt(run.data)) * time.Millisecond; d > 0 {
			s.schedule(ch, d, func() { s.finish(ch, run) })
			return false
		}
	case "send_dtmf":
		digits, _, _ := strings.Cut(run.data, "@")
		v.set("last_dtmf_duration", "500")
		if peer := ch.peer; peer != nil && digits != "" {
			s.queue(func() { s.deliverDTMF(peer, digits) })
		}
	case "hangup":
		cause := "NORMAL_CLEARING"
		if run.data != "" {
			cause = parseCause(run.data)
		}
		s.hangupChannel(ch, cause, false)
		return false
	case "park":
		s.emitChannel(ch, "CHANNEL_PARK")
		return false
	case "echo":
		return false
	case "playback":
		run.length = promptLength(run.data)
		s.schedule(ch, run.length, func() {
			setPlaybackVars(ch, run.length)
			run.response = "FILE PLAYED"
			s.finish(ch, run)
		})
		return false
	case "play_and_get_digits":
		if s.startPAGD(ch, run) {
			return false
		}
	case "bridge":
		if s.startBridge(ch, run) {
			return false
		}
	case "record_session":
		if path, _, _ := strings.Cut(run.data, " "); path != "" {
			s.queue(func() {
				if !ch.hungup {
					s.startRecording(ch, path)
				}
			})
		}
	case "stop_record_session":
		s.stopRecording(ch, strings.TrimSpace(run.data))
	case "set", "export":
		if name, value, ok := strings.Cut(run.data, "="); ok {
			v.set(name, value)
		}
	case "unset":
		v.unset(strings.TrimSpace(run.data))
	}
	s.complete(ch, run)
	return true
}

// complete emits CHANNEL_EXECUTE_COMPLETE and takes run off the stack.
func (s *Sim) complete(ch *channel, run *appRun) {
	for i := len(ch.apps) - 1; i >= 0; i-- {
		if ch.apps[i] == run {
			ch.apps = append(ch.apps[:i], ch.apps[i+1:]...)
			break
		}
	}
	if run.data != "" {
		s.emitChannel(ch, "CHANNEL_EXECUTE_COMPLETE", "Application", run.name, "Application-Data", run.data,
			"Application-Response", run.response, "Application-UUID", run.uuid)
	} else {
		s.emitChannel(ch, "CHANNEL_EXECUTE_COMPLETE", "Application", run.name,
			"Application-Response", run.response, "Application-UUID", run.uuid)
	}
	if run.origin == originESL && (run.loop >= run.loops || ch.hungup) {
		ch.vars.unset("current_loop")
		ch.vars.unset("total_loops")
	}
}

// finish completes an application that had to wait, then continues with
// whatever its origin runs next.
func (s *Sim) finish(ch *channel, run *appRun) {
	s.complete(ch, run)
	if ch.hungup {
		return
	}
	switch run.origin {
	case originScript:
		s.runScript(ch)
	case originESL:
		for run.loop < run.loops && !ch.hungup {
			run.loop++
			if !s.execute(ch, run) {
				return
			}
		}
		s.runPending(ch)
	case originInline:
		s.hangupChannel(ch, "NORMAL_CLEARING", false)
	}
}

// queueApp queues a sendmsg execute; it runs once the channel is parked or
// idle, after the ones queued before it.
func (s *Sim) queueApp(ch *channel, run *appRun) {
	run.origin = originESL
	if run.loops < 1 {
		run.loops = 1
	}
	ch.pending = append(ch.pending, run)
	s.runPending(ch)
}

func (s *Sim) runPending(ch *channel) {
	for !ch.hungup && len(ch.pending) > 0 {
		top := ch.top()
		idle := (top == nil && ch.state == "CS_EXECUTE") || (top != nil && top.name == "park")
		if !idle {
			return
		}
		run := ch.pending[0]
		ch.pending = ch.pending[1:]
		run.loop = 1
		for {
			if !s.execute(ch, run) {
				return
			}
			if run.loop >= run.loops || ch.hungup {
				break
			}
			run.loop++
		}
	}
}

// finishApps ends what a hanging-up channel was running, innermost first:
// an interrupted play_and_get_digits fails, a park ends with
// CHANNEL_UNPARK.
func (s *Sim) finishApps(ch *channel) {
	for len(ch.apps) > 0 {
		run := ch.apps[len(ch.apps)-1]
		switch {
		case run.name == "park":
			s.emitChannel(ch, "CHANNEL_UNPARK")
		case run.pg != nil:
			s.pagdAbort(ch, run)
		case run.br != nil:
			s.bridgeAbort(run.br)
		case run.name == "playback":
			setPlaybackVars(ch, min(s.now.Sub(run.started), run.length))
			run.response = "PLAYBACK ERROR"
		}
		s.complete(ch, run)
	}
}

// promptLength is how long a prompt plays: tone_stream:// %(on,off,…)
// segments and silence_stream://ms are measured, other files take
// defaultPromptLength.
func promptLength(file string) time.Duration {
	switch {
	case file == "":
		return 0
	case strings.HasPrefix(file, "silence_stream://"):
		ms := leadingInt(strings.TrimPrefix(file, "silence_stream://"))
		if ms < 0 {
			return time.Hour
		}
		return time.Duration(ms) * time.Millisecond
	case strings.HasPrefix(file, "tone_stream://"):
		spec := strings.TrimPrefix(file, "tone_stream://")
		loops, total := 1, 0
		for _, part := range strings.Split(spec, ";") {
			switch {
			case strings.HasPrefix(part, "L="):
				loops = max(leadingInt(part[2:]), 1)
			case strings.HasPrefix(part, "%("):
				inner, _, _ := strings.Cut(part[2:], ")")
				f := strings.Split(inner, ",")
				if len(f) >= 2 {
					total += leadingInt(f[0]) + leadingInt(f[1])
				}
			}
		}
		if total > 0 {
			return time.Duration(total*loops) * time.Millisecond
		}
	}
	return defaultPromptLength
}

// setPlaybackVars records a finished playback like switch_ivr_play_file.
func setPlaybackVars(ch *channel, played time.Duration) {
	ms := played.Milliseconds()
	samples := i64(ms * 8)
	ch.vars.set("playback_last_offset_pos", samples)
	ch.vars.set("playback_seconds", i64(ms/1000))
	ch.vars.set("playback_ms", i64(ms))
	ch.vars.set("playback_samples", samples)
}

// pagd is a running play_and_get_digits: "min max tries timeout
// terminators prompt invalid_prompt var regex [digit_timeout]".
type pagd struct {
	min, max, tries int
	timeout         time.Duration
	digitTimeout    time.Duration
	terminators     string
	prompt, invalid string
	varName         string
	re              *regexp.Regexp
	badRegex        bool
	try             int
	phase           int // pgPrompt, pgCollect, pgInvalid
	phaseStart      time.Time
	phaseLength     time.Duration
	digits          []byte
}

const (
	pgPrompt = iota
	pgCollect
	pgInvalid
)

// startPAGD parses the arguments and plays the first prompt; false means
// the arguments were unusable and the application ends at once.
func (s *Sim) startPAGD(ch *channel, run *appRun) bool {
	a := separate(run.data, ' ', 11)
	if len(a) < 6 {
		return false
	}
	p := &pagd{min: leadingInt(a[0]), max: leadingInt(a[1]), tries: max(leadingInt(a[2]), 1),
		timeout: time.Duration(leadingInt(a[3])) * time.Millisecond, terminators: a[4], prompt: a[5]}
	if len(a) > 6 {
		p.invalid = a[6]
	}
	if len(a) > 7 {
		p.varName = a[7]
	}
	if len(a) > 8 && a[8] != "" {
		p.re, _ = regexp.Compile(a[8])
		p.badRegex = p.re == nil
	}
	p.digitTimeout = p.timeout
	if len(a) > 9 {
		if d := leadingInt(a[9]); d > 0 {
			p.digitTimeout = time.Duration(d) * time.Millisecond
		}
	}
	if p.max < 1 {
		p.max = 1
	}
	run.pg = p
	s.pagdTry(ch, run)
	return true
}

func (s *Sim) pagdTry(ch *channel, run *appRun) {
	p := run.pg
	p.phase, p.phaseStart, p.phaseLength = pgPrompt, s.now, promptLength(p.prompt)
	p.digits = p.digits[:0]
	if len(ch.dtmfQueue) > 0 || p.phaseLength == 0 {
		s.pagdCollect(ch, run)
		return
	}
	s.schedule(ch, p.phaseLength, func() { s.pagdCollect(ch, run) })
}

// pagdCollect ends the prompt (played in full, or cut short by a digit) and
// waits for digits.
func (s *Sim) pagdCollect(ch *channel, run *appRun) {
	p := run.pg
	ch.stopTimer()
	setPlaybackVars(ch, min(s.now.Sub(p.phaseStart), p.phaseLength))
	p.phase, p.phaseStart = pgCollect, s.now
	s.pagdDigits(ch, run)
}

// pagdDigits consumes queued digits (each one a DTMF event) and decides
// whether input is complete.
func (s *Sim) pagdDigits(ch *channel, run *appRun) {
	p := run.pg
	switch p.phase {
	case pgPrompt:
		s.pagdCollect(ch, run)
		return
	case pgInvalid:
		return // the invalid prompt does not listen; digits wait for the next try
	}
	done := false
	for len(ch.dtmfQueue) > 0 && !done {
		d := ch.dtmfQueue[0]
		ch.dtmfQueue = ch.dtmfQueue[1:]
		ch.digitsDialed = append(ch.digitsDialed, d)
		source := "UNKNOWN"
		if ch.isSIP() {
			source = "RTP"
		}
		s.emitChannel(ch, "DTMF", "DTMF-Digit", string(d), "DTMF-Duration", "2000", "DTMF-Source", source)
		if strings.IndexByte(p.terminators, d) >= 0 {
			done = true
			break
		}
		p.digits = append(p.digits, d)
		done = len(p.digits) >= p.max
	}
	if done {
		s.pagdEvaluate(ch, run)
		return
	}
	wait := p.timeout
	if len(p.digits) > 0 {
		wait = p.digitTimeout
	}
	s.schedule(ch, wait, func() { s.pagdEvaluate(ch, run) })
}

func (s *Sim) pagdEvaluate(ch *channel, run *appRun) {
	p := run.pg
	ch.stopTimer()
	input := string(p.digits)
	ok := len(p.digits) >= p.min && !p.badRegex && (p.re == nil || p.re.MatchString(input))
	if ok {
		ch.vars.set("read_result", "success")
		if p.varName != "" {
			ch.vars.set(p.varName, input)
		}
		s.finish(ch, run)
		return
	}
	ch.vars.set("read_result", "failure")
	p.try++
	p.phase, p.phaseStart, p.phaseLength = pgInvalid, s.now, promptLength(p.invalid)
	next := func() {
		if p.invalid != "" {
			setPlaybackVars(ch, p.phaseLength)
		}
		if p.try < p.tries {
			s.pagdTry(ch, run)
			return
		}
		s.finish(ch, run)
	}
	if p.phaseLength == 0 {
		next()
		return
	}
	s.schedule(ch, p.phaseLength, next)
}

// pagdAbort records an interrupted play_and_get_digits as failed.
func (s *Sim) pagdAbort(ch *channel, run *appRun) {
	p := run.pg
	if p.phase != pgCollect {
		setPlaybackVars(ch, min(s.now.Sub(p.phaseStart), p.phaseLength))
	}
	ch.vars.set("read_result", "failure")
}
