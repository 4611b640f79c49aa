package recording

import (
	"context"
	"errors"
	"fmt"

	"github.com/callgate/callgate/controller"
)

// purgeBatch is how many expired recordings Purge asks for at a time.
const purgeBatch = 500

// RotateKeys makes a fresh master key current, saves the keyring (so the
// new key is durable before anything is wrapped with it), rewraps every
// stored recording's data key under it and, only once all are rewrapped,
// retires (destroys) every older key and saves again. It returns the new
// key's ID and how many recordings were rewrapped. If rewrapping fails the
// old keys are kept and RotateKeys can simply be run again. Other processes
// sharing the keyring file must reload it before wrapping again.
func (s *Service) RotateKeys(ctx context.Context) (newKeyID string, rewrapped int, err error) {
	s.wrapMu.Lock()
	defer s.wrapMu.Unlock()
	if err := s.keys.Refresh(); err != nil {
		return "", 0, fmt.Errorf("rotating recording keys: %w", err)
	}
	prev := s.keys.CurrentID()
	newID := s.keys.Rotate()
	if err := s.keys.Save(); err != nil {
		s.keys.undoRotate(prev, newID)
		return "", 0, fmt.Errorf("rotating recording keys: %w", err)
	}
	rewrap := func(r controller.Recording) ([]byte, error) {
		dk, err := s.keys.Unwrap(r.KeyID, r.WrappedKey, r.ID)
		if err != nil {
			return nil, fmt.Errorf("unwrapping the data key of recording %s: %w", r.ID, err)
		}
		defer clear(dk)
		keyID, wrapped, err := s.keys.Wrap(dk, r.ID)
		if err != nil {
			return nil, fmt.Errorf("wrapping the data key of recording %s: %w", r.ID, err)
		}
		if keyID != newID {
			return nil, controller.Errorf(controller.EINTERNAL, "wrapped the data key of recording %s with key %q, not the new key %q", r.ID, keyID, newID)
		}
		return wrapped, nil
	}
	// Another controller may have wrapped a data key with the old key just
	// before it saw the new keyring: pass again until a pass finds nothing
	// left, and only then destroy the old keys.
	n := 0
	for pass := 0; ; pass++ {
		done, err := s.store.RewrapKeys(ctx, newID, rewrap)
		n += done
		if err != nil {
			return newID, n, fmt.Errorf("rotating recording keys: rewrapped %d before failing (older keys kept): %w", n, err)
		}
		if done == 0 {
			break
		}
		if pass == 4 {
			return newID, n, fmt.Errorf("rotating recording keys: %w", controller.Errorf(controller.ECONFLICT,
				"recordings are still being wrapped with the old keys after %d passes (older keys kept): run it again", pass+1))
		}
	}
	for _, id := range s.keys.IDs() {
		if id != newID && !s.keys.Retired(id) {
			if err := s.keys.Retire(id); err != nil {
				return newID, n, fmt.Errorf("rotating recording keys: %w", err)
			}
		}
	}
	if err := s.keys.Save(); err != nil {
		return newID, n, fmt.Errorf("rotating recording keys: saving retired keys: %w", err)
	}
	s.log.Info("recording keys rotated", "key_id", newID, "rewrapped", n)
	return newID, n, nil
}

// Purge crypto-shreds every stored recording past its retention: it
// destroys the wrapped data key (ShredRecording), then deletes the
// ciphertext (already missing is fine). It returns how many it shredded. A
// failed blob deletion does not stop it (the blob is unreadable anyway)
// and is returned at the end.
func (s *Service) Purge(ctx context.Context) (shredded int, err error) {
	now := s.now()
	seen := map[string]bool{}
	var errs []error
	for {
		batch, err := s.store.ExpiredRecordings(ctx, now, purgeBatch)
		if err != nil {
			return shredded, errors.Join(append(errs, fmt.Errorf("purging recordings: %w", err))...)
		}
		if len(batch) == 0 {
			break
		}
		progress := false
		for _, r := range batch {
			if seen[r.ID] {
				continue
			}
			seen[r.ID], progress = true, true
			if err := s.store.ShredRecording(ctx, r.ID, now); err != nil {
				return shredded, errors.Join(append(errs, fmt.Errorf("shredding recording %s: %w", r.ID, err))...)
			}
			shredded++
			if r.BlobKey == "" {
				continue
			}
			if err := s.blobs.Delete(ctx, r.BlobKey); err != nil && controller.ErrorCode(err) != controller.ENOTFOUND {
				s.log.Warn("cannot delete a shredded recording's ciphertext", "recording_id", r.ID, "err", err)
				errs = append(errs, fmt.Errorf("deleting ciphertext of shredded recording %s: %w", r.ID, err))
			}
		}
		if !progress {
			return shredded, errors.Join(append(errs, controller.Errorf(controller.EINTERNAL, "the recording store keeps listing shredded recordings as expired"))...)
		}
	}
	if shredded > 0 {
		s.log.Info("recordings shredded", "count", shredded)
	}
	return shredded, errors.Join(errs...)
}

// checkSpoolPath returns EINVALID unless path is a clean absolute .wav path
// of safe characters inside the spool directory.
