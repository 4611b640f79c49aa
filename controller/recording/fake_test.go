package recording_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/recording"
	"github.com/stretchr/testify/require"
)

// fakeStore is an in-memory controller.RecordingStore.
type fakeStore struct {
	mu    sync.Mutex
	recs  map[string]*controller.Recording
	order []string
	seq   int
	now   func() time.Time

	rewrapFailAt int // if > 0, the rewrap of the n-th recording (1-based) fails
}

var _ controller.RecordingStore = (*fakeStore)(nil)

func newFakeStore(now func() time.Time) *fakeStore {
	return &fakeStore{recs: map[string]*controller.Recording{}, now: now}
}

func clone(r *controller.Recording) controller.Recording {
	c := *r
	c.WrappedKey = slices.Clone(r.WrappedKey)
	return c
}

func (s *fakeStore) CreateRecording(ctx context.Context, r controller.Recording) (controller.Recording, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	r.ID = fmt.Sprintf("rec-%04d", s.seq)
	r.Status = controller.RecordingActive
	r.CreatedAt = s.now()
	s.recs[r.ID] = &r
	s.order = append(s.order, r.ID)
	return clone(&r), nil
}

func (s *fakeStore) GetRecording(ctx context.Context, tenant, id string) (controller.Recording, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[id]
	if !ok || (tenant != "" && r.TenantID != tenant) {
		return controller.Recording{}, controller.Errorf(controller.ENOTFOUND, "recording %s not found", id)
	}
	return clone(r), nil
}

func (s *fakeStore) ListRecordings(ctx context.Context, tenant string, call controller.CallID) ([]controller.Recording, error) {
	return s.list(func(r *controller.Recording) bool { return r.TenantID == tenant && r.CallID == call }), nil
}

func (s *fakeStore) ActiveRecordings(ctx context.Context) ([]controller.Recording, error) {
	return s.list(func(r *controller.Recording) bool { return r.Status == controller.RecordingActive }), nil
}

func (s *fakeStore) list(keep func(*controller.Recording) bool) []controller.Recording {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []controller.Recording
	for _, id := range s.order {
		if r := s.recs[id]; keep(r) {
			out = append(out, clone(r))
		}
	}
	return out
}

func (s *fakeStore) MarkStored(ctx context.Context, r controller.Recording) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.recs[r.ID]
	if !ok {
		return controller.Errorf(controller.ENOTFOUND, "recording %s not found", r.ID)
	}
	if cur.Status != controller.RecordingActive {
		return controller.Errorf(controller.ECONFLICT, "recording %s is %s", r.ID, cur.Status)
	}
	now := s.now()
	cur.Status, cur.StoredAt = controller.RecordingStored, &now
	cur.BlobKey, cur.KeyID, cur.WrappedKey = r.BlobKey, r.KeyID, slices.Clone(r.WrappedKey)
	cur.SHA256, cur.Size, cur.DurationMS, cur.Channels = r.SHA256, r.Size, r.DurationMS, r.Channels
	cur.RetainUntil = r.RetainUntil
	return nil
}

func (s *fakeStore) MarkFailed(ctx context.Context, id, why string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.recs[id]
	if !ok || cur.Status != controller.RecordingActive {
		return controller.Errorf(controller.ECONFLICT, "recording %s is not active", id)
	}
	cur.Status, cur.Error = controller.RecordingFailed, why
	return nil
}

func (s *fakeStore) RewrapKeys(ctx context.Context, keyID string, rewrap func(r controller.Recording) ([]byte, error)) (int, error) {
	todo := s.list(func(r *controller.Recording) bool {
		return r.Status == controller.RecordingStored && r.KeyID != keyID
	})
	for i, r := range todo {
		if s.rewrapFailAt == i+1 {
			return i, fmt.Errorf("injected rewrap failure")
		}
		w, err := rewrap(r)
		if err != nil {
			return i, err
		}
		s.mu.Lock()
		s.recs[r.ID].KeyID, s.recs[r.ID].WrappedKey = keyID, w
		s.mu.Unlock()
	}
	return len(todo), nil
}

func (s *fakeStore) ExpiredRecordings(ctx context.Context, now time.Time, limit int) ([]controller.Recording, error) {
	out := s.list(func(r *controller.Recording) bool {
		return r.Status == controller.RecordingStored && r.RetainUntil != nil && r.RetainUntil.Before(now)
	})
	return out[:min(limit, len(out))], nil
}

func (s *fakeStore) ShredRecording(ctx context.Context, id string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.recs[id]
	if !ok {
		return controller.Errorf(controller.ENOTFOUND, "recording %s not found", id)
	}
	clear(cur.WrappedKey)
	cur.WrappedKey, cur.Status, cur.ShreddedAt = nil, controller.RecordingShredded, &at
	return nil
}

// makeWAV returns a 16-bit PCM WAV file of the given channels and sample
// rate holding dataBytes of deterministic audio.
func makeWAV(channels, rate, dataBytes int) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString("RIFF")
	binary.Write(&b, le, uint32(36+dataBytes))
	b.WriteString("WAVEfmt ")
	binary.Write(&b, le, uint32(16))
	binary.Write(&b, le, uint16(1))
	binary.Write(&b, le, uint16(channels))
	binary.Write(&b, le, uint32(rate))
	binary.Write(&b, le, uint32(rate*channels*2))
	binary.Write(&b, le, uint16(channels*2))
	binary.Write(&b, le, uint16(16))
	b.WriteString("data")
	binary.Write(&b, le, uint32(dataBytes))
	for i := range dataBytes {
		b.WriteByte(byte(i*7 + i/3))
	}
	return b.Bytes()
}

// testKey returns a deterministic 32-byte key.
func testKey(seed byte) []byte {
	k := make([]byte, recording.KeySize)
	for i := range k {
		k[i] = seed + byte(i)
	}
	return k
}

func requireCode(t *testing.T, err error, code string, msgAndArgs ...any) {
	t.Helper()
	require.Error(t, err, msgAndArgs...)
	require.Equal(t, code, controller.ErrorCode(err), append([]any{"error: %v", err}, msgAndArgs...)...)
}
