package switchsim

import (
	"strconv"
	"sync"
	"time"
)

// urlUnsafe is FreeSWITCH's SWITCH_URL_UNSAFE: with every byte below ' ' or
// above '~' these are the bytes switch_url_encode escapes in event values.
const urlUnsafe = "\r\n #%&+:;<=>?@[\\]^`{|}\""

var (
	needsEscape [256]bool
	isUpperHex  [256]bool
)

const upperHex = "0123456789ABCDEF"

func init() {
	for c := 0; c < 256; c++ {
		needsEscape[c] = c < ' ' || c > '~'
	}
	for i := 0; i < len(urlUnsafe); i++ {
		needsEscape[urlUnsafe[i]] = true
	}
	for i := 0; i < len(upperHex); i++ {
		isUpperHex[upperHex[i]] = true
	}
}

// appendURLEncoded appends v escaped exactly like switch_url_encode (which
// events use with double_encode off): a '%' already followed by two
// upper-case hex digits is kept, so "%2B" stays "%2B" while "%(" becomes
// "%25(".
func appendURLEncoded(dst []byte, v string) []byte {
	start := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !needsEscape[c] {
			continue
		}
		if c == '%' && i+2 < len(v) && isUpperHex[v[i+1]] && isUpperHex[v[i+2]] {
			continue
		}
		dst = append(dst, v[start:i]...)
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&0x0f])
		start = i + 1
	}
	return append(dst, v[start:]...)
}

// urlEncode is appendURLEncoded for a string result.
func urlEncode(v string) string {
	for i := 0; i < len(v); i++ {
		if needsEscape[v[i]] {
			return string(appendURLEncoded(make([]byte, 0, len(v)+16), v))
		}
	}
	return v
}

// appendJSONString appends v as a JSON string the way cJSON prints it:
// quote, backslash and control characters escaped, everything else
// (including '/', '<', '>' and bytes above 0x7f) verbatim.
func appendJSONString(dst []byte, v string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, v[start:i]...)
		switch c {
		case '"':
			dst = append(dst, '\\', '"')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', upperHexLower(c>>4), upperHexLower(c&0x0f))
		}
		start = i + 1
	}
	dst = append(dst, v[start:]...)
	return append(dst, '"')
}

func upperHexLower(n byte) byte { return "0123456789abcdef"[n&0x0f] }

// appendXMLEscaped appends v with the five XML special characters escaped.
func appendXMLEscaped(dst []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '&':
			dst = append(dst, "&amp;"...)
		case '<':
			dst = append(dst, "&lt;"...)
		case '>':
			dst = append(dst, "&gt;"...)
		case '"':
			dst = append(dst, "&quot;"...)
		case '\'':
			dst = append(dst, "&apos;"...)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// bufPool recycles the scratch buffers events are serialised into.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 8192); return &b }}

// serializePlain renders e as a complete text/event-plain frame, outer
// Content-Length included, byte for byte like switch_event_serialize.
func serializePlain(e *event) []byte {
	bp := bufPool.Get().(*[]byte)
	body := (*bp)[:0]
	for i := range e.headers {
		h := &e.headers[i]
		body = append(body, h.name...)
		body = append(body, ':', ' ')
		body = appendURLEncoded(body, h.value)
		body = append(body, '\n')
	}
	if e.body != "" {
		body = append(body, "Content-Length: "...)
		body = strconv.AppendInt(body, int64(len(e.body)), 10)
		body = append(body, '\n', '\n')
		body = append(body, e.body...)
	} else {
		body = append(body, '\n')
	}
	out := frameWithLength(body, "text/event-plain")
	*bp = body
	bufPool.Put(bp)
	return out
}

// serializeJSON renders e as a text/event-json frame like
// switch_event_serialize_json: one flat object in header order (duplicate
// names kept), the body as "Content-Length" and "_body".
func serializeJSON(e *event) []byte {
	bp := bufPool.Get().(*[]byte)
	body := append((*bp)[:0], '{')
	for i := range e.headers {
		if i > 0 {
			body = append(body, ',')
		}
		body = appendJSONString(body, e.headers[i].name)
		body = append(body, ':')
		body = appendJSONString(body, e.headers[i].value)
	}
	if e.body != "" {
		body = append(body, `,"Content-Length":"`...)
		body = strconv.AppendInt(body, int64(len(e.body)), 10)
		body = append(body, `","_body":`...)
		body = appendJSONString(body, e.body)
	}
	body = append(body, '}')
	out := frameWithLength(body, "text/event-json")
	*bp = body
	bufPool.Put(bp)
	return out
}

// serializeXML renders e as a text/event-xml frame in the shape of
// switch_event_xmlize (not covered by a captured transcript).
func serializeXML(e *event) []byte {
	bp := bufPool.Get().(*[]byte)
	body := append((*bp)[:0], "<event>\n  <headers>\n"...)
	for i := range e.headers {
		h := &e.headers[i]
		body = append(body, "    <"...)
		body = append(body, h.name...)
		body = append(body, '>')
		body = appendXMLEscaped(body, urlEncode(h.value))
		body = append(body, "</"...)
		body = append(body, h.name...)
		body = append(body, ">\n"...)
	}
	body = append(body, "  </headers>\n"...)
	if e.body != "" {
		body = append(body, "  <Content-Length>"...)
		body = strconv.AppendInt(body, int64(len(e.body)), 10)
		body = append(body, "</Content-Length>\n  <body>"...)
		body = appendXMLEscaped(body, e.body)
		body = append(body, "</body>\n"...)
	}
	body = append(body, "</event>\n"...)
	out := frameWithLength(body, "text/event-xml")
	*bp = body
	bufPool.Put(bp)
	return out
}

// frameWithLength prefixes body with the outer event framing mod_event_socket
// writes: Content-Length first, then Content-Type.
func frameWithLength(body []byte, contentType string) []byte {
	out := make([]byte, 0, len(body)+64)
	out = append(out, "Content-Length: "...)
	out = strconv.AppendInt(out, int64(len(body)), 10)
	out = append(out, "\nContent-Type: "...)
	out = append(out, contentType...)
	out = append(out, '\n', '\n')
	return append(out, body...)
}

// dateCache formats the Event-Date-* headers once per second.
type dateCache struct {
	sec   int64
	local string
	gmt   string
}

func (d *dateCache) get(t time.Time) (local, gmt string) {
	if s := t.Unix(); s != d.sec || d.local == "" {
		d.sec = s
		u := t.UTC()
		d.local = u.Format("2006-01-02 15:04:05")
		d.gmt = u.Format("Mon, 02 Jan 2006 15:04:05 GMT")
	}
	return d.local, d.gmt
}

// uepoch formats t as FreeSWITCH's microsecond epoch; the zero time is "0".
func uepoch(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatInt(t.UnixMicro(), 10)
}

// epoch formats t in whole seconds; the zero time is "0".
func epoch(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatInt(t.Unix(), 10)
}

// stamp formats t like FreeSWITCH's *_stamp variables.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }
