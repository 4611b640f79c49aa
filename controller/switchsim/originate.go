package switchsim

import (
	"strconv"
	"strings"
	"time"
)

const originateUsage = "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]\n"

// Var is one channel variable from an originate's {…} or […] block.
type Var struct{ Name, Value string }

// Originate is an originate command as FreeSWITCH reads it.
type Originate struct {
	Vars     []Var  // {…} then […] variables, in order
	Endpoint string // dial string after the variable blocks, e.g. loopback/1001/cgcap
	App      string // application run once answered ("park" for &park()); "" for an extension
	AppData  string
	Exten    string // extension to transfer to when App is ""
	CIDName  string // positional caller ID name ("" when absent or undef)
	CIDNum   string
	Timeout  int // positional timeout in seconds, 0 when absent
}

// ParseOriginate parses the arguments of "originate" like mod_commands and
// switch_ivr_originate: arguments split on blanks (quotes group, backslash
// escapes), then the variable blocks of the dial string split on commas
// (quotes group, "\," escapes), then "name=value" pairs. It returns the
// api body to answer with when the arguments are unusable.
func ParseOriginate(arg string) (Originate, string) {
	argv := separate(arg, ' ', 10)
	if len(argv) < 2 || len(argv) > 7 {
		return Originate{}, originateUsage
	}
	for i := range argv {
		if strings.EqualFold(argv[i], "undef") {
			argv[i] = ""
		}
	}
	var o Originate
	vars, endpoint, ok := splitDialString(argv[0])
	if !ok {
		return Originate{}, "-ERR INVALID_URL\n"
	}
	o.Vars, o.Endpoint = vars, endpoint
	exten := argv[1]
	if len(exten) > 1 && exten[0] == '&' {
		app := exten[1:]
		if e := strings.IndexByte(app, ')'); e >= 0 {
			app = app[:e]
		}
		if p := strings.IndexByte(app, '('); p >= 0 {
			o.AppData = app[p+1:]
			app = app[:p]
		}
		o.App = app
	} else {
		o.Exten = exten
	}
	if len(argv) > 4 {
		o.CIDName = argv[4]
	}
	if len(argv) > 5 {
		o.CIDNum = argv[5]
	}
	if len(argv) > 6 {
		o.Timeout = leadingInt(argv[6])
	}
	return o, ""
}

// splitDialString separates the <…>, {…} and […] variable blocks at the
// start of a dial string from the endpoint after them; ok is false when a
// block is not closed.
func splitDialString(dial string) (vars []Var, endpoint string, ok bool) {
	for _, br := range [][2]byte{{'<', '>'}, {'{', '}'}, {'[', ']'}} {
		dial = strings.TrimLeft(dial, " ")
		if dial == "" || dial[0] != br[0] {
			continue
		}
		end := findEndParen(dial, br[0], br[1])
		if end < 0 {
			return nil, "", false
		}
		for _, kv := range separate(dial[1:end], ',', 1024) {
			if nv := separate(kv, '=', 2); len(nv) == 2 {
				vars = append(vars, Var{nv[0], nv[1]})
			}
		}
		dial = dial[end+1:]
	}
	return vars, dial, true
}

// findEndParen is switch_find_end_paren: the index of the bracket closing
// the one at s[0], honouring nesting, or -1.
func findEndParen(s string, open, close byte) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == open && (open != close || i == 0):
			depth++
		case s[i] == close:
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// separate is switch_separate_string: split on delim (runs of blanks when
// delim is ' '), single quotes group, backslash escapes, then each token is
// cleaned (quotes and escapes removed, surrounding blanks trimmed). At most
// max tokens; the last one keeps the rest of the string.
func separate(buf string, delim byte, max int) []string {
	if len(buf) >= 4 && buf[0] == '^' && buf[1] == '^' {
		delim, buf = buf[2], buf[3:]
	}
	var raw []string
	if delim == ' ' {
		raw = splitBlank(buf, max)
	} else {
		raw = splitDelim(buf, delim, max)
	}
	for i := range raw {
		if delim == ' ' {
			raw[i] = cleanupToken(raw[i], 0)
		} else {
			raw[i] = cleanupToken(raw[i], delim)
		}
	}
	return raw
}

// splitDelim is separate_string_char_delim before cleanup: a quote toggles
// grouping only when another quote follows, and once max tokens have
// started the last one runs to the end of buf.
func splitDelim(buf string, delim byte, max int) []string {
	var starts, ends []int
	inside, finding := false, false
	for i := 0; i < len(buf) && len(starts) < max; {
		if !finding {
			starts, ends = append(starts, i), append(ends, len(buf))
			finding = true
			continue
		}
		switch c := buf[i]; {
		case c == '\\':
			i++
		case c == '\'' && (inside || strings.IndexByte(buf[i+1:], '\'') >= 0):
			inside = !inside
		case c == delim && !inside:
			ends[len(ends)-1] = i
			finding = false
		}
		i++
	}
	return tokens(buf, starts, ends)
}

// splitBlank is separate_string_blank_delim before cleanup: runs of blanks
// separate, every quote toggles grouping.
func splitBlank(buf string, max int) []string {
	const (
		stStart = iota
		stSkipInitial
		stFind
		stSkipEnding
	)
	var starts, ends []int
	state, inside := stStart, false
	for i := 0; i < len(buf) && len(starts) < max; {
		switch state {
		case stStart:
			starts, ends = append(starts, i), append(ends, len(buf))
			state = stSkipInitial
		case stSkipInitial:
			if buf[i] == ' ' {
				i++
			} else {
				state = stFind
			}
		case stFind:
			switch buf[i] {
			case '\\':
				i++
			case '\'':
				inside = !inside
			case ' ':
				if !inside {
					ends[len(ends)-1] = i
					state = stSkipEnding
				}
			}
			i++
		case stSkipEnding:
			if buf[i] == ' ' {
				i++
			} else {
				state = stStart
			}
		}
	}
	return tokens(buf, starts, ends)
}

func tokens(buf string, starts, ends []int) []string {
	out := make([]string, len(starts))
	for k := range starts {
		e := ends[k]
		if e > len(buf) {
			e = len(buf)
		}
		out[k] = buf[starts[k]:e]
	}
	return out
}

func unescapeChar(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 's':
		return ' '
	}
	return c
}

// cleanupToken is cleanup_separated_string.
func cleanupToken(tok string, delim byte) string {
	i := 0
	for i < len(tok) && tok[i] == ' ' {
		i++
	}
	dest := make([]byte, 0, len(tok)-i)
	end, inside := -1, false
	for p := i; p < len(tok); p++ {
		if tok[p] == '\\' && p+1 < len(tok) {
			e := tok[p+1]
			if e == '\'' || e == '"' || (delim != 0 && e == delim) || e == '\\' || unescapeChar(e) != e {
				dest = append(dest, unescapeChar(e))
				end = len(dest)
				p++
				continue
			}
		}
		if tok[p] == '\'' && (inside || strings.IndexByte(tok[p+1:], '\'') >= 0) {
			inside = !inside
			if inside {
				end = len(dest)
			}
			continue
		}
		dest = append(dest, tok[p])
		if tok[p] != ' ' || inside {
			end = len(dest)
		}
	}
	if end >= 0 {
		return string(dest[:end])
	}
	return string(dest)
}

// originateSpec is a parsed originate ready to start.
type originateSpec struct {
	job         *job
	o           Originate
	kind        legKind
	uuid        string
	number      string // destination (callee digits, no host)
	context     string
	chanName    string
	calleeNum   string
	sipProf     string
	sipHost     string
	gateway     string
	cidName     string
	cidNum      string
	origCidName string // Caller-Orig-Caller-ID-*: the caller ID, or a bridging channel's own
	origCidNum  string
	ani         string
	timeout     time.Duration
}

func (sp *originateSpec) sessions() int {
	if sp.kind == legLoopbackA {
		return 2
	}
	return 1
}

func (o Originate) variable(name string) string {
	v := ""
	for _, x := range o.Vars {
		if x.Name == name {
			v = x.Value
		}
	}
	return v
}

// planOriginate resolves the endpoint and caller ID. It returns an api body
// for an originate that fails before any channel exists.
func planOriginate(o Originate) (*originateSpec, string) {
	sp := &originateSpec{o: o, context: "default"}
	parts := strings.Split(o.Endpoint, "/")
	switch {
	case len(parts) >= 2 && parts[0] == "loopback" && parts[1] != "":
		sp.kind, sp.number = legLoopbackA, parts[1]
		if len(parts) > 2 && parts[2] != "" {
			sp.context = parts[2]
		}
		sp.chanName = "loopback/" + sp.number + "-a"
		sp.calleeNum = parts[len(parts)-1] // switch_sanitize_number keeps what follows the last '/'
	case len(parts) >= 4 && parts[0] == "sofia" && parts[1] == "gateway" && parts[2] != "" && parts[3] != "":
		sp.kind, sp.gateway, sp.sipProf = legSofia, parts[2], "external"
		sp.number, sp.sipHost = strings.Join(parts[3:], "/"), parts[2]
		sp.chanName = "sofia/external/" + sp.number
	case len(parts) >= 3 && parts[0] == "sofia" && parts[1] != "" && parts[2] != "":
		sp.kind, sp.sipProf = legSofia, parts[1]
		dest := strings.Join(parts[2:], "/")
		sp.number, sp.sipHost, _ = strings.Cut(dest, "@")
		if sp.sipHost == "" {
			sp.sipHost = "127.0.0.1"
		}
		sp.chanName = "sofia/" + sp.sipProf + "/" + dest
	case len(parts) == 2 && parts[0] == "error":
		return nil, "-ERR " + parseCause(parts[1]) + "\n"
	default:
		return nil, "-ERR CHAN_NOT_IMPLEMENTED\n"
	}
	if sp.kind == legSofia {
		sp.calleeNum = sp.number
	}
	sp.uuid = o.variable("origination_uuid")
	if sp.uuid == "" {
		sp.uuid = newUUID()
	}
	sp.cidName = firstNonEmpty(o.variable("origination_caller_id_name"), o.CIDName)
	sp.cidNum = firstNonEmpty(o.variable("origination_caller_id_number"), o.CIDNum, "0000000000")
	sp.origCidName, sp.origCidNum, sp.ani = sp.cidName, sp.cidNum, sp.cidNum
	secs := 60
	if o.Timeout > 0 {
		secs = o.Timeout
	}
	if t, err := strconv.Atoi(o.variable("originate_timeout")); err == nil && t > 0 {
		secs = t
	}
	sp.timeout = time.Duration(secs) * time.Second
	return sp, ""
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// spsState is FreeSWITCH's sessions-per-second budget, refilled each
// simulated second. Over budget, originates wait for the next second.
type spsState struct {
	total  int // 0: unlimited
	budget int
	window int64
	count  int // sessions started in the current window
	queue  []*originateSpec
	timer  Timer
}

// originate runs an originate job: parse, wait for the sessions-per-second
// budget, check the session limit, start the call. The result reaches the
// job when the call is answered or fails.
func (s *Sim) originate(j *job) {
	o, usage := ParseOriginate(j.arg)
	s.lock()
	defer s.unlock()
	s.originated++
	s.originates = append(s.originates, j.arg)
	s.wake()
	if usage != "" {
		s.finishJob(j, usage)
		return
	}
	sp, fail := planOriginate(o)
	if fail != "" {
		s.finishJob(j, fail)
		return
	}
	sp.job = j
	s.refillSPS()
	if len(s.sps.queue) == 0 && s.takeSPS(sp.sessions()) {
		s.startCall(sp)
		return
	}
	s.sps.queue = append(s.sps.queue, sp)
	s.armSPS()
}

func (s *Sim) refillSPS() {
	w := int64(s.now.Sub(s.started) / time.Second)
	if w != s.sps.window {
		s.sps.window, s.sps.budget, s.sps.count = w, s.sps.total, 0
	}
}

func (s *Sim) takeSPS(n int) bool {
	if s.sps.total > 0 {
		if s.sps.budget <= 0 {
			return false
		}
		s.sps.budget -= n
	}
	s.sps.count += n
	s.spsPeak.observe(s.now, s.sps.count)
	return true
}

// armSPS starts queued originates at the next simulated second.
func (s *Sim) armSPS() {
	if s.sps.timer != nil {
		return
	}
	next := s.started.Add(time.Duration(s.sps.window+1) * time.Second)
	s.sps.timer = s.afterFunc(next.Sub(s.now), func() {
		s.sps.timer = nil
		s.refillSPS()
		for len(s.sps.queue) > 0 && s.takeSPS(s.sps.queue[0].sessions()) {
			sp := s.sps.queue[0]
			s.sps.queue = s.sps.queue[1:]
			s.startCall(sp)
		}
		if len(s.sps.queue) > 0 {
			s.armSPS()
		}
	})
}
