// Package ivr holds IVR flows as data: their JSON document (Decode), the
// checks run when a flow is saved (Validate) and their execution on an
// answered call (Runner). Decode, Validate and Runner need only the
// standard library and controller; their dependencies are small interfaces
// (Ledger, Recordings, PromptResolver, controller.Media).
package ivr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/callgate/callgate/controller"
)

// Node types.
const (
	TypePlay     = "play"     // play a prompt
	TypeGather   = "gather"   // play a prompt and collect digits, branch on them
	TypeConsent  = "consent"  // ask for consent; yes is written to the ledger, no locks the number
	TypeRecord   = "record"   // start, stop, pause or resume the call recording
	TypeTransfer = "transfer" // bridge the call elsewhere
	TypeWebhook  = "webhook"  // ask the integrator what to do next
	TypeSet      = "set"      // set tags and a disposition on the run
	TypeHangup   = "hangup"   // end the call with a cause
	TypeAgent    = "agent"    // connect the call to an agent of its campaign
)

// DefaultAgentWaitMS is how long an agent node waits for an agent before
// the call counts as abandoned: the 2 s of the FCC and Ofcom rules.
const DefaultAgentWaitMS = 2000

// Record actions of a record node.
const (
	RecordStart  = "start"
	RecordStop   = "stop"
	RecordPause  = "pause"
	RecordResume = "resume"
)

// Limits of a flow document.
const (
	MaxFlowBytes        = 256 << 10 // a flow document's size
	MaxNodes            = 200       // nodes in a flow
	MaxSubFlowNodes     = 20        // nodes in a flow a webhook replies with
	MaxDigits           = 32        // a gather's max_digits
	MaxTries            = 10        // a gather's or consent's tries
	MaxTimeoutMS        = 60000     // any *_ms timeout
	MaxTags             = 32        // tags of a set node
	DefaultOpeningMSMax = 15000     // the opening prompt's length before a warning
	DefaultHangupCause  = "NORMAL_CLEARING"
	defaultTries        = 3
	defaultWebhookMS    = 5000
	maxRegexLen         = 256
	maxTextLen          = 1024
)

// Flow is an IVR flow: nodes keyed by ID, run from Start. Build one with
// Decode; the Runner refuses flows that did not come from Decode.
type Flow struct {
	Name         string           `json:"name,omitempty"`
	Start        string           `json:"start"`
	OpeningMSMax int64            `json:"opening_ms_max,omitempty"` // 0: DefaultOpeningMSMax
	Nodes        map[string]*Node `json:"nodes"`

	decoded bool // set by Decode once every check passed
}

// Node is one step of a flow. Which fields a node may carry depends on its
// Type; Decode rejects the others. An empty Next (or On*) ends the flow:
// the call is hung up with NORMAL_CLEARING.
type Node struct {
	Type string `json:"type"`

	// play, gather, consent: exactly one of Prompt (an uploaded prompt's
	// name, its newest version at run time), PromptURL or Tone. A consent
	// node takes Prompt only: the prompt's text and version are evidence.
	Prompt        string `json:"prompt,omitempty"`
	PromptURL     string `json:"prompt_url,omitempty"`
	Tone          string `json:"tone,omitempty"`
	InvalidPrompt string `json:"invalid_prompt,omitempty"` // gather, consent: an uploaded prompt's name

	// gather, consent
	Tries     int    `json:"tries,omitempty"`      // 1..10, default 3
	TimeoutMS int64  `json:"timeout_ms,omitempty"` // also webhook; 0: the driver's (gather) or 5000 (webhook)
	OnTimeout string `json:"on_timeout,omitempty"`
	OnInvalid string `json:"on_invalid,omitempty"`

	// gather
	MinDigits      int      `json:"min_digits,omitempty"` // default 1
	MaxDigits      int      `json:"max_digits,omitempty"` // default max(min_digits, longest branch digits)
	DigitTimeoutMS int64    `json:"digit_timeout_ms,omitempty"`
	Terminators    string   `json:"terminators,omitempty"`
	Branches       []Branch `json:"branches,omitempty"`

	// consent
	Yes     string             `json:"yes,omitempty"` // one digit, default "1"
	No      string             `json:"no,omitempty"`  // one digit, default "2"
	Purpose controller.Purpose `json:"purpose,omitempty"`
	OnYes   string             `json:"on_yes,omitempty"`
	OnNo    string             `json:"on_no,omitempty"`

	Action      string            `json:"action,omitempty"`      // record: start | stop | pause | resume
	To          string            `json:"to,omitempty"`          // transfer: a dial string
	URL         string            `json:"url,omitempty"`         // webhook: http(s)
	OnError     string            `json:"on_error,omitempty"`    // webhook: followed when it fails
	Tags        map[string]string `json:"tags,omitempty"`        // set
	Disposition string            `json:"disposition,omitempty"` // set
	Cause       string            `json:"cause,omitempty"`       // hangup: a Q.850 name, default NORMAL_CLEARING

	// Next follows play, record, set, webhook (when the reply names no
	// node), transfer (when not bridged), and gather input no branch
	// matched (without it such input follows on_invalid).
	Next string `json:"next,omitempty"`
}

// Branch routes gathered digits: Digits matches exactly, else Regex (Go
// syntax, anchored at both ends by Decode if it is not) must match.
type Branch struct {
	Digits string `json:"digits,omitempty"`
	Regex  string `json:"regex,omitempty"`
	Next   string `json:"next"`

	re *regexp.Regexp
}

// fieldsByType lists the JSON fields each node type accepts.
var fieldsByType = map[string][]string{
	TypePlay:     {"prompt", "prompt_url", "tone", "next"},
	TypeGather:   {"prompt", "prompt_url", "tone", "invalid_prompt", "tries", "timeout_ms", "on_timeout", "on_invalid", "min_digits", "max_digits", "digit_timeout_ms", "terminators", "branches", "next"},
	TypeConsent:  {"prompt", "invalid_prompt", "tries", "timeout_ms", "on_timeout", "on_invalid", "yes", "no", "purpose", "on_yes", "on_no"},
	TypeRecord:   {"action", "next"},
	TypeTransfer: {"to", "next"},
	TypeWebhook:  {"url", "timeout_ms", "next", "on_error"},
	TypeSet:      {"tags", "disposition", "next"},
	TypeHangup:   {"cause"},
	TypeAgent:    {"prompt", "prompt_url", "tone", "timeout_ms"},
}

var (
	nodeIDRE     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	promptNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	digitsRE     = regexp.MustCompile(`^[0-9*#]+$`)
	causeRE      = regexp.MustCompile(`^[A-Z_]+$`)
	tagRE        = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
)

// Decode reads a flow document strictly: unknown fields, fields another node
// type uses, duplicate node IDs and trailing data are errors, as are values
// outside the limits. Defaults are filled in. Returns EINVALID naming the
// JSON path at fault (e.g. "nodes.menu.branches[1].regex"), ETOOLARGE for a
// document over MaxFlowBytes.
func Decode(data []byte) (*Flow, error) {
	if len(data) > MaxFlowBytes {
		return nil, controller.Errorf(controller.ETOOLARGE, "a flow must be at most %d bytes", MaxFlowBytes)
	}
	var top struct {
		Name         string          `json:"name"`
		Start        string          `json:"start"`
		OpeningMSMax int64           `json:"opening_ms_max"`
		Nodes        json.RawMessage `json:"nodes"`
	}
	if err := strictDecode("", data, &top); err != nil {
		return nil, err
	}
	f := &Flow{Name: top.Name, Start: top.Start, OpeningMSMax: top.OpeningMSMax, Nodes: map[string]*Node{}}
	if err := decodeNodes(top.Nodes, f); err != nil {
		return nil, err
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	f.decoded = true
	return f, nil
}

// decodeNodes walks the "nodes" object key by key so duplicate IDs are
// caught (encoding/json keeps the last silently).
func decodeNodes(raw json.RawMessage, f *Flow) error {
	if len(raw) == 0 || string(raw) == "null" {
		return controller.FieldError("nodes", "is required")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return controller.FieldError("nodes", "must be an object of nodes keyed by ID")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return controller.FieldError("nodes", "malformed JSON")
		}
		id, _ := tok.(string)
		path := "nodes." + id
		if !nodeIDRE.MatchString(id) {
			return controller.FieldError("nodes", "node ID %s must be 1 to 64 letters, digits, '_' or '-'", quoteShort(id))
		}
		if _, dup := f.Nodes[id]; dup {
			return controller.FieldError(path, "duplicate node ID")
		}
		if len(f.Nodes) == MaxNodes {
			return controller.FieldError("nodes", "a flow has at most %d nodes", MaxNodes)
		}
		var body json.RawMessage
		if err := dec.Decode(&body); err != nil {
			return controller.FieldError(path, "malformed JSON")
		}
		n, err := decodeNode(path, body)
		if err != nil {
			return err
		}
		f.Nodes[id] = n
	}
	return nil
}

func decodeNode(path string, body json.RawMessage) (*Node, error) {
	var w struct {
		Node
		Branches []json.RawMessage `json:"branches"`
	}
	if err := strictDecode(path, body, &w); err != nil {
		return nil, err
	}
	n := w.Node
	allowed, ok := fieldsByType[n.Type]
	if !ok {
		return nil, controller.FieldError(path+".type", "must be one of play, gather, consent, record, transfer, webhook, set, hangup, agent")
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(body, &keys); err != nil {
		return nil, controller.FieldError(path, "must be an object")
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if k != "type" && !slices.Contains(allowed, k) {
			return nil, controller.FieldError(path+"."+k, "is not used by a %s node", n.Type)
		}
	}
	for i, raw := range w.Branches {
		var b Branch
		if err := strictDecode(fmt.Sprintf("%s.branches[%d]", path, i), raw, &b); err != nil {
			return nil, err
		}
		n.Branches = append(n.Branches, b)
	}
	return &n, nil
}

// strictDecode decodes one JSON value into v, rejecting unknown fields and
// trailing data, and names the path of what is wrong.
func strictDecode(path string, data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case err == nil:
	case errors.As(err, &syn):
		return controller.FieldError(orRoot(path), "malformed JSON at byte %d", syn.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return controller.FieldError(orRoot(path), "malformed JSON: unexpected end")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return controller.FieldError(orRoot(path), "must be a JSON object")
		}
		// decodeNode embeds Node: its fields are the node's own.
		return controller.FieldError(join(path, strings.TrimPrefix(typ.Field, "Node.")), "must be %s", jsonKind(typ.Type.Kind().String()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, uerr := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		if uerr != nil {
			return controller.FieldError(orRoot(path), "unknown field")
		}
		return controller.FieldError(join(path, name), "unknown field")
	default:
		return controller.FieldError(orRoot(path), "must be a JSON object: %v", err)
	}
	if dec.More() {
		return controller.FieldError(orRoot(path), "unexpected data after the object")
	}
	return nil
}

// refs returns the node's references to other nodes by field name (a
// branch's as "branches[i].next"), empty ones included.
func (n *Node) refs() map[string]string {
	m := map[string]string{}
	add := func(k, v string) { m[k] = v }
	switch n.Type {
	case TypeConsent:
		add("on_yes", n.OnYes)
		add("on_no", n.OnNo)
		add("on_timeout", n.OnTimeout)
		add("on_invalid", n.OnInvalid)
	case TypeGather:
		add("next", n.Next)
		add("on_timeout", n.OnTimeout)
		add("on_invalid", n.OnInvalid)
		for i, b := range n.Branches {
			add(fmt.Sprintf("branches[%d].next", i), b.Next)
		}
	case TypeWebhook:
		add("next", n.Next)
		add("on_error", n.OnError)
	case TypeHangup:
	default:
		add("next", n.Next)
	}
	return m
}

// anchor makes re match whole input only (wrapping an anchored regex
// again changes nothing).
func anchor(re string) string { return "^(?:" + re + ")$" }

func sortedIDs(f *Flow) []string { return slices.Sorted(maps.Keys(f.Nodes)) }

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func orRoot(path string) string {
	if path == "" {
		return "flow"
	}
	return path
}

func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "int", "int64", "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "map", "struct":
		return "an object"
	case "slice":
		return "an array"
	}
	return "of another type"
}

// quoteShort quotes s, cut to 40 bytes, for an error message.
func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strconv.Quote(s)
}
