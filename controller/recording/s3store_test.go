package recording_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/recording"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/require"
)

const (
	testBucket = "recordings"
	testSecret = "s3cr3t-never-printed"
)

// s3Bundle is an S3Store on an in-process fake S3 server.
type s3Bundle struct {
	store   *recording.S3Store
	cfg     recording.S3Config
	backend *s3mem.Backend
	core    minio.Core // the test's own client, to look behind the store
}

func setupS3(t *testing.T, opts ...gofakes3.Option) *s3Bundle {
	t.Helper()
	backend := s3mem.New()
	require.NoError(t, backend.CreateBucket(testBucket))
	srv := httptest.NewServer(gofakes3.New(backend, opts...).Server())
	t.Cleanup(srv.Close)
	cfg := recording.S3Config{
		Endpoint:  strings.TrimPrefix(srv.URL, "http://"),
		Bucket:    testBucket,
		Prefix:    "callgate/rec/",
		AccessKey: "AKIDTEST",
		SecretKey: testSecret,
		Region:    "us-east-1",
		PlainHTTP: true,
	}
	store, err := recording.NewS3Store(t.Context(), cfg)
	require.NoError(t, err)
	client, err := minio.New(cfg.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""), Region: cfg.Region})
	require.NoError(t, err)
	return &s3Bundle{store: store, cfg: cfg, backend: backend, core: minio.Core{Client: client}}
}

// uploads lists the unfinished multipart uploads in the bucket.
func (b *s3Bundle) uploads(t *testing.T) []string {
	t.Helper()
	res, err := b.core.ListMultipartUploads(t.Context(), testBucket, "", "", "", "", 1000)
	require.NoError(t, err)
	var keys []string
	for _, u := range res.Uploads {
		keys = append(keys, u.Key)
	}
	return keys
}

func randomBytes(seed uint64, n int) []byte {
	var s [32]byte
	s[0] = byte(seed)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

func TestS3StoreRoundTrip(t *testing.T) {
	t.Parallel()
	b := setupS3(t)
	ctx := t.Context()
	// 0 and 1 byte and 5 MiB take one PUT; 16 MiB + 1 a multipart upload.
	for i, size := range []int{0, 1, 5 << 20, 16<<20 + 1} {
		key := fmt.Sprintf("acme/rec-%d.cgrec", i)
		data := randomBytes(uint64(i), size)
		n, err := b.store.Put(ctx, key, iotest.HalfReader(bytes.NewReader(data)))
		require.NoError(t, err, size)
		require.Equal(t, int64(size), n)

		rc, err := b.store.Get(ctx, key)
		require.NoError(t, err, size)
		got, err := io.ReadAll(rc)
		require.NoError(t, err)
		require.NoError(t, rc.Close())
		require.True(t, bytes.Equal(data, got), "size %d: got %d bytes back", size, len(got))

		obj, err := b.backend.HeadObject(testBucket, "callgate/rec/"+key)
		require.NoError(t, err, "the blob is stored under the prefix")
		require.Equal(t, int64(size), obj.Size)
	}
	require.Empty(t, b.uploads(t))

	// Put replaces.
	_, err := b.store.Put(ctx, "acme/rec-1.cgrec", strings.NewReader("second"))
	require.NoError(t, err)
	rc, err := b.store.Get(ctx, "acme/rec-1.cgrec")
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, "second", string(got))
}

func TestS3StoreMissingKey(t *testing.T) {
	t.Parallel()
	b := setupS3(t)
	ctx := t.Context()

	_, err := b.store.Get(ctx, "acme/x.cgrec")
	requireCode(t, err, controller.ENOTFOUND)
	requireCode(t, b.store.Delete(ctx, "acme/x.cgrec"), controller.ENOTFOUND)

	_, err = b.store.Put(ctx, "acme/x.cgrec", strings.NewReader("x"))
	require.NoError(t, err)
	require.NoError(t, b.store.Delete(ctx, "acme/x.cgrec"))
	_, err = b.store.Get(ctx, "acme/x.cgrec")
	requireCode(t, err, controller.ENOTFOUND)
	requireCode(t, b.store.Delete(ctx, "acme/x.cgrec"), controller.ENOTFOUND)
}

func TestS3StoreInvalidKeys(t *testing.T) {
	t.Parallel()
	b := setupS3(t)
	ctx := t.Context()
	for _, key := range []string{"", "/abs", "a/../b", "..", "a//b", "a/", "a b", "a/.cgtmp-1", strings.Repeat("a", 513)} {
		_, err := b.store.Put(ctx, key, strings.NewReader("x"))
		requireCode(t, err, controller.EINVALID, key)
		_, err = b.store.Get(ctx, key)
		requireCode(t, err, controller.EINVALID, key)
		requireCode(t, b.store.Delete(ctx, key), controller.EINVALID, key)
	}
}

func TestS3StoreFailedPut(t *testing.T) {
	t.Parallel()
	b := setupS3(t)
	ctx := t.Context()
	// A reader failing before and after the first 16 MiB part: neither
	// leaves a blob nor an unfinished upload behind.
	for i, size := range []int{4, 16<<20 + 4} {
		key := fmt.Sprintf("acme/fail-%d.cgrec", i)
		src := io.MultiReader(bytes.NewReader(randomBytes(1, size)), iotest.ErrReader(io.ErrClosedPipe))
		_, err := b.store.Put(ctx, key, src)
		require.ErrorIs(t, err, io.ErrClosedPipe)
		_, err = b.store.Get(ctx, key)
		requireCode(t, err, controller.ENOTFOUND)
	}
	require.Empty(t, b.uploads(t))

	// A cancelled context stops a Put.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err := b.store.Put(cctx, "acme/cancelled.cgrec", strings.NewReader("x"))
	require.ErrorIs(t, err, context.Canceled)
}

func TestS3StoreRemoveTemps(t *testing.T) {
	t.Parallel()
	// The fake server's clock is two days behind, so uploads it starts
	// look stale.
	b := setupS3(t, gofakes3.WithTimeSource(gofakes3.FixedTimeSource(time.Now().Add(-48*time.Hour))), gofakes3.WithTimeSkewLimit(0))
	ctx := t.Context()
	for _, name := range []string{"callgate/rec/acme/crashed.cgrec", "other-app/big.bin", "callgate/rec/../odd"} {
		_, err := b.core.NewMultipartUpload(ctx, testBucket, name, minio.PutObjectOptions{})
		require.NoError(t, err, name)
	}
	n, err := b.store.RemoveTemps(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.ElementsMatch(t, []string{"other-app/big.bin", "callgate/rec/../odd"}, b.uploads(t))

	// A recent upload may belong to a Put in progress.
	fresh := setupS3(t)
	_, err = fresh.core.NewMultipartUpload(ctx, testBucket, "callgate/rec/acme/running.cgrec", minio.PutObjectOptions{})
	require.NoError(t, err)
	n, err = fresh.store.RemoveTemps(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Len(t, fresh.uploads(t), 1)
}

func TestNewS3StoreMissingBucket(t *testing.T) {
	t.Parallel()
	b := setupS3(t)
	cfg := b.cfg
	cfg.Bucket = "no-such-bucket"
	_, err := recording.NewS3Store(t.Context(), cfg)
	requireCode(t, err, controller.EINVALID)
	require.Equal(t, "Bucket", controller.ErrorField(err))
	require.Contains(t, err.Error(), "create it")
	ok, err := b.backend.BucketExists("no-such-bucket")
	require.NoError(t, err)
	require.False(t, ok, "NewS3Store never creates a bucket")
}

func TestNewS3StoreUnreachable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(nil)
	endpoint := strings.TrimPrefix(srv.URL, "http://")
	srv.Close() // nothing listens there any more
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := recording.NewS3Store(ctx, recording.S3Config{Endpoint: endpoint, Bucket: testBucket, AccessKey: "a", SecretKey: testSecret, PlainHTTP: true})
	require.Error(t, err)
	require.NotContains(t, err.Error(), testSecret)
}

func TestS3ConfigValidate(t *testing.T) {
	t.Parallel()
	valid := recording.S3Config{Endpoint: "minio.internal:9000", Bucket: "call-recordings", AccessKey: "AKID", SecretKey: testSecret}
	require.NoError(t, valid.Validate())
	for _, ok := range []func(*recording.S3Config){
		func(c *recording.S3Config) { c.Endpoint = "s3.eu-west-1.amazonaws.com" },
		func(c *recording.S3Config) { c.Endpoint = "[::1]:9000" },
		func(c *recording.S3Config) { c.Prefix = "callgate/recordings/" },
		func(c *recording.S3Config) { c.Prefix = "callgate" },
	} {
		c := valid
		ok(&c)
		require.NoError(t, c.Validate(), "%v", c)
	}
	for field, bad := range map[string][]func(*recording.S3Config){
		"Endpoint": {
			func(c *recording.S3Config) { c.Endpoint = "" },
			func(c *recording.S3Config) { c.Endpoint = "https://s3.amazonaws.com" },
			func(c *recording.S3Config) { c.Endpoint = "minio:9000/path" },
			func(c *recording.S3Config) { c.Endpoint = "user@minio:9000" },
			func(c *recording.S3Config) { c.Endpoint = "minio:" },
		},
		"Bucket": {
			func(c *recording.S3Config) { c.Bucket = "" },
			func(c *recording.S3Config) { c.Bucket = "Upper_Case" },
			func(c *recording.S3Config) { c.Bucket = "ab" },
		},
		"Prefix": {
			func(c *recording.S3Config) { c.Prefix = "/abs" },
			func(c *recording.S3Config) { c.Prefix = "a/../b" },
			func(c *recording.S3Config) { c.Prefix = "a//b" },
			func(c *recording.S3Config) { c.Prefix = "with space" },
			func(c *recording.S3Config) { c.Prefix = strings.Repeat("p", 257) },
		},
		"AccessKey": {func(c *recording.S3Config) { c.AccessKey = "" }},
		"SecretKey": {func(c *recording.S3Config) { c.SecretKey = "" }},
	} {
		for i, mutate := range bad {
			c := valid
			mutate(&c)
			err := c.Validate()
			requireCode(t, err, controller.EINVALID, "%s #%d", field, i)
			require.Equal(t, field, controller.ErrorField(err), "%s #%d: %v", field, i, err)
			require.NotContains(t, err.Error(), testSecret)
			_, err = recording.NewS3Store(t.Context(), c)
			require.Equal(t, field, controller.ErrorField(err), "NewS3Store validates: %s #%d", field, i)
		}
	}
}

func TestS3SecretNeverPrinted(t *testing.T) {
	t.Parallel()
	b := setupS3(t)
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "s3", b.cfg)
	for _, s := range []string{
		b.store.String(), fmt.Sprint(b.store), fmt.Sprintf("%+v", b.store),
		b.cfg.String(), fmt.Sprint(b.cfg), fmt.Sprintf("%+v", b.cfg), fmt.Sprintf("%#v", b.cfg),
		logged.String(),
	} {
		require.NotContains(t, s, testSecret)
	}
	require.Contains(t, b.store.String(), testBucket)
	require.Contains(t, logged.String(), "bucket="+testBucket)
}

// TestServiceOnS3 runs the recording pipeline unchanged on an S3Store.
func TestServiceOnS3(t *testing.T) {
	t.Parallel()
	b := setupS3(t)
	ctx := t.Context()
	dir := t.TempDir()
	keys, err := recording.GenerateKeyring(filepath.Join(dir, "keyring.json"))
	require.NoError(t, err)
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	store := newFakeStore(func() time.Time { return now })
	svc, err := recording.New(recording.Config{
		Store:     store,
		Blobs:     b.store,
		Keys:      keys,
		SpoolDir:  filepath.Join(dir, "spool"),
		Retention: retention,
		Now:       func() time.Time { return now },
	})
	require.NoError(t, err)

	audio := makeWAV(2, 8000, 3*32000+17)
	rec, err := svc.Begin(ctx, controller.Recording{TenantID: "acme", CallID: "call-1"})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(rec.SpoolPath, audio, 0o600))
	require.NoError(t, svc.Finish(ctx, "call-1", rec.SpoolPath, 0))

	_, err = os.Stat(rec.SpoolPath)
	require.ErrorIs(t, err, os.ErrNotExist, "the plaintext is removed once sealed")
	stored, err := store.GetRecording(ctx, "acme", rec.ID)
	require.NoError(t, err)
	require.Equal(t, controller.RecordingStored, stored.Status)
	obj, err := b.backend.HeadObject(testBucket, "callgate/rec/"+stored.BlobKey)
	require.NoError(t, err)
	require.Equal(t, stored.Size, int64(len(audio)))
	require.Greater(t, obj.Size, int64(len(audio)), "the bucket holds the sealed blob")

	got, rc, err := svc.Open(ctx, "acme", rec.ID)
	require.NoError(t, err)
	require.Equal(t, rec.ID, got.ID)
	plain, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.True(t, bytes.Equal(audio, plain), "Open returns the audio that was recorded")

	sealed, removed, err := svc.Sweep(ctx)
	require.NoError(t, err)
	require.Zero(t, sealed)
	require.Zero(t, removed)

	now = now.Add(retention + time.Hour)
	shredded, err := svc.Purge(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, shredded)
	_, err = b.store.Get(ctx, stored.BlobKey)
	requireCode(t, err, controller.ENOTFOUND, "Purge deletes the ciphertext")
}
