package recording

import (
	"bufio"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/callgate/callgate/controller"
)

// The sealed format is a header followed by chunks:
//
//	header: "CGREC1" | version (1 byte) | chunk size (uint32 BE) | nonce prefix (4 bytes)
//	chunk:  AES-256-GCM(data key, nonce = prefix || uint64 BE counter,
//	                    aad = header || final flag (1 byte: 0 or 1),
//	                    up to chunk-size bytes of plaintext)
//
// Every chunk but the last holds exactly chunk-size bytes of plaintext; the
// last holds 0 to chunk-size bytes and is sealed with the final flag, so
// there is always at least one chunk. The counter stops reordering, the
// final flag stops truncation at a chunk boundary, and the header in the AAD
// (with its random nonce prefix) stops splicing chunks between files.
const (
	sealMagic        = "CGREC1"
	sealVersion      = 1
	sealHeaderSize   = len(sealMagic) + 1 + 4 + 4
	noncePrefixSize  = 4
	DefaultChunkSize = 64 << 10 // plaintext bytes per chunk
	maxChunkSize     = 1 << 20  // the largest chunk size NewOpener accepts
	gcmTagSize       = 16
)

// ErrCorrupt is returned (wrapped) when a sealed recording fails
// authentication: it was altered or truncated, or the data key is wrong.
var ErrCorrupt = controller.Errorf(controller.EINTERNAL, "recording ciphertext is corrupt or truncated")

// Seal encrypts src into dst in the sealed format under dataKey (32 bytes),
// reading and writing one chunk at a time. It returns the hex SHA-256 and
// the size of the plaintext.
func Seal(dst io.Writer, src io.Reader, dataKey []byte) (plainSHA256 string, plainSize int64, err error) {
	return sealChunks(dst, src, dataKey, DefaultChunkSize)
}

func sealChunks(dst io.Writer, src io.Reader, dataKey []byte, chunkSize int) (string, int64, error) {
	if len(dataKey) != KeySize {
		return "", 0, controller.Errorf(controller.EINVALID, "data key must be %d bytes, not %d", KeySize, len(dataKey))
	}
	aead, err := NewGCM(dataKey)
	if err != nil {
		return "", 0, err
	}
	header := make([]byte, sealHeaderSize, sealHeaderSize+1)
	copy(header, sealMagic)
	header[len(sealMagic)] = sealVersion
	binary.BigEndian.PutUint32(header[len(sealMagic)+1:], uint32(chunkSize))
	rand.Read(header[sealHeaderSize-noncePrefixSize:])
	if _, err := dst.Write(header); err != nil {
		return "", 0, fmt.Errorf("writing sealed recording header: %w", err)
	}
	s := chunkSealer{aead: aead, header: header}
	copy(s.nonce[:], header[sealHeaderSize-noncePrefixSize:])

	hash := sha256.New()
	br := bufio.NewReaderSize(src, chunkSize)
	plain := make([]byte, chunkSize)
	defer clear(plain)
	out := make([]byte, 0, chunkSize+aead.Overhead())
	var size int64
	for counter := uint64(0); ; counter++ {
		n, err := io.ReadFull(br, plain)
		final := false
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			final = true
		case err != nil:
			return "", 0, fmt.Errorf("reading recording to seal: %w", err)
		default:
			// A full chunk is the last one if nothing follows it.
			if _, perr := br.Peek(1); errors.Is(perr, io.EOF) {
				final = true
			} else if perr != nil {
				return "", 0, fmt.Errorf("reading recording to seal: %w", perr)
			}
		}
		hash.Write(plain[:n])
		size += int64(n)
		out = s.seal(out[:0], plain[:n], counter, final)
		if _, err := dst.Write(out); err != nil {
			return "", 0, fmt.Errorf("writing sealed recording: %w", err)
		}
		if final {
			return hex.EncodeToString(hash.Sum(nil)), size, nil
		}
	}
}

// chunkSealer holds what sealing and opening chunks share.
type chunkSealer struct {
	aead   cipher.AEAD
	header []byte // with spare capacity for the final flag
	nonce  [12]byte
}

func (s *chunkSealer) params(counter uint64, final bool) (nonce, aad []byte) {
	binary.BigEndian.PutUint64(s.nonce[noncePrefixSize:], counter)
	flag := byte(0)
	if final {
		flag = 1
	}
	return s.nonce[:], append(s.header[:sealHeaderSize], flag)
}

func (s *chunkSealer) seal(dst, plain []byte, counter uint64, final bool) []byte {
	nonce, aad := s.params(counter, final)
	return s.aead.Seal(dst, nonce, plain, aad)
}

func (s *chunkSealer) open(dst, sealed []byte, counter uint64, final bool) ([]byte, error) {
	nonce, aad := s.params(counter, final)
	return s.aead.Open(dst, nonce, sealed, aad)
}

// Open decrypts a sealed recording from src into dst under dataKey and
// returns the number of plaintext bytes written. Only authenticated chunks
// reach dst; a chunk that fails authentication, a missing final chunk or a
// bad header returns an error wrapping ErrCorrupt (after the authenticated
// chunks before it were written).
func Open(dst io.Writer, src io.Reader, dataKey []byte) (int64, error) {
	r, err := NewOpener(src, dataKey)
	if err != nil {
		return 0, err
	}
	return io.Copy(dst, r)
}

// NewOpener reads the header of a sealed recording from src and returns a
// reader of its plaintext, decrypting one chunk at a time as it is read. A
// chunk is returned only once authenticated; tampering or truncation
// surfaces as a Read error wrapping ErrCorrupt, never as io.EOF. A bad
// header returns an error wrapping ErrCorrupt.
func NewOpener(src io.Reader, dataKey []byte) (io.Reader, error) {
	if len(dataKey) != KeySize {
		return nil, controller.Errorf(controller.EINVALID, "data key must be %d bytes, not %d", KeySize, len(dataKey))
	}
	header := make([]byte, sealHeaderSize, sealHeaderSize+1)
	if _, err := io.ReadFull(src, header); errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("%w: the header is incomplete", ErrCorrupt)
	} else if err != nil {
		return nil, fmt.Errorf("reading sealed recording header: %w", err)
	}
	if string(header[:len(sealMagic)]) != sealMagic {
		return nil, fmt.Errorf("%w: not a sealed recording (bad magic)", ErrCorrupt)
	}
	if v := header[len(sealMagic)]; v != sealVersion {
		return nil, fmt.Errorf("%w: unsupported format version %d", ErrCorrupt, v)
	}
	chunkSize := binary.BigEndian.Uint32(header[len(sealMagic)+1:])
	if chunkSize == 0 || chunkSize > maxChunkSize {
		return nil, fmt.Errorf("%w: bad chunk size %d", ErrCorrupt, chunkSize)
	}
	aead, err := NewGCM(dataKey)
	if err != nil {
		return nil, err
	}
	o := &opener{
		chunkSealer: chunkSealer{aead: aead, header: header},
		src:         bufio.NewReaderSize(src, int(chunkSize)+gcmTagSize),
		sealed:      make([]byte, int(chunkSize)+gcmTagSize),
	}
	copy(o.nonce[:], header[sealHeaderSize-noncePrefixSize:])
	return o, nil
}

// opener is the reader NewOpener returns.
type opener struct {
	chunkSealer
	src     *bufio.Reader
	sealed  []byte // one sealed chunk
	plain   []byte // authenticated plaintext not yet read
	counter uint64
	done    bool  // the final chunk was read
	err     error // sticky
}

func (o *opener) Read(p []byte) (int, error) {
	for len(o.plain) == 0 {
		if o.err != nil {
			return 0, o.err
		}
		if o.done {
			return 0, io.EOF
		}
		o.err = o.next()
	}
	n := copy(p, o.plain)
	o.plain = o.plain[n:]
	return n, nil
}

// next reads, authenticates and decrypts the next chunk into o.plain.
func (o *opener) next() error {
	n, err := io.ReadFull(o.src, o.sealed)
	final := false
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		final = true
	case err != nil:
		return fmt.Errorf("reading sealed recording: %w", err)
	default:
		if _, perr := o.src.Peek(1); errors.Is(perr, io.EOF) {
			final = true
		} else if perr != nil {
			return fmt.Errorf("reading sealed recording: %w", perr)
		}
	}
	if n < gcmTagSize {
		return fmt.Errorf("%w: chunk %d is missing or short", ErrCorrupt, o.counter)
	}
	plain, err := o.open(o.sealed[:0], o.sealed[:n], o.counter, final)
	if err != nil {
		return fmt.Errorf("%w: chunk %d fails authentication", ErrCorrupt, o.counter)
	}
	o.plain = plain
	o.counter++
	o.done = final
	return nil
}
