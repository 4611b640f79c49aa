package recording

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// Sweep recovers from a crash; run it at start-up, before recording events
// are handled. It finishes every active recording whose call has ended (a
// missing spool file marks it failed: plaintext lost before it was sealed),
// removes every .wav file under SpoolDir that belongs to no active
// recording, and removes leftover temporary files in SpoolDir and the blob
// store (if it is a TempRemover). It returns how many recordings it sealed
// and how many files it removed; it carries on past errors and returns
// them joined.
func (s *Service) Sweep(ctx context.Context) (encrypted, removed int, err error) {
	active, err := s.store.ActiveRecordings(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("sweeping recordings: %w", err)
	}
	var errs []error
	for _, r := range active {
		if err := ctx.Err(); err != nil {
			return encrypted, removed, err
		}
		if s.callEnded != nil {
			ended, err := s.callEnded(ctx, r.CallID)
			if err != nil {
				errs = append(errs, fmt.Errorf("sweeping recording %s: has call %s ended: %w", r.ID, r.CallID, err))
				continue
			}
			if !ended {
				continue
			}
		}
		sealed, err := s.finishLocked(ctx, r, r.DurationMS)
		if err != nil {
			errs = append(errs, err)
		}
		if sealed {
			encrypted++
		}
	}

	n, err := s.removeStrays(ctx)
	removed += n
	if err != nil {
		errs = append(errs, err)
	}
	if tr, ok := s.blobs.(TempRemover); ok {
		n, err := tr.RemoveTemps(ctx)
		removed += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	s.log.Info("recording sweep done", "encrypted", encrypted, "removed", removed, "errors", len(errs))
	return encrypted, removed, errors.Join(errs...)
}

// removeStrays removes the .wav files in the spool that belong to no active
// recording, and temporary files. The file list is taken before the list of
// active recordings, so a file a switch created for a recording begun
// meanwhile is never taken for a stray: its row existed before the file.
func (s *Service) removeStrays(ctx context.Context) (int, error) {
	var candidates []string
	err := filepath.WalkDir(s.spoolDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == s.spoolDir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		name := d.Name()
		if d.Type().IsRegular() && (strings.HasSuffix(strings.ToLower(name), ".wav") || strings.HasPrefix(name, tempPrefix)) {
			candidates = append(candidates, path)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sweeping spool %s: %w", s.spoolDir, err)
	}
	if len(candidates) == 0 {
		return 0, nil
	}
	active, err := s.store.ActiveRecordings(ctx)
	if err != nil {
		return 0, fmt.Errorf("sweeping spool %s: %w", s.spoolDir, err)
	}
	keep := make(map[string]bool, len(active))
	for _, r := range active {
		if r.SpoolPath != "" {
			keep[filepath.Clean(r.SpoolPath)] = true
		}
	}
	removed := 0
	var errs []error
	for _, path := range candidates {
		if keep[path] {
			continue
		}
		if err := s.removePlaintext(path); err != nil {
			errs = append(errs, err)
			continue
		}
		s.log.Warn("removed stray plaintext from the recording spool", "file", filepath.Base(path))
		removed++
	}
	return removed, errors.Join(errs...)
}
