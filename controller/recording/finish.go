package recording

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/callgate/callgate/controller"
)

// Finish seals a recording the switch has finished writing (RECORD_STOP):
// it finds the active recording whose SpoolPath is spoolPath, seals the file
// into the blob store under a fresh data key, checks the stored blob
// decrypts to the same SHA-256, wraps the data key, marks the recording
// stored and only then removes the plaintext. A missing or empty spool file
// marks the recording failed (and returns nil). recordMS is the duration
// used when the WAV header cannot be read.
//
// Finish is idempotent: for a path whose recording is no longer active it
// only removes any plaintext left there. Concurrent Finish calls for one
// recording in this process are serialised; two processes must not finish
// the same recording (both would write its blob). Returns ECONFLICT if the
// recording at spoolPath belongs to another call (callID "" matches any).
func (s *Service) Finish(ctx context.Context, callID controller.CallID, spoolPath string, recordMS int64) error {
	path := filepath.Clean(spoolPath)
	active, err := s.store.ActiveRecordings(ctx)
	if err != nil {
		return fmt.Errorf("finishing recording %s: listing active recordings: %w", path, err)
	}
	for _, r := range active {
		if r.SpoolPath == "" || filepath.Clean(r.SpoolPath) != path {
			continue
		}
		if callID != "" && r.CallID != callID {
			return controller.Errorf(controller.ECONFLICT, "spool file %s belongs to call %s, not %s", path, r.CallID, callID)
		}
		_, err := s.finishLocked(ctx, r, recordMS)
		return err
	}
	return s.removeLeftover(ctx, callID, path)
}

// removeLeftover removes the plaintext at path if it belongs to a recording
// of call that is no longer active (a crash between marking it stored and
// removing the file). Anything else is left to Sweep.
func (s *Service) removeLeftover(ctx context.Context, call controller.CallID, path string) error {
	rel, err := filepath.Rel(s.spoolDir, path)
	if err != nil || call == "" || !filepath.IsLocal(rel) {
		return nil
	}
	tenant, _, ok := strings.Cut(filepath.ToSlash(rel), "/")
	if !ok {
		return nil
	}
	recs, err := s.store.ListRecordings(ctx, tenant, call)
	if err != nil {
		return fmt.Errorf("finishing recording %s: listing recordings of call %s: %w", path, call, err)
	}
	for _, r := range recs {
		if filepath.Clean(r.SpoolPath) == path && r.Status != controller.RecordingActive {
			return s.removePlaintext(r.SpoolPath)
		}
	}
	s.log.Debug("no active recording for spool file; nothing to finish", "call_id", call, "spool_path", path)
	return nil
}

// finishLocked finishes r under its per-recording lock, after checking it
// is still active. It reports whether it sealed the recording.
func (s *Service) finishLocked(ctx context.Context, r controller.Recording, recordMS int64) (bool, error) {
	unlock, err := s.lock(ctx, r.ID)
	if err != nil {
		return false, err
	}
	defer unlock()
	cur, err := s.store.GetRecording(ctx, r.TenantID, r.ID)
	if err != nil {
		return false, fmt.Errorf("finishing recording %s: %w", r.ID, err)
	}
	if cur.Status != controller.RecordingActive {
		if cur.SpoolPath != "" {
			return false, s.removePlaintext(cur.SpoolPath)
		}
		return false, nil
	}
	return s.seal(ctx, cur, recordMS)
}

// lock waits until no other Finish of recording id runs in this process and
// returns the function that ends this one.
func (s *Service) lock(ctx context.Context, id string) (func(), error) {
	for {
		s.mu.Lock()
		wait, busy := s.busy[id]
		if !busy {
			done := make(chan struct{})
			s.busy[id] = done
			s.mu.Unlock()
			return func() {
				s.mu.Lock()
				delete(s.busy, id)
				s.mu.Unlock()
				close(done)
			}, nil
		}
		s.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// seal does the work of Finish for the active recording r.
func (s *Service) seal(ctx context.Context, r controller.Recording, recordMS int64) (bool, error) {
	log := s.log.With("recording_id", r.ID, "call_id", r.CallID, "tenant", r.TenantID)
	f, size, why, err := openSpool(r.SpoolPath)
	if err != nil {
		return false, fmt.Errorf("finishing recording %s: %w", r.ID, err)
	}
	if why != "" {
		log.Warn("recording failed", "reason", why)
		if err := s.store.MarkFailed(ctx, r.ID, why); err != nil {
			return false, fmt.Errorf("marking recording %s failed: %w", r.ID, err)
		}
		if why == whyEmpty {
			return false, s.removePlaintext(r.SpoolPath)
		}
		return false, nil
	}
	defer f.Close()

	r.Channels, r.DurationMS = 0, recordMS
	if info, err := readWAVInfo(f, size); err != nil {
		log.Warn("cannot read the recording's WAV header; using the switch's duration", "err", err)
	} else {
		r.Channels, r.DurationMS = info.Channels, info.DurationMS
	}

	r.BlobKey = r.TenantID + "/" + r.ID + ".cgrec"
	if err := ValidateBlobKey(r.BlobKey); err != nil {
		return false, fmt.Errorf("finishing recording %s: %w", r.ID, err)
	}
	dk := make([]byte, KeySize)
	rand.Read(dk)
	defer clear(dk)
	sum, n, err := s.sealToBlob(ctx, r.BlobKey, f, dk)
	if err != nil {
		return false, fmt.Errorf("sealing recording %s: %w", r.ID, err)
	}
	if err := s.verifyBlob(ctx, r.BlobKey, dk, sum, n); err != nil {
		return false, fmt.Errorf("verifying sealed recording %s: %w", r.ID, err)
	}
	r.SHA256, r.Size = sum, n

	s.wrapMu.RLock()
	if err := s.keys.Refresh(); err != nil {
		return false, err
	}
	r.KeyID, r.WrappedKey, err = s.keys.Wrap(dk, r.ID)
	if err == nil {
		now := s.now()
		until := now.Add(s.retention)
		r.Status, r.StoredAt, r.RetainUntil = controller.RecordingStored, &now, &until
		err = s.store.MarkStored(ctx, r)
	}
	s.wrapMu.RUnlock()
	if err != nil {
		return false, fmt.Errorf("storing recording %s: %w", r.ID, err)
	}
	f.Close()
	if err := s.removePlaintext(r.SpoolPath); err != nil {
		return true, err
	}
	log.Info("recording sealed", "size", n, "duration_ms", r.DurationMS, "key_id", r.KeyID)
	return true, nil
}

// Reasons a recording fails.
const (
	whyNoPath  = "the recording has no spool path"
	whyLost    = "plaintext lost before it was sealed: the spool file is missing"
	whyNotFile = "the spool path is not a regular file"
	whyEmpty   = "the switch wrote an empty recording"
)

// openSpool opens a spool file for sealing without following a symlink.
// If the file cannot be sealed it returns why instead (f is nil).
func openSpool(path string) (f *os.File, size int64, why string, err error) {
	if path == "" {
		return nil, 0, whyNoPath, nil
	}
	info, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, 0, whyLost, nil
	case err != nil:
		return nil, 0, "", err
	case !info.Mode().IsRegular():
		return nil, 0, whyNotFile, nil
	case info.Size() == 0:
		return nil, 0, whyEmpty, nil
	}
	f, err = os.Open(path)
	if err != nil {
		return nil, 0, "", err
	}
	opened, err := f.Stat()
	if err != nil || !os.SameFile(info, opened) {
		f.Close()
		return nil, 0, "", fmt.Errorf("spool file %s changed while being opened", path)
	}
	return f, opened.Size(), "", nil
}

// sealToBlob streams src, sealed under dk, into the blob store under key.
func (s *Service) sealToBlob(ctx context.Context, key string, src io.Reader, dk []byte) (string, int64, error) {
	pr, pw := io.Pipe()
	type result struct {
		sum  string
		size int64
		err  error
	}
	done := make(chan result, 1)
	go func() {
		sum, size, err := Seal(pw, src, dk)
		pw.CloseWithError(err)
		done <- result{sum, size, err}
	}()
	_, err := s.blobs.Put(ctx, key, pr)
	pr.CloseWithError(errors.New("blob store stopped reading"))
	res := <-done
	if err != nil {
		return "", 0, err
	}
	if res.err != nil {
		return "", 0, res.err
	}
	return res.sum, res.size, nil
}

// verifyBlob checks that the blob under key decrypts to sum and size.
func (s *Service) verifyBlob(ctx context.Context, key string, dk []byte, sum string, size int64) error {
	rc, err := s.blobs.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := Open(h, rc, dk)
	if err != nil {
		return err
	}
	if n != size || hex.EncodeToString(h.Sum(nil)) != sum {
		return controller.Errorf(controller.EINTERNAL, "stored blob %s does not decrypt to what was sealed", key)
	}
	return nil
}

// removePlaintext removes a spool file (a missing one is fine) and fsyncs
// its directory so the removal survives a crash.
func (s *Service) removePlaintext(path string) error {
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("removing plaintext recording %s: %w", path, err)
	}
	return nil
}
