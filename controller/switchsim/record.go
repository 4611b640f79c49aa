package switchsim

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/callgate/callgate/controller/audio"
)

// Recordings written under Config.RecordDir: what mod_sndfile writes for
// a default uuid_record, with a tone per channel so the audio is not
// silence.
const (
	recordSampleRate = 8000
	recordLeftHz     = 440
	recordRightHz    = 660
)

// recordFileName returns path relative to dir when path is absolute and
// lies strictly inside dir after cleaning, so a recording may be written
// there; ok is false otherwise (dir empty, a relative path, an escape with
// "..", or dir itself).
func recordFileName(dir, path string) (rel string, ok bool) {
	if dir == "" || !filepath.IsAbs(path) {
		return "", false
	}
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(path))
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", false
	}
	return rel, true
}

// writeRecording writes the file of a recording that just stopped after ms
// milliseconds of (unmasked) audio, when its path is inside RecordDir. A
// failure is logged and otherwise ignored: FreeSWITCH still reports
// RECORD_STOP. Caller holds s.mu.
func (s *Sim) writeRecording(ch *channel, path string, ms int64) {
	rel, ok := recordFileName(s.cfg.RecordDir, path)
	if !ok {
		return
	}
	channels := 1
	if ch.vars.get("RECORD_STEREO") == "true" {
		channels = 2
	}
	f := audio.Format{AudioFormat: audio.FormatPCM, Channels: channels, SampleRate: recordSampleRate, BitsPerSample: 16}
	if err := writeWAVFile(s.cfg.RecordDir, rel, f, time.Duration(ms)*time.Millisecond); err != nil {
		s.log.Warn("switchsim: writing recording failed", "uuid", ch.uuid, "path", path, "err", err)
	}
}

// writeWAVFile writes a tone WAV file of duration d at rel inside dir,
// through a temporary file renamed into place so readers never see half a
// file. The directory tree is opened as an os.Root: symbolic links cannot
// lead the write outside dir.
func writeWAVFile(dir, rel string, f audio.Format, d time.Duration) (err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("creating record directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("opening record directory: %w", err)
	}
	defer root.Close()
	if parent := filepath.Dir(rel); parent != "." {
		if err := root.MkdirAll(parent, 0o750); err != nil {
			return fmt.Errorf("creating directory for %s: %w", rel, err)
		}
	}
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	tmp := filepath.Join(filepath.Dir(rel), "."+filepath.Base(rel)+".tmp-"+hex.EncodeToString(suffix[:]))
	out, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("creating %s: %w", tmp, err)
	}
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				_ = out.Close()
			}
			_ = root.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(out, 64<<10)
	if err := audio.WriteToneWAV(w, f, d, []float64{recordLeftHz, recordRightHz}); err != nil {
		return fmt.Errorf("writing %s: %w", rel, err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", rel, err)
	}
	closed = true
	if err := out.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", rel, err)
	}
	if err := root.Rename(tmp, rel); err != nil {
		return fmt.Errorf("renaming %s into place: %w", rel, err)
	}
	return nil
}
