package freeswitch

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/callgate/callgate/controller"
)

// Wire commands are small values: BuildMessage returns the exact ESL command
// line (eslgo, or eventConn for the subscription, appends the blank line that
// ends it). They satisfy eslgo's command.Command interface and are covered by
// golden-string tests.

// subscribedEvents are the events callgate asks FreeSWITCH for.
var subscribedEvents = []string{
	"CHANNEL_CREATE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_ANSWER",
	"CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY", "CHANNEL_EXECUTE_COMPLETE",
	"DTMF", "RECORD_START", "RECORD_STOP", "BACKGROUND_JOB",
}

// subscribeCommand is `event plain <names…>`, sent on the event connection
// only. Plain, never json: the event reader parses text/event-plain.
type subscribeCommand struct{ events []string }

func (c subscribeCommand) BuildMessage() string {
	return "event plain " + strings.Join(c.events, " ")
}

// apiCommand is a blocking `api <command> [args]`. Every argument is
// validated by its constructor; none comes from an API user unchecked.
type apiCommand struct {
	command string
	args    []string
}

func (c apiCommand) BuildMessage() string {
	if len(c.args) == 0 {
		return "api " + c.command
	}
	return "api " + c.command + " " + strings.Join(c.args, " ")
}

var (
	statusCommand   = apiCommand{command: "status"}
	channelsCommand = apiCommand{command: "show", args: []string{"channels", "as", "json"}}
)

// killCommand is `api uuid_kill <uuid> <CAUSE>`; id and cause are validated
// by Hangup.
func killCommand(id controller.CallID, cause string) apiCommand {
	return apiCommand{command: "uuid_kill", args: []string{string(id), cause}}
}

// channelVar is one {name=value} pair of an originate. value is the plain
// value; BuildMessage encodes it.
type channelVar struct{ name, value string }

// originateCommand is
//
//	bgapi originate {origination_uuid=<id>,…}<endpoint> &park()
//
// Build it with buildOriginate, which validates every field.
type originateCommand struct {
	vars     []channelVar
	endpoint string
}

func (c originateCommand) BuildMessage() string {
	var b strings.Builder
	b.WriteString("bgapi originate {")
	for i, v := range c.vars {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(v.name)
		b.WriteByte('=')
		b.WriteString(encodeValue(v.value))
	}
	b.WriteByte('}')
	b.WriteString(c.endpoint)
	b.WriteString(" &park()")
	return b.String()
}

// How values are made safe (see the proof in escape_test.go, which runs the
// built command through a Go port of FreeSWITCH's parsers).
//
// An originate argument is parsed twice. (1) mod_commands' originate splits
// its arguments on blanks with switch_separate_string(' '): a single quote
// toggles quoting, a backslash protects the next byte, and the clean-up then
// drops the quotes and turns \s into a space, \n into a newline and so on,
// while a backslash before any other byte (such as a comma) is kept.
// (2) switch_ivr_originate finds the end of the {…} block by counting { and }
// (quotes are NOT honoured), splits it on commas with quotes and backslashes
// honoured again, then splits each pair on the first '='. So the textbook
// {var='a,b'} loses its quotes in step 1 and still splits in step 2.
//
// encodeValue therefore writes a space as \s (not a blank for step 1, a
// space after it) and a comma as \, (kept by step 1, a literal comma after
// step 2), and validateValue rejects every byte either step could act on:
// quotes, backslash, braces, brackets, angle brackets, '|', '^', '$' (channel
// variable expansion), ":_:" (enterprise originate separator), control and
// other non-printable characters. Nothing a user supplies can then end the
// {} block, add a variable, change the endpoint or the application, or (with
// no newline) start a second ESL command.
func encodeValue(v string) string {
	if !strings.ContainsAny(v, " ,") {
		return v
	}
	var b strings.Builder
	b.Grow(len(v) + 8)
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case ' ':
			b.WriteString(`\s`)
		case ',':
			b.WriteString(`\,`)
		default:
			b.WriteByte(v[i])
		}
	}
	return b.String()
}

const (
	maxValueBytes    = 256
	maxVariables     = 32
	maxNumberDigits  = 32
	defaultRingTime  = 60 * time.Second
	maxRingTime      = 600 * time.Second
	userVarPrefix    = "cg_"
	forbiddenInValue = "'\"\\{}[]<>|^$`"
)

var (
	numberRE  = regexp.MustCompile(`^\+?[0-9]{1,32}$`)
	varNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	uuidRE    = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	causeRE   = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
)

// reservedVars are the variables the driver sets itself, and the SRTP
// switches nobody else may touch (rtp_secure_media_outbound would override
// rtp_secure_media on callgate's outbound leg; sip_secure_media is its old
// name). FreeSWITCH looks channel variables up case-insensitively, so the
// check is too.
var reservedVars = []string{"origination_uuid", "origination_caller_id_number", "origination_caller_id_name", "originate_timeout",
	"rtp_secure_media", "rtp_secure_media_outbound", "rtp_secure_media_inbound", "sip_secure_media"}

func isReserved(name string) bool {
	for _, r := range reservedVars {
		if strings.EqualFold(r, name) {
			return true
		}
	}
	return false
}

// validUUID reports whether s is a canonical lower-case UUID, the only form
// callgate uses as a channel UUID.
func validUUID(s string) bool { return uuidRE.MatchString(s) }

// validateValue checks a user-supplied value that goes inside the {} block.
// It returns an EINVALID error naming field.
func validateValue(field, v string) error {
	if len(v) > maxValueBytes {
		return controller.FieldError(field, "longer than %d bytes", maxValueBytes)
	}
	if !utf8.ValidString(v) {
		return controller.FieldError(field, "not valid UTF-8")
	}
	for _, r := range v {
		if r == '\n' || r == '\r' || r == 0 {
			return controller.FieldError(field, "must not contain a newline or NUL")
		}
		if !unicode.IsPrint(r) {
			return controller.FieldError(field, "must not contain control or non-printable characters")
		}
		if r < utf8.RuneSelf && strings.ContainsRune(forbiddenInValue, r) {
			return controller.FieldError(field, "must not contain any of %s", forbiddenInValue)
		}
	}
	if strings.Contains(v, ":_:") {
		return controller.FieldError(field, `must not contain ":_:"`)
	}
	return nil
}

// dialPlan is the part of Config that shapes an originate.
type dialPlan struct {
	template     string
	trunk        string          // the default trunk
	trunks       map[string]bool // the other trunks a request may name (Config.Trunks)
	allowedNames map[string]bool
}

// expand returns the endpoint for number on the default trunk.
func (p dialPlan) expand(number string) string { return p.expandOn(number, p.trunk) }

// expandOn returns the endpoint for number on trunk, which must be
// checked (pickTrunk).
func (p dialPlan) expandOn(number, trunk string) string {
	e := strings.ReplaceAll(p.template, "{number}", number)
	return strings.ReplaceAll(e, "{trunk}", trunk)
}

// pickTrunk returns the trunk a request names, or the default for none.
// Returns EINVALID naming "trunk" for a trunk the switch does not have.
func (p dialPlan) pickTrunk(trunk string) (string, error) {
	switch {
	case trunk == "" || trunk == p.trunk:
		return p.trunk, nil
	case !trunkRE.MatchString(trunk):
		return "", controller.FieldError("trunk", "must be 1-64 letters, digits, _ . or -")
	case !p.trunks[trunk]:
		return "", controller.FieldError("trunk", "%q is not a trunk of this switch", trunk)
	}
	return trunk, nil
}

// allowedVar reports whether an API user may set the channel variable name.
// FreeSWITCH acts on many variables (api_on_answer runs an API command,
// effective_caller_id_number changes the presented number,
// rtp_secure_media turns SRTP off…), so only callgate's own namespace (cg_…)
// and the names the operator lists in Config.AllowedVariables pass.
func (p dialPlan) allowedVar(name string) bool {
	if isReserved(name) || !varNameRE.MatchString(name) {
		return false
	}
	return strings.HasPrefix(name, userVarPrefix) || p.allowedNames[name]
}

// buildOriginate validates req and returns the command that places it.
// Every failure is an EINVALID error naming the request field.
func buildOriginate(p dialPlan, req controller.OriginateRequest) (originateCommand, error) {
	var cmd originateCommand
	if !validUUID(string(req.CallID)) {
		return cmd, controller.FieldError("call_id", "must be a lower-case UUID")
	}
	if !numberRE.MatchString(req.To) {
		return cmd, controller.FieldError("to", "must be digits with an optional leading +, at most %d", maxNumberDigits)
	}
	trunk, err := p.pickTrunk(req.Trunk)
	if err != nil {
		return cmd, err
	}
	endpoint := p.expandOn(req.To, trunk)
	if req.Endpoint != "" && req.Endpoint != endpoint {
		return cmd, controller.FieldError("endpoint", "must be the switch's dial template applied to the number")
	}
	cmd.endpoint = endpoint
	cmd.vars = append(cmd.vars, channelVar{"origination_uuid", string(req.CallID)})
	if req.CallerIDNumber != "" {
		if !numberRE.MatchString(req.CallerIDNumber) {
			return cmd, controller.FieldError("from", "must be digits with an optional leading +, at most %d", maxNumberDigits)
		}
		cmd.vars = append(cmd.vars, channelVar{"origination_caller_id_number", req.CallerIDNumber})
	}
	if name := strings.Trim(req.CallerIDName, " "); name != "" {
		if err := validateValue("caller_id_name", name); err != nil {
			return cmd, err
		}
		cmd.vars = append(cmd.vars, channelVar{"origination_caller_id_name", name})
	}
	timeout := req.Timeout
	switch {
	case timeout < 0 || timeout > maxRingTime:
		return cmd, controller.FieldError("timeout_seconds", "must be between 1 and %d", int(maxRingTime/time.Second))
	case timeout == 0:
		timeout = defaultRingTime
	}
	secs := int(math.Ceil(timeout.Seconds()))
	cmd.vars = append(cmd.vars, channelVar{"originate_timeout", strconv.Itoa(secs)})
	srtp, err := secureMediaValue(req.Media)
	if err != nil {
		return cmd, err
	}
	if srtp != "" {
		// FreeSWITCH 1.10: offer only SRTP with these suites, fail the call
		// if the far end refuses. ':' needs no escaping inside {}.
		cmd.vars = append(cmd.vars, channelVar{"rtp_secure_media", srtp})
	}

	if len(req.Variables) > maxVariables {
		return cmd, controller.FieldError("variables", "at most %d variables", maxVariables)
	}
	names := make([]string, 0, len(req.Variables))
	for name := range req.Variables {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		field := "variables." + name
		if !varNameRE.MatchString(name) {
			// The name itself may be hostile: do not echo it in the field.
			return cmd, controller.FieldError("variables", "variable name must match %s", varNameRE)
		}
		if isReserved(name) {
			return cmd, controller.FieldError(field, "is set by callgate and cannot be overridden")
		}
		if !p.allowedVar(name) {
			return cmd, controller.FieldError(field, "only %s… variables or ones the operator allows may be set", userVarPrefix)
		}
		value := strings.Trim(req.Variables[name], " ")
		if value == "" {
			continue // FreeSWITCH ignores name= with no value
		}
		if err := validateValue(field, value); err != nil {
			return cmd, err
		}
		cmd.vars = append(cmd.vars, channelVar{name, value})
	}
	if err := checkWire(cmd.BuildMessage()); err != nil {
		return cmd, err // defence in depth: cannot happen after the checks above
	}
	return cmd, nil
}

// checkWire rejects a command line that holds a byte ending or splitting an
// ESL command.
func checkWire(line string) error {
	if i := strings.IndexFunc(line, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
		return controller.Errorf(controller.EINTERNAL, "command holds a control character at %d", i)
	}
	return nil
}

// validateDialTemplate checks an operator's DialTemplate and Trunk.
func validateDialTemplate(template, trunk string) error {
	if !strings.Contains(template, "{number}") {
		return fmt.Errorf("must contain {number}")
	}
	if strings.Contains(template, "{trunk}") && trunk == "" {
		return fmt.Errorf("uses {trunk} but Trunk is empty")
	}
	rest := strings.NewReplacer("{number}", "", "{trunk}", "").Replace(template)
	for _, r := range rest {
		if !(r < utf8.RuneSelf && (isAlnum(byte(r)) || strings.ContainsRune("/_.@:;=+-", r))) {
			return fmt.Errorf("holds %q; only letters, digits and /_.@:;=+- are allowed", r)
		}
	}
	if !isAlnum(template[0]) {
		return fmt.Errorf("must start with a letter or digit")
	}
	if strings.Contains(dialPlan{template: template, trunk: trunk}.expand("1"), ":_:") {
		return fmt.Errorf(`must not contain ":_:"`)
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
