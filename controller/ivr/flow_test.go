package ivr_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/ivr"
)

func TestDecodeExample(t *testing.T) {
	t.Parallel()
	f, err := ivr.Decode([]byte(exampleFlow))
	require.NoError(t, err)
	require.Equal(t, "Consent v1", f.Name)
	require.Equal(t, "greet", f.Start)
	require.Len(t, f.Nodes, 8)
	ask := f.Nodes["ask"]
	require.Equal(t, ivr.TypeConsent, ask.Type)
	require.Equal(t, controller.PurposeMarketing, ask.Purpose)
	require.Equal(t, []ivr.Branch{{Digits: "1", Next: "xfer"}, {Regex: "^[2-4]$", Next: "hook"}}, stripRegexps(f.Nodes["menu"].Branches))
	require.Equal(t, map[string]string{"interest": "high"}, f.Nodes["tag"].Tags)

	// Re-encoding and decoding again gives the same flow.
	again, err := json.Marshal(f)
	require.NoError(t, err)
	g, err := ivr.Decode(again)
	require.NoError(t, err)
	require.Equal(t, f.Nodes["ask"], g.Nodes["ask"])
}

func TestDecodeDefaults(t *testing.T) {
	t.Parallel()
	f, err := ivr.Decode([]byte(`{"start": "a", "nodes": {
		"a": {"type": "consent", "prompt": "q", "purpose": "service", "on_yes": "g", "on_no": "h"},
		"g": {"type": "gather", "tone": "tone_stream://%(100,0,440)", "branches": [{"digits": "123", "next": "h"}]},
		"w": {"type": "webhook", "url": "http://hooks.example.com/x"},
		"h": {"type": "hangup"}}}`))
	require.NoError(t, err)
	a, g := f.Nodes["a"], f.Nodes["g"]
	require.Equal(t, "1", a.Yes)
	require.Equal(t, "2", a.No)
	require.Equal(t, 3, a.Tries)
	require.Equal(t, 1, g.MinDigits)
	require.Equal(t, 3, g.MaxDigits, "long enough for the longest branch")
	require.Equal(t, int64(5000), f.Nodes["w"].TimeoutMS)
	require.Equal(t, "NORMAL_CLEARING", f.Nodes["h"].Cause)
}

func TestDecodeRegexIsAnchored(t *testing.T) {
	t.Parallel()
	b := setup(t, "12")
	res := b.run(t, `{"start": "g", "nodes": {
		"g": {"type": "gather", "tone": "tone_stream://%(100,0,440)", "max_digits": 2, "branches": [{"regex": "[2-4]", "next": "yes"}], "on_invalid": "no"},
		"yes": {"type": "set", "disposition": "matched"}, "no": {"type": "set", "disposition": "unmatched"}}}`)
	require.Equal(t, "unmatched", res.Disposition, `"[2-4]" must not match "12"`)
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	node := func(body string) string {
		return `{"start": "a", "nodes": {"a": ` + body + `}}`
	}
	many := make([]string, 201)
	for i := range many {
		many[i] = fmt.Sprintf(`"n%d": {"type": "hangup"}`, i)
	}
	for _, tc := range []struct {
		name, doc, field, msg string
	}{
		{"not JSON", `{"start": `, "flow", "malformed JSON"},
		{"not an object", `[1]`, "flow", "must be a JSON object"},
		{"trailing data", `{"start": "a", "nodes": {"a": {"type": "hangup"}}} {}`, "flow", "unexpected data"},
		{"unknown top field", `{"start": "a", "nodez": {}}`, "nodez", "unknown field"},
		{"no start", `{"nodes": {"a": {"type": "hangup"}}}`, "start", "is required"},
		{"no nodes", `{"start": "a"}`, "nodes", "is required"},
		{"empty nodes", `{"start": "a", "nodes": {}}`, "nodes", "at least one node"},
		{"nodes not an object", `{"start": "a", "nodes": []}`, "nodes", "must be an object"},
		{"bad node id", `{"start": "a", "nodes": {"a b": {"type": "hangup"}}}`, "nodes", `node ID "a b" must be`},
		{"duplicate node id", `{"start": "a", "nodes": {"a": {"type": "hangup"}, "a": {"type": "hangup"}}}`, "nodes.a", "duplicate node ID"},
		{"too many nodes", `{"start": "n0", "nodes": {` + strings.Join(many, ",") + `}}`, "nodes", "at most 200 nodes"},
		{"unknown node field", node(`{"type": "play", "tone": "tone_stream://%(1,0,1)", "bogus": 1}`), "nodes.a.bogus", "unknown field"},
		{"another type's field", node(`{"type": "play", "tone": "tone_stream://%(1,0,1)", "url": "https://x"}`), "nodes.a.url", "is not used by a play node"},
		{"unknown type", node(`{"type": "dance"}`), "nodes.a.type", "must be one of"},
		{"no type", node(`{}`), "nodes.a.type", "must be one of"},
		{"wrong type", node(`{"type": "consent", "prompt": "q", "purpose": "service", "tries": "2"}`), "nodes.a.tries", "must be a number"},
		{"wrong tag type", node(`{"type": "set", "tags": {"k": 1}}`), "nodes.a.tags", "must be a string"},
		{"unknown branch field", node(`{"type": "gather", "prompt": "m", "branches": [{"digit": "1", "next": "a"}]}`), "nodes.a.branches[0].digit", "unknown field"},
		{"no prompt", node(`{"type": "play"}`), "nodes.a.prompt", "exactly one of prompt, prompt_url and tone"},
		{"two prompts", node(`{"type": "play", "prompt": "p", "tone": "tone_stream://%(1,0,1)"}`), "nodes.a.prompt", "exactly one of"},
		{"consent with a URL", node(`{"type": "consent", "prompt_url": "https://x/a.wav", "purpose": "service"}`), "nodes.a.prompt_url", "is not used by a consent node"},
		{"bad prompt name", node(`{"type": "play", "prompt": "Hello World"}`), "nodes.a.prompt", "must be a prompt name"},
		{"prompt URL not http", node(`{"type": "play", "prompt_url": "file:///etc/passwd"}`), "nodes.a.prompt_url", "http or https"},
		{"unsafe prompt URL", node(`{"type": "play", "prompt_url": "https://x/a.wav?{x}"}`), "nodes.a.prompt_url", "must not contain"},
		{"bad tone", node(`{"type": "play", "tone": "/etc/passwd"}`), "nodes.a.tone", "tone_stream://"},
		{"bad digits", node(`{"type": "gather", "prompt": "m", "branches": [{"digits": "1a", "next": "a"}]}`), "nodes.a.branches[0].digits", "0-9, * and #"},
		{"digits and regex", node(`{"type": "gather", "prompt": "m", "branches": [{"digits": "1", "regex": "1", "next": "a"}]}`), "nodes.a.branches[0]", "exactly one of digits and regex"},
		{"branch without next", node(`{"type": "gather", "prompt": "m", "branches": [{"digits": "1"}]}`), "nodes.a.branches[0].next", "is required"},
		{"bad regex", node(`{"type": "gather", "prompt": "m", "branches": [{"regex": "([", "next": "a"}]}`), "nodes.a.branches[0].regex", "does not compile"},
		{"digits too long", node(`{"type": "gather", "prompt": "m", "max_digits": 2, "branches": [{"digits": "123", "next": "a"}]}`), "nodes.a.branches", "longer than max_digits"},
		{"max digits", node(`{"type": "gather", "prompt": "m", "max_digits": 33}`), "nodes.a.max_digits", "must be min_digits to 32"},
		{"min over max", node(`{"type": "gather", "prompt": "m", "min_digits": 4, "max_digits": 3}`), "nodes.a.max_digits", "must be min_digits"},
		{"tries", node(`{"type": "gather", "prompt": "m", "tries": 11}`), "nodes.a.tries", "must be 1 to 10"},
		{"negative tries", node(`{"type": "gather", "prompt": "m", "tries": -1}`), "nodes.a.tries", "must be 1 to 10"},
		{"timeout", node(`{"type": "gather", "prompt": "m", "timeout_ms": 60001}`), "nodes.a.timeout_ms", "must be 1 to 60000 ms"},
		{"digit timeout", node(`{"type": "gather", "prompt": "m", "digit_timeout_ms": -5}`), "nodes.a.digit_timeout_ms", "must be 1 to 60000 ms"},
		{"terminators", node(`{"type": "gather", "prompt": "m", "terminators": "x"}`), "nodes.a.terminators", "0-9, * and #"},
		{"consent yes", node(`{"type": "consent", "prompt": "q", "purpose": "service", "yes": "11"}`), "nodes.a.yes", "one of 0-9"},
		{"consent same keys", node(`{"type": "consent", "prompt": "q", "purpose": "service", "yes": "1", "no": "1"}`), "nodes.a.no", "must differ"},
		{"consent purpose", node(`{"type": "consent", "prompt": "q", "purpose": "fun"}`), "nodes.a.purpose", "marketing, service or transactional"},
		{"consent without prompt", node(`{"type": "consent", "purpose": "service"}`), "nodes.a.prompt", "is required"},
		{"webhook URL", node(`{"type": "webhook", "url": "ftp://example.com/"}`), "nodes.a.url", "http or https"},
		{"webhook timeout", node(`{"type": "webhook", "url": "https://example.com/", "timeout_ms": 0.5}`), "nodes.a.timeout_ms", "must be a number"},
		{"record action", node(`{"type": "record", "action": "rewind"}`), "nodes.a.action", "start, stop, pause or resume"},
		{"hangup cause", node(`{"type": "hangup", "cause": "normal"}`), "nodes.a.cause", "Q.850"},
		{"unknown hangup cause", node(`{"type": "hangup", "cause": "GOING_HOME"}`), "nodes.a.cause", "Q.850"},
		{"transfer without to", node(`{"type": "transfer"}`), "nodes.a.to", "is required"},
		{"unsafe transfer", node(`{"type": "transfer", "to": "sofia/gw/${danger}"}`), "nodes.a.to", "must not contain"},
		{"empty set", node(`{"type": "set"}`), "nodes.a", "tags or a disposition"},
		{"bad tag name", node(`{"type": "set", "tags": {"a b": "x"}}`), "nodes.a.tags", "tag name"},
		{"bad reference", node(`{"type": "play", "prompt": "p", "next": "a b"}`), "nodes.a.next", "must be a node ID"},
		{"opening max", `{"start": "a", "opening_ms_max": -1, "nodes": {"a": {"type": "hangup"}}}`, "opening_ms_max", "must be 0 to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := ivr.Decode([]byte(tc.doc))
			require.Nil(t, f)
			require.Error(t, err)
			require.Equal(t, controller.EINVALID, controller.ErrorCode(err), "%v", err)
			require.Equal(t, tc.field, controller.ErrorField(err), "%v", err)
			require.Contains(t, controller.ErrorMessage(err), tc.msg)
		})
	}
}

func TestDecodeTooLarge(t *testing.T) {
	t.Parallel()
	doc := `{"name": "` + strings.Repeat("x", ivr.MaxFlowBytes) + `"}`
	_, err := ivr.Decode([]byte(doc))
	require.Equal(t, controller.ETOOLARGE, controller.ErrorCode(err))
}

func stripRegexps(bs []ivr.Branch) []ivr.Branch {
	out := make([]ivr.Branch, len(bs))
	for i, b := range bs {
		out[i] = ivr.Branch{Digits: b.Digits, Regex: b.Regex, Next: b.Next}
	}
	return out
}
