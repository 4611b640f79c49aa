package freeswitch

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// Reading the event connection
//
// eslgo parses every frame with net/textproto.ReadMIMEHeader: about 175
// allocations and 20 µs for a 2.5 KB event, on one goroutine, which caps a
// switch at some 40 000 events/s; it also panics on a negative
// Content-Length, allocates whatever a huge one asks for, and drops a whole
// event over one header name textproto dislikes. So the connection that
// carries events is read by frameReader and eventParser instead:
//
//   - frames: header lines up to a blank line (LF, CR LF tolerated), then
//     Content-Length bytes of body, at most maxFrameBody; a bad length ends
//     the connection, because the stream cannot be re-synchronised;
//   - event bodies: `Name: value` lines, of which only the headers listed in
//     headerNames are kept, URL-decoded, into one reused buffer; a line that
//     is not `Name: value` is skipped, not the event; the inner
//     Content-Length and body (BACKGROUND_JOB's result) follow a blank line.
//
// Parsing allocates nothing; an event callgate keeps costs one allocation
// (eventParser.event), one it drops costs none.

const (
	// maxFrameBody caps a frame's Content-Length. FreeSWITCH's largest
	// events (CHANNEL_* with every variable) are tens of KB.
	maxFrameBody = 1 << 20
	// readBufferSize is the event connection's read buffer; a body up to
	// this size is parsed in place.
	readBufferSize = 64 << 10
)

// Content types callgate tells apart.
const (
	ctAuthRequest   = "auth/request"
	ctCommandReply  = "command/reply"
	ctEventPlain    = "text/event-plain"
	ctDisconnect    = "text/disconnect-notice"
	ctRudeRejection = "text/rude-rejection"
)

var (
	errFrameLength  = errors.New("frame Content-Length is not a number between 0 and 1 MiB")
	errLineTooLong  = errors.New("frame header line longer than the read buffer")
	errEventBodyLen = errors.New("event body shorter than its inner Content-Length, or the length is invalid")
)

// frame is one ESL frame as frameReader returns it.
type frame struct {
	contentType string // one of the ct… constants, or the type as sent
	replyText   string // command/reply only
	body        []byte // text/event-plain only; valid until the next call to next
}

// frameReader splits an ESL byte stream into frames. Not safe for
// concurrent use.
type frameReader struct {
	br      *bufio.Reader
	scratch []byte // bodies larger than br's buffer
	discard int    // bytes of the last body still in br (it was peeked)
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{br: bufio.NewReaderSize(r, readBufferSize)}
}

// next reads the next frame. Only a text/event-plain frame's body is kept;
// every other body is skipped. It returns io.EOF if the stream ends between
// frames, io.ErrUnexpectedEOF inside one, and errFrameLength or
// errLineTooLong for a frame that leaves the stream unreadable.
func (r *frameReader) next() (frame, error) {
	var f frame
	if r.discard > 0 {
		_, _ = r.br.Discard(r.discard) // peeked, so buffered: cannot fail
		r.discard = 0
	}
	length, started := 0, false
	for {
		line, err := r.readLine()
		if err != nil {
			if err == io.EOF && started {
				err = io.ErrUnexpectedEOF
			}
			return f, err
		}
		started = true
		if len(line) == 0 {
			break
		}
		name, value, ok := splitHeader(line)
		if !ok {
			continue
		}
		switch string(name) {
		case "Content-Type":
			if f.contentType == "" {
				f.contentType = contentType(value)
			}
		case "Content-Length":
			n, ok := parseLength(value)
			if !ok || n > maxFrameBody {
				return f, errFrameLength
			}
			length = n
		case "Reply-Text":
			if f.replyText == "" {
				f.replyText = string(value)
			}
		}
	}
	if f.contentType != ctEventPlain {
		if _, err := r.br.Discard(length); err != nil {
			return f, unexpected(err)
		}
		return f, nil
	}
	var err error
	f.body, err = r.readBody(length)
	return f, err
}

// readLine returns one line without its LF (or CR LF). The slice is valid
// until the next read.
func (r *frameReader) readLine() ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull:
		return nil, errLineTooLong
	case err == io.EOF && len(line) > 0:
		return nil, io.ErrUnexpectedEOF
	case err != nil:
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// readBody reads an n-byte body (n <= maxFrameBody): in place when it fits
// the read buffer, else into scratch, grown only as bytes actually arrive.
func (r *frameReader) readBody(n int) ([]byte, error) {
	if n <= r.br.Size() {
		b, err := r.br.Peek(n)
		if err != nil {
			return nil, unexpected(err)
		}
		r.discard = n
		return b, nil
	}
	b := r.scratch[:0]
	for len(b) < n {
		if len(b) == cap(b) {
			nb := make([]byte, len(b), min(n, max(2*cap(b), readBufferSize)))
			copy(nb, b)
			b = nb
		}
		m, err := io.ReadFull(r.br, b[len(b):min(n, cap(b))])
		b = b[:len(b)+m]
		if err != nil {
			r.scratch = b[:0]
			return nil, unexpected(err)
		}
	}
	r.scratch = b[:0]
	return b, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// contentType returns the constant for a known content type, so reading a
// frame allocates nothing.
func contentType(v []byte) string {
	switch string(v) {
	case ctEventPlain:
		return ctEventPlain
	case ctCommandReply:
		return ctCommandReply
	case ctAuthRequest:
		return ctAuthRequest
	case ctDisconnect:
		return ctDisconnect
	case ctRudeRejection:
		return ctRudeRejection
	}
	if len(v) > 64 {
		v = v[:64]
	}
	return string(v)
}

// splitHeader splits `Name: value` at the first colon and trims the value
// as textproto does; ok is false for a line without a colon or a name.
func splitHeader(line []byte) (name, value []byte, ok bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return nil, nil, false
	}
	return line[:i], bytes.Trim(line[i+1:], " \t\r"), true
}

// parseLength parses a non-negative decimal length of at most 8 digits.
func parseLength(v []byte) (int, bool) {
	if len(v) == 0 || len(v) > 8 {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// headersByLen indexes headerNames by length, for lookupHeader.
var headersByLen = func() []headerBucket {
	var t []headerBucket
	for h, name := range headerNames {
		if len(t) <= len(name) {
			t = append(t, make([]headerBucket, len(name)+1-len(t))...)
		}
		b := &t[len(name)]
		b.hint |= 1 << (name[len(name)-1] & 63)
		b.headers = append(b.headers, header(h))
	}
	return t
}()

// headerBucket holds the kept headers of one name length. hint has bit
// (last byte mod 64) set for each, which rejects most of an event's 150-odd
// header lines with one test.
type headerBucket struct {
	hint    uint64
	headers []header
}

// lookupHeader finds a header callgate keeps by its name on the wire.
func lookupHeader(name []byte) (header, bool) {
	if len(name) == 0 || len(name) >= len(headersByLen) {
		return 0, false
	}
	b := &headersByLen[len(name)]
	if b.hint&(1<<(name[len(name)-1]&63)) == 0 {
		return 0, false
	}
	for _, h := range b.headers {
		if string(name) == headerNames[h] {
			return h, true
		}
	}
	return 0, false
}

// eventParser parses text/event-plain bodies. The decoded values live in a
// buffer it reuses until event copies them out. Not safe for concurrent use.
type eventParser struct {
	buf   []byte
	spans [numHeaders]span
	seen  uint32 // bit h: header h was set (the first occurrence wins)
	body  span
}

// parse reads an event body. It fails only when the inner Content-Length
// is invalid or longer than what follows it; the headers are then parsed.
func (p *eventParser) parse(b []byte) error {
	p.buf, p.spans, p.seen, p.body = p.buf[:0], [numHeaders]span{}, 0, span{}
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 {
			break // the headers end; b is the body
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			continue // not `Name: value`: skip the line, keep the event
		}
		h, ok := lookupHeader(line[:i])
		if !ok || p.seen&(1<<h) != 0 {
			continue
		}
		p.seen |= 1 << h
		lo := len(p.buf)
		p.buf = appendUnescaped(p.buf, bytes.Trim(line[i+1:], " \t"))
		p.spans[h] = span{uint32(lo), uint32(len(p.buf))}
	}
	if p.seen&(1<<hContentLength) == 0 {
		return nil
	}
	n, ok := parseLength(p.value(hContentLength))
	if !ok || n > len(b) {
		return errEventBodyLen
	}
	lo := len(p.buf)
	p.buf = append(p.buf, b[:n]...)
	p.body = span{uint32(lo), uint32(len(p.buf))}
	return nil
}

// value returns a header's decoded value from the last parse; valid until
// the next.
func (p *eventParser) value(h header) []byte { return p.buf[p.spans[h].lo:p.spans[h].hi] }

// event returns the last parsed event as a value of its own.
func (p *eventParser) event() event {
	return event{data: string(p.buf), spans: p.spans, body: p.body}
}

// appendUnescaped appends v URL-decoded with url.PathUnescape's rules ('+'
// stays '+'), or v unchanged if it holds a malformed escape: eslgo's
// GetHeader returns "" then, which loses the value.
func appendUnescaped(dst, v []byte) []byte {
	i := bytes.IndexByte(v, '%')
	if i < 0 {
		return append(dst, v...)
	}
	for j := i; j < len(v); j++ {
		if v[j] == '%' && (j+2 >= len(v) || !ishex(v[j+1]) || !ishex(v[j+2])) {
			return append(dst, v...)
		}
	}
	dst = append(dst, v[:i]...)
	for j := i; j < len(v); {
		if v[j] == '%' {
			dst = append(dst, unhex(v[j+1])<<4|unhex(v[j+2]))
			j += 3
			continue
		}
		dst = append(dst, v[j])
		j++
	}
	return dst
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}
