package asterisk

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/callgate/callgate/controller"
)

// Recording both directions
//
// Asterisk cannot record a channel that is in a bridge (README), and a
// channel recording holds one direction only. So Record(start) creates two
// snoop channels on the call (spy=in: what the callee sends; spy=out: what
// callgate plays), each entering the app, and records each one (POST
// /channels/{snoop}/record, wav). Record(stop), or the end of the call,
// stops both, downloads the two mono files (GET
// /recordings/stored/{name}/file), interleaves them into one stereo WAV at
// the path asked for (left = callee, right = callgate; the shorter padded
// with silence), deletes the stored recordings and the snoops, and delivers
// EventRecordStop through the inbox. mask/unmask mute both recordings (POST
// and DELETE /recordings/live/{name}/mute): Asterisk then records silence.
// The path is a local path of callgate's (its spool), not the switch's.

type recLeg struct {
	spy   string // in or out
	snoop string // snoop channel id
	name  string // recording name
	done  bool
	err   error
}

type recSession struct {
	call  controller.CallID
	path  string
	st    *step
	legs  [2]*recLeg
	once  sync.Once
	start time.Time
}

var recPathRE = regexp.MustCompile(`^/[A-Za-z0-9/._-]{1,511}$`)

// Record applies action to the call's recording at path. Returns EINVALID
// for a bad path or action, ECONFLICT for a second start or an action on a
// call without a recording, ErrHungUp if the call hung up.
func (s *Switch) Record(ctx context.Context, id controller.CallID, action controller.RecordAction, path string) error {
	if !idRE.MatchString(string(id)) {
		return controller.FieldError("call_id", "must be 1-128 letters, digits, . _ or -")
	}
	if !recPathRE.MatchString(path) || strings.Contains(path, "..") {
		return controller.FieldError("path", "must be an absolute path of letters, digits and /._-")
	}
	switch action {
	case controller.RecordStart:
		return s.recordStart(ctx, id, path)
	case controller.RecordStop, controller.RecordMask, controller.RecordUnmask:
	default:
		return controller.FieldError("action", "must be start, stop, mask or unmask")
	}
	s.media.mu.Lock()
	rec := s.media.recs[id]
	if rec != nil && rec.path != path {
		rec = nil
	}
	if rec != nil && action == controller.RecordStop {
		delete(s.media.recs, id)
	}
	s.media.mu.Unlock()
	if rec == nil {
		if s.media.isDown(id) {
			return fmt.Errorf("recording call %s: %w", id, controller.ErrHungUp)
		}
		return controller.Errorf(controller.ECONFLICT, "call %s has no recording at that path", id)
	}
	if action == controller.RecordStop {
		return s.finishRecording(ctx, rec)
	}
	method := "POST"
	if action == controller.RecordUnmask {
		method = "DELETE"
	}
	for _, l := range rec.legs {
		if err := s.rest.do(ctx, string(action), method, "/recordings/live/"+url.PathEscape(l.name)+"/mute", nil, nil); err != nil {
			return s.stepError(id, "recording ("+string(action)+")", err)
		}
	}
	return nil
}

func (s *Switch) recordStart(ctx context.Context, id controller.CallID, path string) error {
	st, err := s.beginStep(id, false)
	if err != nil {
		return fmt.Errorf("recording call %s: %w", id, err)
	}
	rec := &recSession{call: id, path: path, st: st, start: time.Now()}
	s.media.mu.Lock()
	if s.media.recs[id] != nil {
		s.media.mu.Unlock()
		s.media.end(st)
		return controller.Errorf(controller.ECONFLICT, "call %s is already being recorded", id)
	}
	s.media.recs[id] = rec
	s.media.mu.Unlock()
	fail := func(err error) error {
		s.media.mu.Lock()
		if s.media.recs[id] == rec {
			delete(s.media.recs, id)
		}
		s.media.mu.Unlock()
		s.cleanup(context.WithoutCancel(ctx), rec)
		return err
	}
	for i, spy := range []string{"in", "out"} {
		l := &recLeg{spy: spy, snoop: newID("cgsnoop"), name: newID("cgrec")}
		rec.legs[i] = l
		s.media.bind(st, l.snoop)
		s.media.bind(st, l.name)
		err := s.rest.do(ctx, "snoop", "POST", "/channels/"+url.PathEscape(string(id))+"/snoop",
			url.Values{"spy": {spy}, "app": {s.cfg.App}, "snoopId": {l.snoop}}, nil)
		if err != nil {
			return fail(s.stepError(id, "recording", err))
		}
		if err := s.await(ctx, st, func(e *event) bool { return e.Type == evStasisStart && e.Channel.ID == l.snoop }); err != nil {
			return fail(fmt.Errorf("recording call %s: %w", id, err))
		}
		err = s.rest.do(ctx, "record", "POST", "/channels/"+url.PathEscape(l.snoop)+"/record",
			url.Values{"name": {l.name}, "format": {"wav"}, "ifExists": {"fail"}, "beep": {"false"},
				"maxDurationSeconds": {"0"}, "maxSilenceSeconds": {"0"}, "terminateOn": {"none"}}, nil)
		if err != nil {
			return fail(s.stepError(id, "recording", err))
		}
	}
	s.disp.push(inboxItem{synthetic: &controller.ChannelEvent{Switch: s.cfg.Name, CallID: id,
		Kind: controller.EventRecordStart, Name: "RecordingStarted", At: time.Now().UTC(), RecordPath: path}})
	return nil
}

// await waits for an object event matching ok; ErrHungUp or EUNAVAILABLE
// when the call or the link goes first. Other events are dropped.
func (s *Switch) await(ctx context.Context, st *step, ok func(*event) bool) error {
	for {
		e, _, err := st.next(ctx, nil)
		if err != nil {
			return err
		}
		switch {
		case e.kind == stepHungUp || e.kind == stepLinkLost:
			return e.err
		case e.kind == stepObject && ok(&e.ev):
			return nil
		}
	}
}

// finishInBackground finishes the recording of a call that ended.
func (s *Switch) finishInBackground(rec *recSession) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		s.cleanup(context.Background(), rec)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.ctx, 4*s.cfg.RequestTimeout+30*time.Second)
		defer cancel()
		if err := s.finishRecording(ctx, rec); err != nil {
			s.log.Warn("finishing the recording of an ended call", "call_id", rec.call, "err", err)
		}
	}()
}

// finishRecording stops, downloads, merges and cleans up; once per session.
func (s *Switch) finishRecording(ctx context.Context, rec *recSession) (err error) {
	err = errors.New("recording already finished")
	rec.once.Do(func() { err = s.finish2(ctx, rec) })
	return err
}

func (s *Switch) finish2(ctx context.Context, rec *recSession) error {
	defer s.cleanup(context.WithoutCancel(ctx), rec)
	for _, l := range rec.legs {
		_ = s.rest.do(ctx, "stop recording", "POST", "/recordings/live/"+url.PathEscape(l.name)+"/stop", nil, nil)
	}
	// Wait for both RecordingFinished (or Failed); the call's hangup does
	// not end this wait: the recordings finish when their snoops go.
	for !(rec.legs[0].done && rec.legs[1].done) {
		e, _, err := rec.st.next(ctx, nil)
		if err != nil {
			return fmt.Errorf("finishing the recording of call %s: %w", rec.call, err)
		}
		if e.kind == stepLinkLost {
			return fmt.Errorf("finishing the recording of call %s: %w", rec.call, e.err)
		}
		if e.kind != stepObject {
			continue
		}
		for _, l := range rec.legs {
			if e.ev.Recording.Name == l.name && (e.ev.Type == evRecordingFinished || e.ev.Type == evRecordingFailed) {
				l.done = true
				if e.ev.Type == evRecordingFailed {
					l.err = fmt.Errorf("recording %s failed: %s", l.spy, e.ev.Recording.Cause)
				}
			}
		}
	}
	var pcm [2][]byte
	rate := uint32(8000)
	for i, l := range rec.legs {
		if l.err != nil {
			continue // that direction stays silent
		}
		var buf bytes.Buffer
		if _, err := s.rest.raw(ctx, "download recording", "GET", "/recordings/stored/"+url.PathEscape(l.name)+"/file", nil, nil, &buf); err != nil {
			return fmt.Errorf("downloading the recording of call %s: %w", rec.call, asController(s.cfg.Name, err))
		}
		data, r, err := monoPCM(buf.Bytes())
		if err != nil {
			return fmt.Errorf("recording of call %s: %w", rec.call, err)
		}
		pcm[i] = data
		if i == 0 || pcm[0] == nil {
			rate = r
		}
	}
	ms, err := writeStereo(rec.path, pcm[0], pcm[1], rate)
	if err != nil {
		return fmt.Errorf("writing the recording of call %s: %w", rec.call, err)
	}
	s.disp.push(inboxItem{synthetic: &controller.ChannelEvent{Switch: s.cfg.Name, CallID: rec.call,
		Kind: controller.EventRecordStop, Name: "RecordingFinished", At: time.Now().UTC(),
		RecordPath: rec.path, RecordMS: ms}})
	return nil
}

// cleanup hangs up the snoops and deletes the stored recordings; errors
// (404 for what is already gone) are ignored.
func (s *Switch) cleanup(ctx context.Context, rec *recSession) {
	for _, l := range rec.legs {
		if l == nil {
			continue
		}
		_ = s.rest.do(ctx, "hang up snoop", "DELETE", "/channels/"+url.PathEscape(l.snoop), nil, nil)
		_ = s.rest.do(ctx, "delete recording", "DELETE", "/recordings/stored/"+url.PathEscape(l.name), nil, nil)
	}
	s.media.end(rec.st)
}

// monoPCM returns the 16-bit samples and rate of a mono PCM WAV. A
// header-only file (README: a callee that sends no media) has no samples.
func monoPCM(b []byte) ([]byte, uint32, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, 0, errors.New("not a WAV file")
	}
	var rate uint32
	fmtOK := false
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), int(binary.LittleEndian.Uint32(b[p+4:p+8]))
		body := b[p+8:]
		if size < 0 || size > len(body) {
			size = len(body) // a file whose size fields were not finalised
		}
		switch id {
		case "fmt ":
			if size < 16 || binary.LittleEndian.Uint16(body[0:2]) != 1 || binary.LittleEndian.Uint16(body[2:4]) != 1 ||
				binary.LittleEndian.Uint16(body[14:16]) != 16 {
				return nil, 0, errors.New("WAV is not 16-bit mono PCM")
			}
			rate, fmtOK = binary.LittleEndian.Uint32(body[4:8]), true
		case "data":
			if !fmtOK {
				return nil, 0, errors.New("WAV data before its format")
			}
			return body[:size&^1], rate, nil
		}
		p += 8 + size + size&1
	}
	if !fmtOK {
		return nil, 0, errors.New("WAV without a format")
	}
	return nil, rate, nil
}

// writeStereo interleaves left and right (16-bit mono) into a stereo WAV at
// path, written to a temporary file first and renamed. It returns the
// length in ms.
func writeStereo(path string, left, right []byte, rate uint32) (int64, error) {
	if rate == 0 {
		rate = 8000
	}
	n := max(len(left), len(right)) / 2
	data := make([]byte, 44+n*4)
	copy(data[0:], "RIFF")
	binary.LittleEndian.PutUint32(data[4:], uint32(36+n*4))
	copy(data[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(data[16:], 16)
	binary.LittleEndian.PutUint16(data[20:], 1)
	binary.LittleEndian.PutUint16(data[22:], 2)
	binary.LittleEndian.PutUint32(data[24:], rate)
	binary.LittleEndian.PutUint32(data[28:], rate*4)
	binary.LittleEndian.PutUint16(data[32:], 4)
	binary.LittleEndian.PutUint16(data[34:], 16)
	copy(data[36:], "data")
	binary.LittleEndian.PutUint32(data[40:], uint32(n*4))
	out := data[44:]
	for i := 0; i < n; i++ {
		if 2*i+1 < len(left) {
			out[4*i], out[4*i+1] = left[2*i], left[2*i+1]
		}
		if 2*i+1 < len(right) {
			out[4*i+2], out[4*i+3] = right[2*i], right[2*i+1]
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cgrec-*")
	if err != nil {
		return 0, err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return 0, err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return 0, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return 0, err
	}
	return int64(n) * 1000 / int64(rate), nil
}
