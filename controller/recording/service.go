package recording

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/callgate/callgate/controller"
)

// Config configures a Service. The env var names are what cmd/callgate is
// expected to read them from.
type Config struct {
	// Store keeps recording metadata and wrapped data keys. Required.
	Store controller.RecordingStore
	// Blobs keeps the sealed recordings. Required.
	Blobs BlobStore
	// Keys wraps data keys (CALLGATE_RECORDING_KEYRING names its file). Required.
	Keys *Keyring
	// SpoolDir is where the switch writes plaintext recordings
	// (CALLGATE_RECORDING_SPOOL). Required; made absolute by New.
	SpoolDir string
	// Retention is how long a stored recording is kept before Purge
	// shreds it (CALLGATE_RECORDING_RETENTION, e.g. 8760h). Required, > 0.
	Retention time.Duration
	// CallEnded reports whether a call is over, so that Sweep leaves the
	// recordings of live calls alone. Nil treats every call as ended.
	CallEnded func(ctx context.Context, call controller.CallID) (bool, error)
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
}

// Validate returns EINVALID naming the first missing or bad field.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return controller.FieldError("Store", "a recording store is required")
	case c.Blobs == nil:
		return controller.FieldError("Blobs", "a blob store is required")
	case c.Keys == nil:
		return controller.FieldError("Keys", "a keyring is required")
	case c.SpoolDir == "":
		return controller.FieldError("SpoolDir", "a spool directory is required")
	case c.Retention <= 0:
		return controller.FieldError("Retention", "retention must be positive, not %v", c.Retention)
	}
	return nil
}

// Service seals finished recordings, serves them decrypted, rotates master
// keys and shreds expired recordings. Safe for concurrent use within one
// process; see Finish and RotateKeys for what it assumes across processes.
type Service struct {
	store     controller.RecordingStore
	blobs     BlobStore
	keys      *Keyring
	spoolDir  string
	retention time.Duration
	callEnded func(context.Context, controller.CallID) (bool, error)
	now       func() time.Time
	log       *slog.Logger

	// wrapMu is held shared from wrapping a data key until the recording
	// is marked stored, and exclusively by RotateKeys, so that no key is
	// ever wrapped by a master key that RotateKeys is about to retire.
	wrapMu sync.RWMutex

	mu   sync.Mutex
	busy map[string]chan struct{} // recording ID → closed when its Finish ends
}

// New returns a Service for cfg. Returns EINVALID if cfg is not valid.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	spool, err := filepath.Abs(cfg.SpoolDir)
	if err != nil {
		return nil, controller.FieldError("SpoolDir", "%v", err)
	}
	s := &Service{
		store:     cfg.Store,
		blobs:     cfg.Blobs,
		keys:      cfg.Keys,
		spoolDir:  spool,
		retention: cfg.Retention,
		callEnded: cfg.CallEnded,
		now:       cfg.Now,
		log:       cfg.Logger,
		busy:      map[string]chan struct{}{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// Begin stores r as a new active recording and returns it. If r.SpoolPath
// is empty it is set to SpoolDir/<tenant>/<call id>-<random>.wav (the
// tenant directory is created); the caller then has the switch record to
// it. Returns EINVALID for a missing or unsafe tenant or call ID, or a given
// SpoolPath outside SpoolDir.
func (s *Service) Begin(ctx context.Context, r controller.Recording) (controller.Recording, error) {
	if !validSegment(r.TenantID) {
		return controller.Recording{}, controller.FieldError("tenant_id", "tenant must be 1-128 characters of [A-Za-z0-9._-], not starting with a dot")
	}
	if r.CallID == "" {
		return controller.Recording{}, controller.FieldError("call_id", "a call ID is required")
	}
	if r.SpoolPath == "" {
		var rnd [8]byte
		rand.Read(rnd[:])
		name := sanitize(string(r.CallID)) + "-" + hex.EncodeToString(rnd[:]) + ".wav"
		r.SpoolPath = filepath.Join(s.spoolDir, r.TenantID, name)
	} else if err := s.checkSpoolPath(r.SpoolPath); err != nil {
		return controller.Recording{}, err
	}
	// The switch, not callgate, writes here: it may need group access.
	if err := os.MkdirAll(filepath.Dir(r.SpoolPath), 0o770); err != nil {
		return controller.Recording{}, fmt.Errorf("creating spool directory for call %s: %w", r.CallID, err)
	}
	r.Status = controller.RecordingActive
	rec, err := s.store.CreateRecording(ctx, r)
	if err != nil {
		return controller.Recording{}, fmt.Errorf("creating recording of call %s: %w", r.CallID, err)
	}
	return rec, nil
}

// Open returns a stored recording's metadata and a stream of its decrypted
// WAV, decrypted chunk by chunk as it is read; tampering surfaces as a read
// error wrapping ErrCorrupt, as does a plaintext whose SHA-256 or size does
// not match the metadata. The caller closes the stream. Returns EINVALID
// for an empty tenant, ENOTFOUND if the tenant has no such recording and
// ECONFLICT if it is not stored (still recording, failed, or shredded: then
// nobody can decrypt it).
func (s *Service) Open(ctx context.Context, tenant, id string) (controller.Recording, io.ReadCloser, error) {
	if tenant == "" {
		return controller.Recording{}, nil, controller.FieldError("tenant_id", "a tenant is required")
	}
	r, err := s.store.GetRecording(ctx, tenant, id)
	if err != nil {
		return controller.Recording{}, nil, err
	}
	switch r.Status {
	case controller.RecordingStored:
	case controller.RecordingActive:
		return r, nil, controller.Errorf(controller.ECONFLICT, "recording %s is still being recorded or sealed", id)
	case controller.RecordingFailed:
		return r, nil, controller.Errorf(controller.ECONFLICT, "recording %s failed and has no audio: %s", id, r.Error)
	case controller.RecordingShredded:
		return r, nil, controller.Errorf(controller.ECONFLICT, "recording %s was shredded after its retention period; nobody can decrypt it", id)
	default:
		return r, nil, controller.Errorf(controller.ECONFLICT, "recording %s is in state %q and cannot be opened", id, r.Status)
	}
	if err := s.keys.Refresh(); err != nil {
		return controller.Recording{}, nil, err
	}
	dk, err := s.keys.Unwrap(r.KeyID, r.WrappedKey, r.ID)
	if err != nil {
		return r, nil, fmt.Errorf("opening recording %s: %w", id, err)
	}
	defer clear(dk) // the opener keeps only the expanded AES key
	blob, err := s.blobs.Get(ctx, r.BlobKey)
	if controller.ErrorCode(err) == controller.ENOTFOUND {
		return r, nil, controller.Errorf(controller.EINTERNAL, "the sealed audio of recording %s is missing from the recording store", id)
	} else if err != nil {
		return r, nil, fmt.Errorf("opening recording %s: %w", id, err)
	}
	op, err := NewOpener(blob, dk)
	if err != nil {
		blob.Close()
		return r, nil, fmt.Errorf("opening recording %s: %w", id, err)
	}
	return r, &plainReader{r: op, c: blob, h: sha256.New(), sum: r.SHA256, size: r.Size}, nil
}

// plainReader is the stream Open returns: it checks the plaintext against
// the stored SHA-256 and size before reporting io.EOF.
type plainReader struct {
	r    io.Reader
	c    io.Closer
	h    hash.Hash
	n    int64
	sum  string
	size int64
}

func (p *plainReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.h.Write(b[:n])
	p.n += int64(n)
	if err == io.EOF && p.sum != "" && (p.n != p.size || hex.EncodeToString(p.h.Sum(nil)) != p.sum) {
		return n, fmt.Errorf("%w: the plaintext does not match the recording's SHA-256", ErrCorrupt)
	}
	return n, err
}

func (p *plainReader) Close() error { return p.c.Close() }

func (s *Service) checkSpoolPath(path string) error {
	rel, err := filepath.Rel(s.spoolDir, path)
	switch {
	case !filepath.IsAbs(path) || filepath.Clean(path) != path:
		return controller.FieldError("spool_path", "spool path must be a clean absolute path")
	case err != nil || !filepath.IsLocal(rel):
		return controller.FieldError("spool_path", "spool path must be inside the spool directory")
	case !strings.HasSuffix(path, ".wav"):
		return controller.FieldError("spool_path", "spool path must end in .wav")
	}
	for _, c := range []byte(filepath.ToSlash(rel)) {
		if !isSafeByte(c) {
			return controller.FieldError("spool_path", "spool path may only contain [A-Za-z0-9._/-]")
		}
	}
	return nil
}

// validSegment reports whether s is safe as one path element.
func validSegment(s string) bool {
	if s == "" || len(s) > 128 || s[0] == '.' {
		return false
	}
	for _, c := range []byte(s) {
		if !isSafeByte(c) || c == '/' {
			return false
		}
	}
	return true
}

// sanitize makes s safe as part of a file name, replacing other bytes by '_'.
func sanitize(s string) string {
	b := []byte(s)
	if len(b) > 96 {
		b = b[:96]
	}
	for i, c := range b {
		if !isSafeByte(c) || c == '/' {
			b[i] = '_'
		}
	}
	if len(b) > 0 && b[0] == '.' {
		b[0] = '_'
	}
	return string(b)
}
