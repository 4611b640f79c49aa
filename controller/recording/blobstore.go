package recording

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/callgate/callgate/controller"
)

// BlobStore keeps sealed recordings under keys like "<tenant>/<id>.cgrec".
// Implementations: FSStore; an S3-compatible store fits the same interface
// (Put as a streaming or multipart upload, Get as a ranged-free GET, Delete).
type BlobStore interface {
	// Put stores everything read from r under key, replacing any blob
	// there, and returns the number of bytes stored. The blob is only
	// visible under key once r is fully read and durably stored.
	Put(ctx context.Context, key string, r io.Reader) (int64, error)
	// Get returns the blob under key. Returns ENOTFOUND if there is none.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Delete removes the blob under key. Returns ENOTFOUND if there is none.
	Delete(ctx context.Context, key string) error
}

// TempRemover is implemented by blob stores that can leave temporary files
// behind after a crash; Service.Sweep calls it.
type TempRemover interface {
	// RemoveTemps removes leftover temporary files and returns how many.
	RemoveTemps(ctx context.Context) (int, error)
}

// tempPrefix starts the name of every temporary file this package writes.
const tempPrefix = ".cgtmp-"

// FSStore is a BlobStore in a local directory: a key is a relative path
// under Dir. Files are written to a temporary file in the same directory,
// fsynced and renamed into place; files are 0600 and directories 0700.
type FSStore struct {
	Dir string // the root directory; created on first Put
}

var (
	_ BlobStore   = FSStore{}
	_ TempRemover = FSStore{}
)

// ValidateBlobKey returns EINVALID unless key is a relative path of
// [A-Za-z0-9._/-] with no empty, "." or ".." element, no element starting
// with the temporary-file prefix, and at most 512 bytes.
func ValidateBlobKey(key string) error {
	if key == "" || len(key) > 512 {
		return controller.Errorf(controller.EINVALID, "blob key must be 1-512 bytes")
	}
	for _, c := range []byte(key) {
		if !isSafeByte(c) {
			return controller.Errorf(controller.EINVALID, "blob key %q may only contain [A-Za-z0-9._/-]", key)
		}
	}
	for elem := range strings.SplitSeq(key, "/") {
		if elem == "" || elem == "." || elem == ".." || strings.HasPrefix(elem, tempPrefix) {
			return controller.Errorf(controller.EINVALID, "blob key %q must be a relative path without empty, \".\" or \"..\" elements", key)
		}
	}
	return nil
}

func (s FSStore) path(key string) (string, error) {
	if s.Dir == "" {
		return "", controller.Errorf(controller.EINTERNAL, "blob store directory is not set")
	}
	if err := ValidateBlobKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.Dir, filepath.FromSlash(key)), nil
}

// Put implements BlobStore.
func (s FSStore) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	path, err := s.path(key)
	if err != nil {
		return 0, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, fmt.Errorf("storing blob %s: %w", key, err)
	}
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return 0, fmt.Errorf("storing blob %s: %w", key, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err != nil {
		return n, fmt.Errorf("storing blob %s: %w", key, err)
	}
	if err := f.Sync(); err != nil {
		return n, fmt.Errorf("storing blob %s: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return n, fmt.Errorf("storing blob %s: %w", key, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return n, fmt.Errorf("storing blob %s: %w", key, err)
	}
	ok = true
	if err := syncDir(dir); err != nil {
		return n, fmt.Errorf("storing blob %s: %w", key, err)
	}
	return n, nil
}

// Get implements BlobStore.
func (s FSStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	path, err := s.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, controller.Errorf(controller.ENOTFOUND, "blob %s not found", key)
	} else if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", key, err)
	}
	return f, nil
}

// Delete implements BlobStore.
func (s FSStore) Delete(ctx context.Context, key string) error {
	path, err := s.path(key)
	if err != nil {
		return err
	}
	err = os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return controller.Errorf(controller.ENOTFOUND, "blob %s not found", key)
	} else if err != nil {
		return fmt.Errorf("deleting blob %s: %w", key, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("deleting blob %s: %w", key, err)
	}
	return nil
}

// RemoveTemps implements TempRemover: it removes the temporary files that a
// crash during Put left under Dir. Do not call it while a Put may run.
func (s FSStore) RemoveTemps(ctx context.Context) (int, error) {
	if s.Dir == "" {
		return 0, nil
	}
	return removeTemps(ctx, s.Dir)
}

// removeTemps removes every regular file under root whose name starts with
// tempPrefix. A missing root is empty.
func removeTemps(ctx context.Context, root string) (int, error) {
	removed := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.HasPrefix(d.Name(), tempPrefix) {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			removed++
		}
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("removing temporary files under %s: %w", root, err)
	}
	return removed, nil
}

// ctxReader stops a copy once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
