package switchsim

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Limits on what a client may send in one command.
const (
	maxCommandHeader = 64 << 10
	maxCommandBody   = 1 << 20
)

// ErrCommandTooLarge means a client sent a command frame over the limits;
// the simulator drops such a connection.
var ErrCommandTooLarge = errors.New("switchsim: command frame too large")

// Header is one "Name: value" line of a command.
type Header struct{ Name, Value string }

// Command is one command frame as an ESL client sends it: a command line,
// optional header lines, and a body when a Content-Length header is present.
type Command struct {
	Line    string   // e.g. "api status" or "sendmsg <uuid>"
	Headers []Header // in the order sent
	Body    string
}

// Header returns the first header with the name, case-insensitively.
func (c Command) Header(name string) string {
	for _, h := range c.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// ParseCommand parses the first command frame in b the way
// mod_event_socket's read_packet does: a frame ends at two line feeds, a CR
// neither ends a line nor breaks a run of line feeds (so "\r\n\r\n" works),
// each line is cut at its first CR, and a Content-Length header announces a
// body that follows the blank line. Blank lines before a frame are skipped.
//
// It returns the command and the number of bytes consumed. n == 0 with a nil
// error means b does not yet hold a whole frame. A Command with an empty Line
// and n > 0 means only blank lines were consumed. It returns
// ErrCommandTooLarge for a frame over the size limits.
func ParseCommand(b []byte) (cmd Command, n int, err error) {
	start := 0
	for start < len(b) && (b[start] == '\r' || b[start] == '\n') {
		start++
	}
	end, feeds := -1, 0
	for i := start; i < len(b); i++ {
		switch b[i] {
		case '\n':
			feeds++
		case '\r':
		default:
			feeds = 0
		}
		if feeds == 2 {
			end = i + 1
			break
		}
	}
	if end < 0 {
		if len(b)-start > maxCommandHeader {
			return Command{}, 0, ErrCommandTooLarge
		}
		if start == len(b) && start > 0 {
			return Command{}, start, nil
		}
		return Command{}, 0, nil
	}
	if end-start > maxCommandHeader {
		return Command{}, 0, ErrCommandTooLarge
	}
	block := string(b[start:end])
	bodyLen := 0
	first := true
	for block != "" {
		line, rest, _ := strings.Cut(block, "\n")
		block = rest
		if i := strings.IndexByte(line, '\r'); i >= 0 {
			line = line[:i]
		}
		if first {
			cmd.Line, first = line, false
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			continue
		}
		value = strings.TrimLeft(value, " ")
		cmd.Headers = append(cmd.Headers, Header{Name: name, Value: value})
		if strings.EqualFold(name, "Content-Length") {
			bodyLen = leadingInt(value)
		}
	}
	if bodyLen > maxCommandBody {
		return Command{}, 0, ErrCommandTooLarge
	}
	if bodyLen > 0 {
		if len(b) < end+bodyLen {
			return Command{}, 0, nil
		}
		cmd.Body = string(b[end : end+bodyLen])
		end += bodyLen
	}
	return cmd, end, nil
}

// leadingInt is C's atoi: the leading decimal digits of s, 0 if none.
func leadingInt(s string) int {
	s = strings.TrimLeft(s, " \t")
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	n := 0
	for i := 0; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if n > 1<<30 {
			break
		}
		n = n*10 + int(s[i]-'0')
	}
	if neg {
		return -n
	}
	return n
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func commandReply(text string) []byte {
	return []byte("Content-Type: command/reply\nReply-Text: " + text + "\n\n")
}

// handle runs one command. It returns errStop when the connection ends.
func (c *conn) handle(cmd Command) error {
	s := c.s
	line := cmd.Line
	if hasPrefixFold(line, "exit") || strings.HasPrefix(line, "...") {
		c.finish("+OK bye")
		return errStop
	}
	if !c.authed {
		switch {
		case hasPrefixFold(line, "auth "):
			if line[5:] == s.cfg.Password {
				c.authed = true
				c.pushReply(commandReply("+OK accepted"))
				return nil
			}
			c.finish("-ERR invalid")
			return errStop
		case hasPrefixFold(line, "userauth "):
			c.finish("-ERR invalid")
			return errStop
		}
		c.pushReply(commandReply("-ERR command not found"))
		return nil
	}
	c.hold()
	reply := c.dispatch(cmd)
	s.mu.Lock()
	delay, dropAfter := s.faults.ReplyDelay, s.faults.DropAfterEvents
	s.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	c.release(reply, dropAfter)
	return nil
}

// finish sends a last reply and the disconnect notice, then closes.
func (c *conn) finish(reply string) {
	c.s.removeConn(c)
	c.pushReply(commandReply(reply))
	c.pushReply([]byte(disconnectNotice))
	c.closeGracefully()
}

// dispatch runs an authenticated command and returns its reply frame,
// checking command names in mod_event_socket's order.
func (c *conn) dispatch(cmd Command) []byte {
	line := cmd.Line
	switch {
	case hasPrefixFold(line, "filter "):
		return commandReply(c.filterCommand(line[len("filter "):]))
	case hasPrefixFold(line, "divert_events"):
		return commandReply("-ERR not controlling a session.")
	case hasPrefixFold(line, "sendmsg"):
		return commandReply(c.s.sendmsg(cmd))
	case hasPrefixFold(line, "sendevent"):
		return commandReply("+OK " + newUUID())
	case hasPrefixFold(line, "api "):
		return c.api(line[len("api "):])
	case hasPrefixFold(line, "bgapi "):
		return c.bgapi(line[len("bgapi "):], cmd.Header("Job-UUID"))
	case hasPrefixFold(line, "log"):
		level := strings.TrimSpace(line[3:])
		if level == "" {
			level = "debug"
		}
		return commandReply("+OK log level " + level + " [7]")
	case hasPrefixFold(line, "linger"), hasPrefixFold(line, "nolinger"):
		return commandReply("-ERR not controlling a session")
	case hasPrefixFold(line, "nolog"):
		return commandReply("-ERR not loging")
	case hasPrefixFold(line, "event"):
		return commandReply(c.eventCommand(line[len("event"):]))
	case hasPrefixFold(line, "nixevent"):
		return commandReply(c.nixeventCommand(line[len("nixevent"):]))
	case hasPrefixFold(line, "noevents"):
		return commandReply(c.noeventsCommand())
	}
	return commandReply("-ERR command not found")
}

var formatNames = [...]string{formatPlain: "plain", formatJSON: "json", formatXML: "xml"}

// eventCommand handles "event [plain|json|xml] <names...>".
func (c *conn) eventCommand(rest string) string {
	s := c.s
	sp := strings.IndexByte(rest, ' ')
	s.mu.Lock()
	defer s.mu.Unlock()
	keys, custom := 0, false
	if sp >= 0 {
		for i, tok := range strings.Split(rest[sp+1:], " ") {
			if i == 0 {
				switch strings.ToLower(tok) {
				case "plain":
					c.format = formatPlain
					continue
				case "json":
					c.format = formatJSON
					continue
				case "xml":
					c.format = formatXML
					continue
				}
			}
			if custom {
				continue // CUSTOM subclasses: the simulator fires none
			}
			name, ok := lookupEventName(tok)
			if !ok {
				continue
			}
			keys++
			if name == "ALL" {
				c.all = true
			}
			c.events[name] = true
			custom = name == "CUSTOM"
		}
	}
	if keys == 0 {
		return "-ERR no keywords supplied"
	}
	c.listening = true
	return "+OK event listener enabled " + formatNames[c.format]
}

// nixeventCommand handles "nixevent <names...>".
func (c *conn) nixeventCommand(rest string) string {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := 0
	if sp := strings.IndexByte(rest, ' '); sp >= 0 {
		for _, tok := range strings.Split(rest[sp+1:], " ") {
			name, ok := lookupEventName(tok)
			if !ok {
				continue
			}
			keys++
			if name == "ALL" {
				c.all = false
				clear(c.events)
				continue
			}
			if c.all {
				c.all = false
				for n := range eventNames {
					c.events[n] = n != "ALL"
				}
			}
			delete(c.events, name)
		}
	}
	if keys == 0 {
		return "-ERR no keywords supplied"
	}
	c.listening = true
	return "+OK events nixed"
}

// noeventsCommand stops all event delivery and drops undelivered events.
func (c *conn) noeventsCommand() string {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	c.mu.Lock()
	c.held = nil
	c.mu.Unlock()
	if !c.listening {
		return "-ERR not listening for events"
	}
	c.listening, c.all = false, false
	clear(c.events)
	return "+OK no longer listening for events"
}

// filterCommand handles "filter <header> <value>", "filter add ...",
// "filter delete <header> [<value>]" and "filter delete all".
func (c *conn) filterCommand(arg string) string {
	s := c.s
	arg = strings.TrimLeft(arg, " ")
	name, value, hasValue := strings.Cut(arg, " ")
	s.mu.Lock()
	defer s.mu.Unlock()
	if strings.EqualFold(name, "delete") && hasValue {
		name, value, _ = strings.Cut(value, " ")
		if strings.EqualFold(name, "all") {
			c.filters = nil
		} else {
			kept := c.filters[:0]
			for _, f := range c.filters {
				if strings.EqualFold(f.header, name) && (value == "" || f.value == value) {
					continue
				}
				kept = append(kept, f)
			}
			c.filters = kept
		}
		return "+OK filter deleted. [" + name + "][" + value + "]"
	}
	if !hasValue {
		return "-ERR invalid syntax"
	}
	if strings.EqualFold(name, "add") {
		name, value, _ = strings.Cut(value, " ")
	}
	c.filters = append(c.filters, newFilter(name, value))
	return "+OK filter added. [" + name + "]=[" + value + "]"
}

// sendmsg handles "sendmsg <uuid>" with call-command execute or hangup.
func (s *Sim) sendmsg(cmd Command) string {
	uuid := strings.TrimLeft(cmd.Line[len("sendmsg"):], " ")
	if uuid == "" {
		uuid = cmd.Header("session-id")
	}
	s.lock()
	defer s.unlock()
	ch := s.channels[uuid]
	if ch == nil {
		return "-ERR invalid session id [" + uuid + "]"
	}
	if ch.hungup {
		return "+OK"
	}
	switch strings.ToLower(cmd.Header("call-command")) {
	case "execute":
		name := cmd.Header("execute-app-name")
		if name == "" {
			break
		}
		arg := cmd.Header("execute-app-arg")
		if arg == "" && cmd.Body != "" {
			arg = cmd.Body
		}
		loops := 1
		if l := cmd.Header("loops"); l != "" {
			loops = leadingInt(l)
		}
		appUUID := cmd.Header("Event-UUID")
		if appUUID == "" {
			appUUID = newUUID()
		}
		s.queueApp(ch, &appRun{name: name, data: arg, uuid: appUUID, loops: loops})
	case "hangup":
		cause := cmd.Header("hangup-cause")
		if _, ok := causeCodes[cause]; !ok {
			cause = "NORMAL_CLEARING"
		}
		s.hangupChannel(ch, cause, false)
	}
	return "+OK"
}

// apiResponse frames an api reply like api_exec.
func apiResponse(body string) []byte {
	if body == "" {
		body = "-ERR no reply\n"
	}
	return []byte("Content-Type: api/response\nContent-Length: " + strconv.Itoa(len(body)) + "\n\n" + body)
}
