package recording

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

const (
	// s3PartSize is the size of one part of a multipart upload, and the
	// largest blob stored with a single PUT. S3 allows 10 000 parts, so a
	// blob may be up to about 156 GiB.
	s3PartSize = 16 << 20
	// s3CheckTimeout bounds NewS3Store's check that the bucket exists.
	s3CheckTimeout = 15 * time.Second
	// s3StaleUpload is how old an unfinished multipart upload must be
	// before RemoveTemps aborts it: no Put runs that long.
	s3StaleUpload = 24 * time.Hour
)

// S3Config configures an S3Store. The env var names are what cmd/callgate
// is expected to read them from.
type S3Config struct {
	// Endpoint is the S3 server as host or host:port, without a scheme
	// (CALLGATE_S3_ENDPOINT, e.g. s3.eu-west-1.amazonaws.com). Required.
	Endpoint string
	// Bucket holds the recordings (CALLGATE_S3_BUCKET). Required; it must
	// exist: callgate never creates buckets.
	Bucket string
	// Prefix is prepended to every blob key, e.g. "callgate/recordings"
	// (CALLGATE_S3_PREFIX). Optional; a trailing "/" is allowed.
	Prefix string
	// AccessKey is the access key ID (CALLGATE_S3_ACCESS_KEY). Required.
	AccessKey string
	// SecretKey is the secret access key (CALLGATE_S3_SECRET_KEY).
	// Required; never printed or logged.
	SecretKey string
	// Region is the bucket's region (CALLGATE_S3_REGION). Optional: empty
	// asks the server, which costs a request.
	Region string
	// PlainHTTP talks plain HTTP instead of HTTPS (CALLGATE_S3_PLAIN_HTTP).
	// The zero value uses TLS: plaintext must be opted into, e.g. for a
	// MinIO on localhost. The recordings are encrypted either way.
	PlainHTTP bool
}

// Validate returns EINVALID naming the first missing or bad field. It never
// includes the secret key.
func (c S3Config) Validate() error {
	switch {
	case c.Endpoint == "":
		return controller.FieldError("Endpoint", "an S3 endpoint (host or host:port) is required")
	case strings.Contains(c.Endpoint, "://"):
		return controller.FieldError("Endpoint", "S3 endpoint %q must be host or host:port without a scheme (set PlainHTTP for http)", c.Endpoint)
	}
	if u, err := url.Parse("//" + c.Endpoint); err != nil || u.Host != c.Endpoint || u.User != nil {
		return controller.FieldError("Endpoint", "S3 endpoint %q must be host or host:port without a path", c.Endpoint)
	}
	if strings.Contains(c.Endpoint, ":") && !strings.HasSuffix(c.Endpoint, "]") {
		if _, port, err := net.SplitHostPort(c.Endpoint); err != nil || port == "" {
			return controller.FieldError("Endpoint", "S3 endpoint %q must be host or host:port", c.Endpoint)
		}
	}
	if c.Bucket == "" {
		return controller.FieldError("Bucket", "an S3 bucket is required")
	}
	if err := s3utils.CheckValidBucketNameStrict(c.Bucket); err != nil {
		return controller.FieldError("Bucket", "S3 bucket %q: %v", c.Bucket, err)
	}
	if p := strings.TrimSuffix(c.Prefix, "/"); c.Prefix != "" {
		if len(p) > 256 || ValidateBlobKey(p) != nil {
			return controller.FieldError("Prefix", "S3 key prefix %q must be at most 256 bytes of [A-Za-z0-9._/-], without a leading \"/\" or empty, \".\" or \"..\" elements", c.Prefix)
		}
	}
	switch {
	case c.AccessKey == "":
		return controller.FieldError("AccessKey", "an S3 access key is required")
	case c.SecretKey == "":
		return controller.FieldError("SecretKey", "an S3 secret key is required")
	}
	return nil
}

// String describes the configuration without the secret key.
func (c S3Config) String() string {
	return fmt.Sprintf("s3 %s (access key %s, region %q)", location(c), c.AccessKey, c.Region)
}

// GoString is String, so that %#v does not print the secret key either.
func (c S3Config) GoString() string { return c.String() }

// LogValue keeps the secret key out of logs.
func (c S3Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("endpoint", c.Endpoint), slog.String("bucket", c.Bucket), slog.String("prefix", c.Prefix),
		slog.String("access_key", c.AccessKey), slog.String("region", c.Region), slog.Bool("plain_http", c.PlainHTTP))
}

// location returns where c stores blobs, as scheme://endpoint/bucket/prefix.
func location(c S3Config) string {
	scheme := "https"
	if c.PlainHTTP {
		scheme = "http"
	}
	loc := scheme + "://" + c.Endpoint + "/" + c.Bucket
	if c.Prefix != "" {
		loc += "/" + strings.TrimSuffix(c.Prefix, "/")
	}
	return loc
}

// S3Store is a BlobStore in an S3-compatible bucket: a key is stored as the
// object Prefix/key. Blobs are stored with one PUT up to 16 MiB and with a
// multipart upload beyond, so a blob is only visible once fully uploaded.
// A Put holds up to two 16 MiB buffers. Safe for concurrent use.
//
// No server-side encryption is requested: recordings are sealed before
// they reach the store, and their keys never leave callgate.
type S3Store struct {
	client *minio.Client
	core   minio.Core
	bucket string
	prefix string // "" or ending in "/"
	where  string // for String and errors
}

var (
	_ BlobStore   = (*S3Store)(nil)
	_ TempRemover = (*S3Store)(nil)
)

// NewS3Store returns an S3Store for cfg after checking, within ctx and at
// most 15 s, that the bucket exists. Returns EINVALID if cfg is not valid
// or the bucket does not exist (it is never created), and the S3 error if
// the server cannot be reached or refuses the credentials.
func NewS3Store(ctx context.Context, cfg S3Config) (*S3Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: !cfg.PlainHTTP,
		Region: cfg.Region,
	})
	if err != nil {
		return nil, controller.FieldError("Endpoint", "S3 endpoint %q: %v", cfg.Endpoint, err)
	}
	s := &S3Store{client: client, core: minio.Core{Client: client}, bucket: cfg.Bucket, where: location(cfg)}
	if p := strings.TrimSuffix(cfg.Prefix, "/"); p != "" {
		s.prefix = p + "/"
	}
	ctx, cancel := context.WithTimeout(ctx, s3CheckTimeout)
	defer cancel()
	ok, err := client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("checking S3 bucket %s: %w", s.where, err)
	}
	if !ok {
		return nil, controller.FieldError("Bucket", "S3 bucket %q does not exist at %s: create it first (callgate does not create buckets)", cfg.Bucket, cfg.Endpoint)
	}
	return s, nil
}

// String says where s stores blobs; it never includes credentials.
func (s *S3Store) String() string { return "s3 " + s.where }

// object returns the object name of key. Returns EINVALID for a bad key.
func (s *S3Store) object(key string) (string, error) {
	if err := ValidateBlobKey(key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

// Put implements BlobStore. Up to 16 MiB is stored with one PUT; a larger
// blob with a multipart upload that is aborted if Put fails (see
// RemoveTemps for one a crash leaves behind).
func (s *S3Store) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	name, err := s.object(key)
	if err != nil {
		return 0, err
	}
	src := &countingReader{r: ctxReader{ctx, r}}
	// DisableContentSha256 sends over plain HTTP what minio-go sends over
	// TLS anyway: an unsigned payload with a CRC32C checksum, instead of
	// aws-chunked streaming signatures, which minio-go sends without a
	// Content-Length for an empty body and some S3-compatible servers
	// store verbatim in multipart parts. The sealed blob authenticates
	// itself, and Service.Finish reads it back before trusting it.
	opts := minio.PutObjectOptions{ContentType: "application/octet-stream", PartSize: s3PartSize, DisableContentSha256: true}
	first, err := readUpTo(src, s3PartSize)
	if err != nil {
		return src.n, fmt.Errorf("storing blob %s: %w", key, err)
	}
	if len(first) < s3PartSize {
		_, err = s.client.PutObject(ctx, s.bucket, name, bytes.NewReader(first), int64(len(first)), opts)
	} else {
		_, err = s.client.PutObject(ctx, s.bucket, name, io.MultiReader(bytes.NewReader(first), src), -1, opts)
	}
	if err != nil {
		return src.n, fmt.Errorf("storing blob %s in %s: %w", key, s.where, err)
	}
	return src.n, nil
}

// Get implements BlobStore. The blob is streamed as it is read, within ctx.
func (s *S3Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, err
	}
	body, _, _, err := s.core.GetObject(ctx, s.bucket, name, minio.GetObjectOptions{})
	if isNoSuchKey(err) {
		return nil, controller.Errorf(controller.ENOTFOUND, "blob %s not found", key)
	} else if err != nil {
		return nil, fmt.Errorf("reading blob %s from %s: %w", key, s.where, err)
	}
	return body, nil
}

// Delete implements BlobStore. S3 reports no missing object on DELETE, so
// Delete asks first: two concurrent Deletes of one key may both succeed.
func (s *S3Store) Delete(ctx context.Context, key string) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	_, err = s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if isNoSuchKey(err) {
		return controller.Errorf(controller.ENOTFOUND, "blob %s not found", key)
	} else if err != nil {
		return fmt.Errorf("deleting blob %s from %s: %w", key, s.where, err)
	}
	if err := s.client.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("deleting blob %s from %s: %w", key, s.where, err)
	}
	return nil
}

// RemoveTemps implements TempRemover: it aborts the unfinished multipart
// uploads of blob keys under Prefix that started more than a day ago (a
// crash during a large Put leaves one behind, and its parts are billed)
// and returns how many. Uploads of other objects are left alone.
func (s *S3Store) RemoveTemps(ctx context.Context) (int, error) {
	removed := 0
	keyMarker, idMarker := "", ""
	for {
		res, err := s.core.ListMultipartUploads(ctx, s.bucket, s.prefix, keyMarker, idMarker, "", 1000)
		if isNoSuchUpload(err) {
			return removed, nil // some S3 fakes say so when a bucket never had an upload
		} else if err != nil {
			return removed, fmt.Errorf("listing unfinished uploads in %s: %w", s.where, err)
		}
		for _, u := range res.Uploads {
			key, ok := strings.CutPrefix(u.Key, s.prefix)
			if !ok || ValidateBlobKey(key) != nil || time.Since(u.Initiated) < s3StaleUpload {
				continue
			}
			if err := s.core.AbortMultipartUpload(ctx, s.bucket, u.Key, u.UploadID); err != nil && !isNoSuchUpload(err) {
				return removed, fmt.Errorf("aborting the unfinished upload of blob %s in %s: %w", key, s.where, err)
			}
			removed++
		}
		if !res.IsTruncated || (res.NextKeyMarker == keyMarker && res.NextUploadIDMarker == idMarker) {
			return removed, nil
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
}

func isNoSuchKey(err error) bool {
	var e minio.ErrorResponse
	return errors.As(err, &e) && e.Code == "NoSuchKey"
}

func isNoSuchUpload(err error) bool {
	var e minio.ErrorResponse
	return errors.As(err, &e) && e.Code == "NoSuchUpload"
}

// readUpTo reads from r until io.EOF or limit bytes, growing its buffer as
// data comes so that a small blob takes little memory.
func readUpTo(r io.Reader, limit int) ([]byte, error) {
	buf := make([]byte, 0, min(64<<10, limit))
	for len(buf) < limit {
		if len(buf) == cap(buf) {
			buf = append(make([]byte, 0, min(2*cap(buf), limit)), buf...)
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		} else if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
