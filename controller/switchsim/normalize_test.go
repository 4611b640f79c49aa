package switchsim

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// The normaliser turns a stream of ESL frames (captured from FreeSWITCH or
// produced by the simulator) into a form where only what may legitimately
// differ between two runs has been replaced: identifiers that are random
// (UUIDs become roles such as "loopback/1001-a#0"), clock readings, sequence
// numbers, host names and addresses, and counters of a switch's lifetime.
// Everything else — header names, their order, every other value with its
// URL or JSON encoding, framing — is kept and compared byte for byte.

var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// showRowRE finds the uuid and name of each row of "show channels/calls as
// json" (the only place some channels appear when no events are
// subscribed).
var showRowRE = regexp.MustCompile(`"uuid":"([0-9a-f-]{36})","direction":"[^"]*","created":"[^"]*","created_epoch":"[^"]*","name":"([^"]*)"`)

// normEvent is one event reduced to comparable lines.
type normEvent struct {
	name  string
	role  string // channel role, job role, or "" for events of no channel
	lines []string
}

// normStream is a normalised frame stream.
type normStream struct {
	replies []string    // non-event frames, in order
	events  []normEvent // in stream order
	order   []token     // every frame, for order projections
	group   map[string]string
}

// token is one frame in stream order: a reply (with the roles its command
// mentioned) or an event of a role.
type token struct {
	text     string
	role     string
	reply    bool
	mentions []string
}

var roleRefRE = regexp.MustCompile(`<([^<>@]+#\d+)>`)

func (s normStream) find(r string) string {
	for s.group[r] != "" && s.group[r] != r {
		r = s.group[r]
	}
	return r
}

func (s normStream) union(a, b string) {
	ra, rb := s.find(a), s.find(b)
	if ra != rb {
		s.group[ra] = rb
	}
}

type normalizer struct {
	roles    map[string]string            // uuid -> role (channels, jobs, core)
	local    map[string]map[string]string // channel role -> uuid -> per-channel name
	nameSeen map[string]int
	jobs     int
}

func newNormalizer() *normalizer {
	return &normalizer{roles: map[string]string{}, local: map[string]map[string]string{}, nameSeen: map[string]int{}}
}

func (n *normalizer) channelRole(uuid, name string) string {
	if r, ok := n.roles[uuid]; ok {
		return r
	}
	name, _ = urlDecode(name)
	r := name + "#" + strconv.Itoa(n.nameSeen[name])
	n.nameSeen[name]++
	n.roles[uuid] = r
	return r
}

// replaceUUIDs replaces every UUID in v by its role; UUIDs known to no one
// get a name local to the channel they appear in.
func (n *normalizer) replaceUUIDs(v, scope string) string {
	return uuidRE.ReplaceAllStringFunc(v, func(u string) string {
		if r, ok := n.roles[u]; ok {
			return "<" + r + ">"
		}
		m := n.local[scope]
		if m == nil {
			m = map[string]string{}
			n.local[scope] = m
		}
		if r, ok := m[u]; ok {
			return r
		}
		r := fmt.Sprintf("<uuid%d@%s>", len(m), scope)
		m[u] = r
		return r
	})
}

// eventHeaders returns an event's headers with values as on the wire
// (URL-encoded for plain, JSON-escaped for json).
func eventHeaders(f wireFrame) ([]Header, error) {
	switch f.contentType() {
	case "text/event-plain":
		var hs []Header
		head, body, _ := strings.Cut(f.body, "\n\n")
		for _, line := range strings.Split(head, "\n") {
			name, value, ok := strings.Cut(line, ": ")
			if !ok {
				return nil, fmt.Errorf("bad event line %q", line)
			}
			hs = append(hs, Header{name, value})
		}
		if body != "" {
			hs = append(hs, Header{"<body>", body})
		}
		return hs, nil
	case "text/event-json":
		return parseFlatJSON(f.body)
	}
	return nil, fmt.Errorf("unexpected event type %q", f.contentType())
}

// parseFlatJSON splits a flat JSON object of strings into (key, raw value)
// pairs, keeping duplicates and the escaping as written.
func parseFlatJSON(s string) ([]Header, error) {
	var out []Header
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return nil, fmt.Errorf("not a JSON object: %.40q", s)
	}
	s = s[1 : len(s)-1]
	str := func() (string, error) {
		if !strings.HasPrefix(s, `"`) {
			return "", fmt.Errorf("expected string at %.40q", s)
		}
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
			case '"':
				tok := s[1:i]
				s = s[i+1:]
				return tok, nil
			}
		}
		return "", fmt.Errorf("unterminated string")
	}
	for s != "" {
		k, err := str()
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(s, ":") {
			return nil, fmt.Errorf("expected ':' at %.40q", s)
		}
		s = s[1:]
		v, err := str()
		if err != nil {
			return nil, err
		}
		out = append(out, Header{k, v})
		s = strings.TrimPrefix(s, ",")
	}
	return out, nil
}

func urlDecode(v string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '%' && i+2 < len(v) {
			x, err := strconv.ParseUint(v[i+1:i+3], 16, 8)
			if err != nil {
				return v, err
			}
			b.WriteByte(byte(x))
			i += 2
			continue
		}
		b.WriteByte(v[i])
	}
	return b.String(), nil
}

// secondFields are whole-second durations: their value depends on where
// second boundaries fall, so only zero versus non-zero is compared.
var secondFields = map[string]bool{
	"variable_duration": true, "variable_billsec": true, "variable_progresssec": true,
	"variable_answersec": true, "variable_waitsec": true, "variable_progress_mediasec": true,
	"variable_flow_billsec": true, "variable_record_seconds": true,
}

// normalizeValue replaces what legitimately differs in one header value.
func (n *normalizer) normalizeValue(name, v, scope string) string {
	zeroOr := func(tag string) string {
		if v == "0" {
			return "0"
		}
		return tag
	}
	switch {
	case name == "Event-Date-Local" || name == "Event-Date-GMT" || name == "Event-Date-Timestamp":
		return "<date>"
	case name == "Event-Sequence":
		return "<seq>"
	case name == "FreeSWITCH-Hostname" || name == "FreeSWITCH-Switchname":
		return "<host>"
	case name == "FreeSWITCH-IPv4" || name == "FreeSWITCH-IPv6":
		return "<ip>"
	case strings.HasPrefix(name, "Caller-") && strings.HasSuffix(name, "-Time"):
		return zeroOr("<time>")
	case name == "variable_session_id":
		return "<session>"
	case strings.HasSuffix(name, "_stamp") && strings.HasPrefix(name, "variable_"):
		return "<stamp>"
	case strings.HasSuffix(name, "epoch") && strings.HasPrefix(name, "variable_"):
		return zeroOr("<epoch>")
	case secondFields[name]:
		return zeroOr("<secs>")
	case strings.HasPrefix(name, "variable_") && (strings.HasSuffix(name, "msec") ||
		strings.HasSuffix(name, "usec") || name == "variable_mduration" || name == "variable_uduration"):
		return "<sub-second duration>"
	case name == "variable_record_file_size" || name == "variable_record_samples" || name == "variable_record_ms":
		return "<record size>"
	}
	return n.replaceUUIDs(v, scope)
}

var (
	upLineRE     = regexp.MustCompile(`\d+ (year|day|hour|minute|second|millisecond|microsecond)s?`)
	sessionsRE   = regexp.MustCompile(`(?m)^\d+ session\(s\)( since startup| - peak \d+, last 5min \d+ | per Sec out of max (\d+), peak \d+, last 5min \d+ )$`)
	idleCPURE    = regexp.MustCompile(`(?m)^min idle cpu [0-9.]+/[0-9.]+$`)
	showTimeRE   = regexp.MustCompile(`"(created|created_epoch|b_created|b_created_epoch|call_created_epoch)":"[^"]+"`)
	showHostRE   = regexp.MustCompile(`"hostname":"[^"]*"`)
	spsSessionRE = regexp.MustCompile(`\d+`)
)

// normalizeBody normalises an api/response body: uptime and session
// counters of "status", creation times and host of "show … as json".
func (n *normalizer) normalizeBody(b string) string {
	if strings.HasPrefix(b, "UP ") {
		b = upLineRE.ReplaceAllString(b, "<n> $1(s)")
		b = sessionsRE.ReplaceAllStringFunc(b, func(line string) string {
			m := sessionsRE.FindStringSubmatch(line)
			out := spsSessionRE.ReplaceAllString(line, "<n>")
			if m[2] != "" {
				out = strings.Replace(out, "max <n>", "max "+m[2], 1)
			}
			return out
		})
		b = idleCPURE.ReplaceAllString(b, "min idle cpu <cpu>")
	}
	b = showTimeRE.ReplaceAllString(b, `"$1":"<time>"`)
	b = showHostRE.ReplaceAllString(b, `"hostname":"<host>"`)
	return n.replaceUUIDs(b, "api")
}

// normalize reduces a frame stream. Channel roles come from Channel-Name
// (and rows of "show … as json"), job roles from the order of Job-UUIDs in
// bgapi replies. sends are the commands the stream answers, in order (reply
// i+1 answers sends[i]; the first frame is the auth request).
func normalize(frames []wireFrame, sends []string) (normStream, error) {
	n := newNormalizer()
	for _, f := range frames {
		if id := f.get("Job-UUID"); id != "" {
			if _, ok := n.roles[id]; !ok {
				n.roles[id] = "job#" + strconv.Itoa(n.jobs)
				n.jobs++
			}
		}
		if f.isEvent() {
			hs, err := eventHeaders(f)
			if err != nil {
				return normStream{}, err
			}
			var uuid, name string
			for _, h := range hs {
				switch h.Name {
				case "Core-UUID":
					n.roles[h.Value] = "core"
				case "Unique-ID":
					uuid = h.Value
				case "Channel-Name":
					name = h.Value
				}
			}
			if uuid != "" && name != "" {
				n.channelRole(uuid, name)
			}
			continue
		}
		for _, m := range showRowRE.FindAllStringSubmatch(f.body, -1) {
			n.channelRole(m[1], m[2])
		}
	}
	out := normStream{group: map[string]string{}}
	replyNo := 0
	for _, f := range frames {
		if !f.isEvent() {
			r := n.normalizeReply(f)
			out.replies = append(out.replies, r)
			tok := token{text: "reply " + strings.SplitN(r, "\n", 2)[0] + " " + firstBodyLine(f), reply: true}
			if replyNo > 0 && len(sends) > 0 {
				send := sends[min(replyNo-1, len(sends)-1)]
				for _, m := range roleRefRE.FindAllStringSubmatch(n.replaceUUIDs(send, "send"), -1) {
					tok.mentions = append(tok.mentions, m[1])
				}
			}
			replyNo++
			out.order = append(out.order, tok)
			continue
		}
		hs, _ := eventHeaders(f)
		ev := normEvent{}
		scope := ""
		for _, h := range hs {
			switch h.Name {
			case "Event-Name":
				ev.name = h.Value
			case "Unique-ID":
				scope = n.roles[h.Value]
			case "Job-UUID":
				if scope == "" {
					scope = n.roles[h.Value]
				}
			}
		}
		ev.role = scope
		ev.lines = append(ev.lines, "Content-Type: "+f.contentType())
		for _, h := range hs {
			line := h.Name + ": " + n.normalizeValue(h.Name, h.Value, scope)
			ev.lines = append(ev.lines, line)
			for _, m := range roleRefRE.FindAllStringSubmatch(line, -1) {
				if scope != "" {
					out.union(scope, m[1])
				}
			}
		}
		out.events = append(out.events, ev)
		out.order = append(out.order, token{text: "event " + ev.name + " " + ev.role, role: ev.role})
	}
	return out, nil
}

func firstBodyLine(f wireFrame) string {
	line, _, _ := strings.Cut(f.body, "\n")
	if len(line) > 40 {
		line = line[:40]
	}
	return uuidRE.ReplaceAllString(line, "<uuid>")
}

// normalizeReply renders a non-event frame with Content-Length recomputed
// over the normalised body (a wrong length would already have broken
// framing when the stream was read).
func (n *normalizer) normalizeReply(f wireFrame) string {
	body := f.body
	if f.contentType() == "api/response" {
		body = n.normalizeBody(body)
	}
	var b strings.Builder
	for _, h := range f.headers {
		v := h.Value
		if h.Name == "Content-Length" {
			v = strconv.Itoa(len(body))
		}
		b.WriteString(h.Name + ": " + n.replaceUUIDs(v, "reply") + "\n")
	}
	b.WriteString("\n" + body)
	return b.String()
}

// byRole groups the normalised events of each channel (and job), keeping
// their order.
func (s normStream) byRole() map[string][]string {
	out := map[string][]string{}
	for _, e := range s.events {
		out[e.role] = append(out[e.role], strings.Join(e.lines, "\n"))
	}
	return out
}

// projection is the order of one channel's events relative to the replies
// to commands about its call (the originate, sendmsg, uuid_*) and its
// call's background job: the order FreeSWITCH itself guarantees. Events of
// other calls may interleave differently from run to run and are left out.
func (s normStream) projection(role string) []string {
	var out []string
	g := s.find(role)
	for _, tok := range s.order {
		switch {
		case tok.reply:
			for _, m := range tok.mentions {
				if s.find(m) == g {
					out = append(out, tok.text)
					break
				}
			}
		case tok.role == role, strings.HasPrefix(tok.role, "job#") && s.find(tok.role) == g:
			out = append(out, tok.text)
		}
	}
	return out
}

func (s normStream) roles() []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range s.events {
		if e.role != "" && !seen[e.role] && !strings.HasPrefix(e.role, "job#") {
			seen[e.role] = true
			out = append(out, e.role)
		}
	}
	sort.Strings(out)
	return out
}
