package switchsim

import (
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/callgate/callgate/controller/audio"
)

// ---------------------------------------------------------------- playbacks

type ariPlayback struct {
	id        string
	media     string
	targetURI string
	ch        *ariChan
	br        *ariBridge
	state     string // queued, playing, done, failed
	timer     Timer
}

func (p *ariPlayback) json() jobj {
	return jobj{{"id", p.id}, {"media_uri", p.media}, {"target_uri", p.targetURI}, {"language", "en"}, {"state", p.state}}
}

// sendPlayback delivers a playback event to whoever sees its target.
func (s *Sim) sendPlayback(p *ariPlayback, typ string) {
	ev := jobj{{"type", typ}, {"timestamp", s.ariTime(s.now)}, {"playback", p.json()}}
	if p.ch != nil {
		if p.ch.inStasis || p.ch.subscribed {
			s.ariSend(p.ch.app, ev)
		}
		return
	}
	if p.br != nil {
		for _, app := range p.br.appList() {
			s.ariSend(app, append(jobj(nil), ev...))
		}
	}
}

// mediaLength is how long a media URI plays; ok false means it fails;
// forever for tones.
func (s *Sim) mediaLength(media string) (d time.Duration, ok, forever bool) {
	scheme, rest, _ := strings.Cut(media, ":")
	switch scheme {
	case "tone":
		return 0, true, true
	case "sound":
		if strings.HasPrefix(rest, "/") {
			for _, p := range []string{rest, rest + ".wav"} {
				if f, err := audio.ParseWAVFile(p); err == nil {
					return f.Duration(), true, false
				}
			}
		}
		if rest == "hello-world" {
			return 1400 * time.Millisecond, true, false
		}
		return time.Second, rest != "", false
	case "recording":
		if f, err := audio.ParseWAVFile(s.storedPath(rest, "wav")); err == nil {
			return f.Duration(), true, false
		}
		return 0, false, false
	case "digits", "number", "characters":
		n := len(rest)
		if n == 0 {
			return 0, false, false
		}
		return time.Duration(n) * 500 * time.Millisecond, true, false
	}
	return 0, false, false
}

func (s *Sim) ariPlayChannel(q *ariReq, v []string) {
	s.lock()
	defer s.unlock()
	ch := s.ariStasisChan(q, v[0])
	if ch == nil {
		return
	}
	id := q.get("playbackId")
	if len(v) > 1 {
		id = v[1]
	}
	s.startPlayback(q, id, ch, nil)
}

func (s *Sim) ariPlayBridge(q *ariReq, v []string) {
	s.lock()
	defer s.unlock()
	br := s.ari.bridges[v[0]]
	if br == nil {
		ariMessage(q.w, http.StatusNotFound, "Bridge not found")
		return
	}
	id := q.get("playbackId")
	if len(v) > 1 {
		id = v[1]
	}
	s.startPlayback(q, id, nil, br)
}

func (s *Sim) startPlayback(q *ariReq, id string, ch *ariChan, br *ariBridge) {
	media := q.multi["media"]
	if len(media) == 0 || media[0] == "" {
		if m := q.get("media"); m != "" {
			media = []string{m}
		} else {
			ariMessage(q.w, http.StatusBadRequest, "media parameter is required")
			return
		}
	}
	if id == "" {
		id = newUUID()
	}
	if s.ari.playback[id] != nil {
		ariMessage(q.w, http.StatusConflict, "A playback with the same ID already exists")
		return
	}
	p := &ariPlayback{id: id, media: media[0], ch: ch, br: br, state: "queued"}
	if ch != nil {
		p.targetURI = "channel:" + ch.id
	} else {
		p.targetURI = "bridge:" + br.id
	}
	s.ari.playback[id] = p
	var queue *[]*ariPlayback
	if ch != nil {
		queue = &ch.plays
	} else {
		queue = &br.plays
	}
	*queue = append(*queue, p)
	// The reply is the playback as queued; it starts right after (in
	// Asterisk the two race: the capture shows "queued" and "playing").
	resp := p.json()
	if len(*queue) == 1 {
		s.beginPlayback(p)
	}
	ariReply(q.w, http.StatusCreated, resp, "Location", "/ari/playbacks/"+id)
}

func (s *Sim) beginPlayback(p *ariPlayback) {
	d, ok, forever := s.mediaLength(p.media)
	p.state = "playing"
	s.sendPlayback(p, "PlaybackStarted")
	if !ok {
		s.queue(func() {
			if p.state == "playing" {
				s.finishPlayback(p, "failed")
			}
		})
		return
	}
	if p.ch != nil && p.ch.call != nil && p.ch.call.a == p.ch {
		s.ariCalleeHearsMedia(p.ch.call, 20*time.Millisecond)
		s.ariUpdateMedia(p.ch.call)
	}
	if !forever {
		p.timer = s.afterFunc(d, func() {
			if p.state == "playing" {
				s.finishPlayback(p, "done")
			}
		})
	}
}

// finishPlayback ends p (playing or queued) and starts the next one.
func (s *Sim) finishPlayback(p *ariPlayback, state string) {
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	wasPlaying := p.state == "playing"
	delete(s.ari.playback, p.id)
	var queue *[]*ariPlayback
	if p.ch != nil {
		queue = &p.ch.plays
	} else {
		queue = &p.br.plays
	}
	for i, x := range *queue {
		if x == p {
			*queue = append((*queue)[:i:i], (*queue)[i+1:]...)
			break
		}
	}
	p.state = state
	s.sendPlayback(p, "PlaybackFinished")
	if p.ch != nil && p.ch.call != nil {
		s.ariUpdateMedia(p.ch.call)
	}
	if wasPlaying && len(*queue) > 0 && (p.ch == nil || !p.ch.hungup) {
		s.beginPlayback((*queue)[0])
	}
}

func (s *Sim) ariGetPlayback(q *ariReq, v []string) {
	s.lock()
	p := s.ari.playback[v[0]]
	var body jobj
	if p != nil {
		body = p.json()
	}
	s.unlock()
	if p == nil {
		ariMessage(q.w, http.StatusNotFound, "Playback not found")
		return
	}
	ariReply(q.w, http.StatusOK, body)
}

func (s *Sim) ariStopPlayback(q *ariReq, v []string) {
	s.lock()
	defer s.unlock()
	p := s.ari.playback[v[0]]
	if p == nil {
		ariMessage(q.w, http.StatusNotFound, "Playback not found")
		return
	}
	s.finishPlayback(p, "done")
	ariReply(q.w, http.StatusNoContent, nil)
}

func (s *Sim) ariControlPlayback(q *ariReq, v []string) {
	s.lock()
	defer s.unlock()
	p := s.ari.playback[v[0]]
	if p == nil {
		ariMessage(q.w, http.StatusNotFound, "Playback not found")
		return
	}
	switch q.get("operation") {
	case "restart", "pause", "unpause", "reverse", "forward":
	case "":
		ariMessage(q.w, http.StatusBadRequest, "operation parameter is required")
		return
	default:
		ariMessage(q.w, http.StatusBadRequest, "Invalid operation parameter")
		return
	}
	ariReply(q.w, http.StatusNoContent, nil)
}

// ---------------------------------------------------------------- DTMF from the app

func (s *Sim) ariSendDTMF(q *ariReq, v []string) {
	digits := q.get("dtmf")
	if digits == "" {
		ariMessage(q.w, http.StatusBadRequest, "DTMF is required")
		return
	}
	s.lock()
	defer s.unlock()
	ch := s.ariStasisChan(q, v[0])
	if ch == nil {
		return
	}
	before := time.Duration(q.intParam("before", 0)) * time.Millisecond
	between := time.Duration(q.intParam("between", 100)) * time.Millisecond
	dur := time.Duration(q.intParam("duration", 100)) * time.Millisecond
	ariReply(q.w, http.StatusNoContent, nil)
	c := ch.call
	if c == nil || c.a != ch {
		return // snoop or a SIP far end: nobody to hear it
	}
	s.ariCalleeHearsMedia(c, before+100*time.Millisecond)
	var send func(i int)
	send = func(i int) {
		if i >= len(digits) || ch.hungup {
			ch.dtmfTimer = nil
			return
		}
		ch.dtmfTimer = s.afterFunc(dur, func() {
			if ch.hungup {
				return
			}
			b := c.b
			if !b.hungup && b.kind == ariLocal2 {
				s.evDTMF(b, string(digits[i]), int(dur/time.Millisecond))
				if b.echo {
					s.evDTMF(ch, string(digits[i]), int(dur/time.Millisecond))
				}
			}
			ch.dtmfTimer = s.afterFunc(between, func() { send(i + 1) })
		})
	}
	ch.dtmfTimer = s.afterFunc(before+100*time.Millisecond, func() { send(0) })
}

// ---------------------------------------------------------------- recordings

type ariRecording struct {
	name, format string
	targetURI    string
	ch           *ariChan
	br           *ariBridge
	start        time.Time
	state        string // queued, recording, paused
	max          time.Duration
	terminateOn  string
	paused       ivList
	muted        ivList
	timer        Timer
	due          time.Time
}

func (r *ariRecording) json() jobj {
	return jobj{{"name", r.name}, {"format", r.format}, {"state", r.state}, {"target_uri", r.targetURI}}
}

func (r *ariRecording) terminates(digit string) bool {
	switch r.terminateOn {
	case "", "none":
		return false
	case "any":
		return true
	}
	return strings.Contains(r.terminateOn, digit)
}

// source is the media the recording hears.
func (r *ariRecording) source() *ivList {
	if r.br != nil {
		return &r.br.media
	}
	return &r.ch.media
}

func (s *Sim) sendRecording(r *ariRecording, typ string, extra ...jkv) {
	body := append(r.json(), extra...)
	ev := jobj{{"type", typ}, {"timestamp", s.ariTime(s.now)}, {"recording", body}}
	if r.ch != nil {
		s.ariSend(r.ch.app, ev)
		return
	}
	for _, app := range r.br.appList() {
		s.ariSend(app, append(jobj(nil), ev...))
	}
}

// storedPath is where a stored recording's file lives.
func (s *Sim) storedPath(name, format string) string {
	return filepath.Join(s.ari.recDir, filepath.FromSlash(name)+"."+format)
}

func validRecordingName(name string) bool {
	if name == "" || strings.HasPrefix(name, "/") {
		return false
	}
	for _, p := range strings.Split(name, "/") {
		if p == ".." || p == "" {
			return false
		}
	}
	return true
}

// recordParams validates a record request; false when it answered.
func (s *Sim) recordParams(q *ariReq) (*ariRecording, bool) {
	name, format := q.get("name"), q.get("format")
	if name == "" {
		ariMessage(q.w, http.StatusBadRequest, "Recording name is required")
		return nil, false
	}
	if format == "" {
		ariMessage(q.w, http.StatusBadRequest, "Recording format is required")
		return nil, false
	}
	if !validRecordingName(name) {
		ariMessage(q.w, http.StatusBadRequest, "Invalid recording name")
		return nil, false
	}
	if format != "wav" {
		ariMessage(q.w, http.StatusUnprocessableEntity, "Recording format not supported")
		return nil, false
	}
	switch q.get("ifExists") {
	case "", "fail", "overwrite", "append":
	default:
		ariMessage(q.w, http.StatusBadRequest, "ifExists invalid")
		return nil, false
	}
	switch t := q.get("terminateOn"); t {
	case "", "none", "any", "*", "#":
	default:
		ariMessage(q.w, http.StatusBadRequest, "terminateOn invalid")
		return nil, false
	}
	if s.ari.live[name] != nil {
		ariMessage(q.w, http.StatusConflict, "Recording with the same name already in progress")
		return nil, false
	}
	if ie := q.get("ifExists"); ie == "" || ie == "fail" {
		if _, err := os.Stat(s.storedPath(name, format)); err == nil {
			ariMessage(q.w, http.StatusConflict, "Recording with the same name already exists on the system")
			return nil, false
		}
	}
	r := &ariRecording{name: name, format: format, start: s.now, state: "recording",
		max: time.Duration(q.intParam("maxDurationSeconds", 0)) * time.Second, terminateOn: q.get("terminateOn")}
	return r, true
}

func (s *Sim) ariRecordChannel(q *ariReq, v []string) {
	s.lock()
	defer s.unlock()
	ch := s.ariStasisChan(q, v[0])
	if ch == nil {
		return
	}
	r, ok := s.recordParams(q)
	if !ok {
		return
	}
	r.ch, r.targetURI = ch, "channel:"+ch.id
	loc := []string{"Location", "/ari/recordings/live/" + r.name}
	if ch.bridge != nil {
		r.state = "queued"
		ariReply(q.w, http.StatusCreated, r.json(), loc...)
		s.queue(func() {
			r.state = "failed"
			s.sendRecording(r, "RecordingFailed", jkv{"cause", "Cannot record channel while in bridge"})
		})
		return
	}
	s.ari.live[r.name] = r
	ch.recs = append(ch.recs, r)
	s.sendRecording(r, "RecordingStarted")
	s.scheduleRecordingEnd(r)
	ariReply(q.w, http.StatusCreated, r.json(), loc...)
}

func (s *Sim) ariRecordBridge(q *ariReq, v []string) {
	s.lock()
	defer s.unlock()
	br := s.ari.bridges[v[0]]
	if br == nil {
		ariMessage(q.w, http.StatusNotFound, "Bridge not found")
		return
	}
	r, ok := s.recordParams(q)
	if !ok {
		return
	}
	r.br, r.targetURI = br, "bridge:"+br.id
	r.state = "queued"
	s.ari.live[r.name] = r
	br.recs = append(br.recs, r)
	resp := r.json()
	// A Recorder channel joins the bridge, then the recording starts.
	rec := fmt.Sprintf("Recorder/ARI-%08x;2", s.ari.localSeq)
	s.ari.localSeq++
	br.recorders = append(br.recorders, rec)
	for _, m := range br.members {
		s.updateBridgePeer(br, m)
	}
	r.state = "recording"
	s.sendRecording(r, "RecordingStarted")
	s.scheduleRecordingEnd(r)
	ariReply(q.w, http.StatusCreated, resp, "Location", "/ari/recordings/live/"+r.name)
}

// scheduleRecordingEnd (re)arms the maximum-duration stop. A channel
// recording that hears no media stops maxDuration+1.1 s after it began
// with duration 0 (as captured); once media flows it stops maxDuration
// +0.25 s after the first frame. A bridge recording stops maxDuration
// +0.13 s after it began.
func (s *Sim) scheduleRecordingEnd(r *ariRecording) {
	if r.max <= 0 {
		return
	}
	var due time.Time
	if r.br != nil {
		due = r.start.Add(r.max + 130*time.Millisecond)
	} else if first, ok := firstAfter(r.source(), r.start); ok {
		due = first.Add(r.max + 250*time.Millisecond)
	} else {
		due = r.start.Add(r.max + 1100*time.Millisecond)
	}
	if r.timer != nil && due.Equal(r.due) {
		return
	}
	if r.timer != nil {
		r.timer.Stop()
	}
	r.due = due
	d := due.Sub(s.now)
	if d < 0 {
		d = 0
	}
	var t Timer
	t = s.afterFunc(d, func() {
		if r.timer != t {
			return
		}
		r.timer = nil
		s.finishARIRecording(r, "done")
	})
	r.timer = t
}

// firstAfter is when media was first on at or after t.
func firstAfter(l *ivList, t time.Time) (time.Time, bool) {
	for _, iv := range l.done {
		if iv[1].After(t) {
			if iv[0].Before(t) {
				return t, true
			}
			return iv[0], true
		}
	}
	if l.on {
		if l.since.Before(t) {
			return t, true
		}
		return l.since, true
	}
	return time.Time{}, false
}

// finishARIRecording stops r: the file is written (state done) or dropped
// (canceled), then RecordingFinished. Caller holds s.mu.
func (s *Sim) finishARIRecording(r *ariRecording, state string) {
	if s.ari.live[r.name] != r {
		return
	}
	delete(s.ari.live, r.name)
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	if r.ch != nil {
		r.ch.recs = removeRec(r.ch.recs, r)
	} else {
		r.br.recs = removeRec(r.br.recs, r)
	}
	r.paused.set(false, s.now)
	r.muted.set(false, s.now)
	heard := measure(r.start, s.now, r.source(), &r.paused)
	file := measure(r.start, s.now, r.source(), &r.paused, &r.muted)
	var dur int
	if r.br != nil {
		dur = int(math.Round(heard.Seconds()))
	} else {
		dur = int(heard / time.Second)
	}
	if r.max > 0 && dur > int(r.max/time.Second) {
		dur = int(r.max / time.Second)
	}
	path := s.storedPath(r.name, r.format)
	if state == "canceled" {
		_ = os.Remove(path)
	} else if err := writeARIRecording(path, file); err != nil {
		s.log.Error("switchsim: writing ARI recording", "path", path, "err", err)
	}
	r.state = state
	s.sendRecording(r, "RecordingFinished", jkv{"duration", dur})
}

func removeRec(l []*ariRecording, r *ariRecording) []*ariRecording {
	for i, x := range l {
		if x == r {
			return append(l[:i:i], l[i+1:]...)
		}
	}
	return l
}

// writeARIRecording writes an 8 kHz mono 16-bit WAV holding d of a 440 Hz
// tone (what was heard; paused and muted time left out).
func writeARIRecording(path string, d time.Duration) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".rec-*")
	if err != nil {
		return err
	}
	werr := audio.WriteToneWAV(tmp, audio.Format{Channels: 1, SampleRate: 8000}, d, []float64{440})
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
		return werr
	}
	return os.Rename(tmp.Name(), path)
}

func (s *Sim) liveRec(q *ariReq, name string) *ariRecording {
	r := s.ari.live[name]
	if r == nil {
		ariMessage(q.w, http.StatusNotFound, "Recording not found")
	}
	return r
}

func (s *Sim) ariGetLive(q *ariReq, v []string) {
	s.lock()
	defer s.unlock()
	if r := s.liveRec(q, v[0]); r != nil {
		ariReply(q.w, http.StatusOK, r.json())
	}
}

func (s *Sim) ariStopLive(q *ariReq, v []string) {
	s.lock()
	defer s.unlock()
	if r := s.liveRec(q, v[0]); r != nil {
		s.finishARIRecording(r, "done")
		ariReply(q.w, http.StatusNoContent, nil)
	}
}

func (s *Sim) ariCancelLive(q *ariReq, v []string) {
	s.lock()
	defer s.unlock()
	if r := s.liveRec(q, v[0]); r != nil {
		s.finishARIRecording(r, "canceled")
		ariReply(q.w, http.StatusNoContent, nil)
	}
}

func (s *Sim) ariPauseLive(q *ariReq, v []string) {
	s.lock()
	defer s.unlock()
	if r := s.liveRec(q, v[0]); r != nil {
		on := q.r.Method == http.MethodPost
		r.paused.set(on, s.now)
		if on {
			r.state = "paused"
		} else {
			r.state = "recording"
		}
		ariReply(q.w, http.StatusNoContent, nil)
	}
}

func (s *Sim) ariMuteLive(q *ariReq, v []string) {
	s.lock()
	defer s.unlock()
	if r := s.liveRec(q, v[0]); r != nil {
		r.muted.set(q.r.Method == http.MethodPost, s.now)
		ariReply(q.w, http.StatusNoContent, nil)
	}
}

// storedName turns a request path segment into a stored name; "" if it
// is not one.
func (s *Sim) storedExists(name string) bool {
	if !validRecordingName(name) {
		return false
	}
	_, err := os.Stat(s.storedPath(name, "wav"))
	return err == nil
}

func (s *Sim) ariListStored(q *ariReq, _ []string) {
	s.lock()
	dir := s.ari.recDir
	s.unlock()
	var names []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".wav") || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		names = append(names, filepath.ToSlash(strings.TrimSuffix(rel, ".wav")))
		return nil
	})
	sort.Strings(names)
	out := []jobj{}
	for _, n := range names {
		out = append(out, jobj{{"name", n}, {"format", "wav"}})
	}
	ariReply(q.w, http.StatusOK, out)
}

func (s *Sim) ariGetStored(q *ariReq, v []string) {
	s.lock()
	ok := s.storedExists(v[0])
	s.unlock()
	if !ok {
		ariMessage(q.w, http.StatusNotFound, "Recording not found")
		return
	}
	ariReply(q.w, http.StatusOK, jobj{{"name", v[0]}, {"format", "wav"}})
}

func (s *Sim) ariDeleteStored(q *ariReq, v []string) {
	s.lock()
	defer s.unlock()
	if !s.storedExists(v[0]) {
		ariMessage(q.w, http.StatusNotFound, "Recording not found")
		return
	}
	_ = os.Remove(s.storedPath(v[0], "wav"))
	ariReply(q.w, http.StatusNoContent, nil)
}

func (s *Sim) ariStoredFile(q *ariReq, v []string) {
	s.lock()
	var b []byte
	var err error = os.ErrNotExist
	if validRecordingName(v[0]) {
		b, err = os.ReadFile(s.storedPath(v[0], "wav"))
	}
	s.unlock()
	if err != nil {
		ariMessage(q.w, http.StatusNotFound, "Recording not found")
		return
	}
	h := q.w.Header()
	h["Server"] = []string{"Asterisk"}
	h["Cache-Control"] = []string{"no-cache, no-store"}
	h["Content-Type"] = []string{"audio/wav"}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	q.w.WriteHeader(http.StatusOK)
	_, _ = q.w.Write(b)
}

// ---------------------------------------------------------------- snoop

func (s *Sim) ariSnoop(q *ariReq, v []string) {
	s.lock()
	defer s.unlock()
	target := s.ari.channels[v[0]]
	if target == nil {
		ariMessage(q.w, http.StatusNotFound, "Channel not found")
		return
	}
	app := q.get("app")
	if app == "" {
		ariMessage(q.w, http.StatusBadRequest, "Application name is required")
		return
	}
	spy, whisper := q.get("spy"), q.get("whisper")
	for _, d := range []string{spy, whisper} {
		switch d {
		case "", "none", "in", "out", "both":
		default:
			ariMessage(q.w, http.StatusBadRequest, "Invalid direction specified")
			return
		}
	}
	if (spy == "" || spy == "none") && (whisper == "" || whisper == "none") {
		ariMessage(q.w, http.StatusBadRequest, "Direction must be specified for at least spy or whisper")
		return
	}
	id := q.get("snoopId")
	if len(v) > 1 {
		id = v[1]
	}
	if id == "" {
		id = s.ariUniqueID()
	}
	if s.ari.channels[id] != nil {
		ariMessage(q.w, http.StatusConflict, "Channel with given unique ID already exists")
		return
	}
	n := s.ari.snoopSeq[target.id]
	s.ari.snoopSeq[target.id] = n + 1
	sn := s.newARIChan(ariSnoop, id, fmt.Sprintf("Snoop/%s-%08x", target.id, n))
	sn.state = "Up"
	sn.context, sn.exten = "default", "s"
	sn.app = app
	sn.snoopOf = target
	sn.spy = spy != "" && spy != "none"
	if sn.spy {
		// A snoop channel is timing-driven: it produces frames (silence
		// if the target hears nothing) from the start.
		sn.media.set(true, s.now)
	}
	target.snoops = append(target.snoops, sn)
	resp := s.chanJSON(sn)
	var args []string
	if a := q.get("appArgs"); a != "" {
		args = strings.Split(a, ",")
	}
	ariReply(q.w, http.StatusOK, resp)
	s.queue(func() {
		if sn.hungup {
			return
		}
		sn.appName, sn.appData = "Stasis", app
		s.evStasisStart(sn, args)
	})
}

// ---------------------------------------------------------------- bridges

type ariBridge struct {
	id, name   string
	typ        string
	created    time.Time
	order      uint64
	members    []*ariChan
	recorders  []string
	apps       map[string]bool
	appOrder   []string
	plays      []*ariPlayback
	recs       []*ariRecording
	media      ivList
	destroyed  bool
	technology string
}

func (b *ariBridge) appList() []string { return b.appOrder }

func (b *ariBridge) addApp(app string) {
	if app == "" || b.apps[app] {
		return
	}
	b.apps[app] = true
	b.appOrder = append(b.appOrder, app)
}

func (s *Sim) bridgeJSON(b *ariBridge) jobj {
	ids := []string{}
	for _, m := range b.members {
		ids = append(ids, m.id)
	}
	tech := "simple_bridge"
	if len(b.members) > 2 || b.typ == "holding" {
		tech = "softmix"
		if b.typ == "holding" {
			tech = "holding_bridge"
		}
	}
	return jobj{{"id", b.id}, {"technology", tech}, {"bridge_type", b.typ}, {"bridge_class", "stasis"},
		{"creator", "Stasis"}, {"name", b.name}, {"channels", ids}, {"creationtime", s.ariTime(b.created)},
		{"video_mode", "talker"}}
}

func (s *Sim) ariBridgesSorted() []*ariBridge {
	out := make([]*ariBridge, 0, len(s.ari.bridges))
	for _, b := range s.ari.bridges {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].order < out[j].order })
	return out
}

func (s *Sim) sendBridge(b *ariBridge, typ string, ch *ariChan) {
	ev := jobj{{"type", typ}, {"timestamp", s.ariTime(s.now)}, {"bridge", s.bridgeJSON(b)}}
	if ch != nil {
		ev = append(ev, jkv{"channel", s.chanJSON(ch)})
	}
	for _, app := range b.appList() {
		s.ariSend(app, append(jobj(nil), ev...))
	}
}

func (s *Sim) ariListBridges(q *ariReq, _ []string) {
	s.lock()
	out := []jobj{}
	for _, b := range s.ariBridgesSorted() {
		out = append(out, s.bridgeJSON(b))
	}
	s.unlock()
	ariReply(q.w, http.StatusOK, out)
}

func (s *Sim) ariGetBridge(q *ariReq, v []string) {
	s.lock()
	b := s.ari.bridges[v[0]]
	var body jobj
	if b != nil {
		body = s.bridgeJSON(b)
	}
	s.unlock()
	if b == nil {
		ariMessage(q.w, http.StatusNotFound, "Bridge not found")
		return
	}
	ariReply(q.w, http.StatusOK, body)
}

func (s *Sim) ariCreateBridge(q *ariReq, v []string) {
	id := q.get("bridgeId")
	if len(v) > 0 {
		id = v[0]
	}
	typ := "mixing"
	for _, t := range strings.Split(q.get("type"), ",") {
		if t == "holding" {
			typ = "holding"
		}
	}
	s.lock()
	defer s.unlock()
	if id == "" {
		id = newUUID()
	}
	if b := s.ari.bridges[id]; b != nil {
		ariMessage(q.w, http.StatusConflict, "Bridge with this id already exists")
		return
	}
	s.ari.order++
	b := &ariBridge{id: id, name: q.get("name"), typ: typ, created: s.now, order: s.ari.order, apps: map[string]bool{}}
	s.ari.bridges[id] = b
	ariReply(q.w, http.StatusOK, s.bridgeJSON(b))
}

func (s *Sim) ariDestroyBridge(q *ariReq, v []string) {
	s.lock()
	defer s.unlock()
	b := s.ari.bridges[v[0]]
	if b == nil {
		ariMessage(q.w, http.StatusNotFound, "Bridge not found")
		return
	}
	ariReply(q.w, http.StatusNoContent, nil)
	for len(b.members) > 0 {
		s.bridgeLeave(b, b.members[0])
	}
	for len(b.recs) > 0 {
		s.finishARIRecording(b.recs[0], "done")
	}
	for len(b.plays) > 0 {
		s.finishPlayback(b.plays[0], "done")
	}
	b.destroyed = true
	delete(s.ari.bridges, b.id)
	s.sendBridge(b, "BridgeDestroyed", nil)
}

// bridgeChannels resolves the channel parameter; false when it answered.
func (s *Sim) bridgeChannels(q *ariReq, b *ariBridge) ([]*ariChan, bool) {
	if b == nil {
		ariMessage(q.w, http.StatusNotFound, "Bridge not found")
		return nil, false
	}
	ids := q.get("channel")
	if ids == "" {
		ariMessage(q.w, http.StatusBadRequest, "Channel parameter is required")
		return nil, false
	}
	var out []*ariChan
	for _, id := range strings.Split(ids, ",") {
		ch := s.ari.channels[id]
		if ch == nil {
			ariMessage(q.w, http.StatusBadRequest, "Channel not found")
			return nil, false
		}
		out = append(out, ch)
	}
	return out, true
}

func (s *Sim) ariAddChannel(q *ariReq, v []string) {
	s.lock()
	defer s.unlock()
	b := s.ari.bridges[v[0]]
	chans, ok := s.bridgeChannels(q, b)
	if !ok {
		return
	}
	for _, ch := range chans {
		if !ch.inStasis {
			ariMessage(q.w, http.StatusUnprocessableEntity, "Channel not in Stasis application")
			return
		}
		if ch.bridge != nil && ch.bridge != b {
			ariMessage(q.w, http.StatusConflict, "Channel is already in a bridge")
			return
		}
	}
	ariReply(q.w, http.StatusNoContent, nil)
	for _, ch := range chans {
		if ch.bridge == b {
			continue
		}
		ch.bridge = b
		b.members = append(b.members, ch)
		b.addApp(ch.app)
		s.sendBridge(b, "ChannelEnteredBridge", ch)
		for _, m := range b.members {
			s.updateBridgePeer(b, m)
		}
		s.bridgeMediaUpdate(b)
	}
}

func (s *Sim) ariRemoveChannel(q *ariReq, v []string) {
	s.lock()
	defer s.unlock()
	b := s.ari.bridges[v[0]]
	chans, ok := s.bridgeChannels(q, b)
	if !ok {
		return
	}
	for _, ch := range chans {
		if ch.bridge != b {
			ariMessage(q.w, http.StatusUnprocessableEntity, "Channel not in this bridge")
			return
		}
	}
	ariReply(q.w, http.StatusNoContent, nil)
	for _, ch := range chans {
		s.bridgeLeave(b, ch)
	}
}

// updateBridgePeer sets BRIDGEPEER on m to the other participants' names
// when there are any (it is not cleared when they leave, as captured).
func (s *Sim) updateBridgePeer(b *ariBridge, m *ariChan) {
	var names []string
	for _, o := range b.members {
		if o != m {
			names = append(names, o.name)
		}
	}
	names = append(names, b.recorders...)
	if len(names) == 0 {
		return
	}
	v := strings.Join(names, ",")
	if m.vars["BRIDGEPEER"] != v {
		s.evVarset(m, "BRIDGEPEER", v)
	}
}

// bridgeLeave takes ch out of b. Caller holds s.mu.
func (s *Sim) bridgeLeave(b *ariBridge, ch *ariChan) {
	if ch.bridge != b {
		return
	}
	if ch.vars["BRIDGEPEER"] != "" {
		s.evVarset(ch, "BRIDGEPEER", "")
	}
	for i, m := range b.members {
		if m == ch {
			b.members = append(b.members[:i:i], b.members[i+1:]...)
			break
		}
	}
	ch.bridge = nil
	s.sendBridge(b, "ChannelLeftBridge", ch)
	s.bridgeMediaUpdate(b)
}

// bridgeMediaUpdate: the bridge hears media while any member does.
func (s *Sim) bridgeMediaUpdate(b *ariBridge) {
	on := false
	for _, m := range b.members {
		if m.media.on {
			on = true
		}
	}
	b.media.set(on, s.now)
}
