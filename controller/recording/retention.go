package recording

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/callgate/callgate/controller"
)

// purgeBatch is how many expired recordings Purge asks for at a time.
const purgeBatch = 500

// RotateKeys makes a fresh master key current, saves the keyring (so the
// new key is durable before anything is wrapped with it), rewraps every
// stored recording's data key under it — and re-seals whatever else also
// does (also, may be nil: personal data) — and, only once all are done,
// retires (destroys) every older key and saves again. It returns the new
// key's ID and how many recordings and values were rewrapped or re-sealed.
// If that fails the old keys are kept and RotateKeys can simply be run
// again. Other processes sharing the keyring file must reload it before
// wrapping again.
func (s *Service) RotateKeys(ctx context.Context, also RotatePass) (newKeyID string, rewrapped int, err error) {
	s.wrapMu.Lock()
	defer s.wrapMu.Unlock()
	rewrapPass := func(ctx context.Context, newID string) (int, error) {
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
		n, err := s.store.RewrapKeys(ctx, newID, rewrap)
		if err != nil || also == nil {
			return n, err
		}
		m, err := also(ctx, newID)
		return n + m, err
	}
	newID, n, err := RotateKeyring(ctx, s.keys, rewrapPass)
	if err == nil {
		s.log.Info("keys rotated", "key_id", newID, "rewrapped", n)
	}
	return newID, n, err
}

// RotateGrace is how long RotateKeyring waits, once the new key is saved,
// before it moves values to it: longer than any process takes to notice
// the keyring file changed.
const RotateGrace = 500 * time.Millisecond

// RotatePass moves what it covers under master key newID and returns how
// many values it moved (0: nothing is left under older keys).
type RotatePass func(ctx context.Context, newID string) (int, error)

// RotateKeyring makes a fresh master key of kr current, saves kr, runs pass
// until a run finds nothing left under older keys (another controller may
// have used an old key just before it saw the new keyring), then retires
// (destroys) every older key and saves again. Returns the new key's ID and
// what the passes moved. On an error the old keys are kept.
func RotateKeyring(ctx context.Context, kr *Keyring, pass RotatePass) (newKeyID string, moved int, err error) {
	if err := kr.Refresh(); err != nil {
		return "", 0, fmt.Errorf("rotating keys: %w", err)
	}
	prev := kr.CurrentID()
	newID := kr.Rotate()
	if err := kr.Save(); err != nil {
		kr.undoRotate(prev, newID)
		return "", 0, fmt.Errorf("rotating keys: %w", err)
	}
	// Processes check the file for a new key every 200 ms before they seal
	// (controller/pii): give them the time to load it, so the passes below
	// find the stragglers.
	select {
	case <-ctx.Done():
		return newID, 0, fmt.Errorf("rotating keys (older keys kept): %w", ctx.Err())
	case <-time.After(RotateGrace):
	}
	n := 0
	for i := 0; ; i++ {
		done, err := pass(ctx, newID)
		n += done
		if err != nil {
			return newID, n, fmt.Errorf("rotating keys: moved %d before failing (older keys kept): %w", n, err)
		}
		if done == 0 {
			break
		}
		if i == 4 {
			return newID, n, fmt.Errorf("rotating keys: %w", controller.Errorf(controller.ECONFLICT,
				"values are still being sealed with the old keys after %d passes (older keys kept): run it again", i+1))
		}
	}
	for _, id := range kr.IDs() {
		if id != newID && !kr.Retired(id) {
			if err := kr.Retire(id); err != nil {
				return newID, n, fmt.Errorf("rotating keys: %w", err)
			}
		}
	}
	if err := kr.Save(); err != nil {
		return newID, n, fmt.Errorf("rotating keys: saving retired keys: %w", err)
	}
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
