package ivr_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/ivr"
)

// validEnv knows the example flow's prompts.
func validEnv() ivr.Env {
	p := newPrompts(map[string]string{
		"hello": "Hello, this is Acme.", "consent-q": "May we call you about offers? Press 1 for yes, 2 for no.",
		"sorry": "Sorry, I did not get that.", "menu": "Press 1 for sales.",
	})
	return ivr.Env{Prompt: p.lookup, ForbiddenPhrases: []string{"free", "guaranteed", "legal action", "免费"}}
}

func validateDoc(t *testing.T, doc string, env ivr.Env) ivr.Problems {
	t.Helper()
	f, err := ivr.Decode([]byte(doc))
	require.NoError(t, err)
	return ivr.Validate(f, env)
}

func TestValidateExample(t *testing.T) {
	t.Parallel()
	problems := validateDoc(t, exampleFlow, validEnv())
	require.Empty(t, problems)
	require.NoError(t, problems.Err())
}

func TestValidateBrokenFlows(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		doc  string
		want ivr.Problem
	}{
		{"unknown start", `{"start": "nope", "nodes": {"a": {"type": "hangup"}}}`,
			ivr.Problem{Field: "start", Severity: "error", Message: `names unknown node "nope"`}},
		{"missing node", `{"start": "a", "nodes": {"a": {"type": "play", "prompt": "hello", "next": "b"}}}`,
			ivr.Problem{Node: "a", Field: "next", Severity: "error", Message: `names unknown node "b"`}},
		{"missing branch target", `{"start": "a", "nodes": {"a": {"type": "gather", "prompt": "menu", "branches": [{"digits": "1", "next": "zz"}]}}}`,
			ivr.Problem{Node: "a", Field: "branches[0].next", Severity: "error", Message: `names unknown node "zz"`}},
		{"consent without on_yes", `{"start": "a", "nodes": {"a": {"type": "consent", "prompt": "consent-q", "purpose": "service", "on_no": "b", "on_timeout": "b", "on_invalid": "b"}, "b": {"type": "hangup"}}}`,
			ivr.Problem{Node: "a", Field: "on_yes", Severity: "error", Message: "is required: a consent node must say where each answer goes"}},
		{"consent without on_no", `{"start": "a", "nodes": {"a": {"type": "consent", "prompt": "consent-q", "purpose": "service", "on_yes": "b", "on_timeout": "b", "on_invalid": "b"}, "b": {"type": "hangup"}}}`,
			ivr.Problem{Node: "a", Field: "on_no", Severity: "error", Message: "is required: a consent node must say where each answer goes"}},
		{"consent without on_timeout", `{"start": "a", "nodes": {"a": {"type": "consent", "prompt": "consent-q", "purpose": "service", "on_yes": "b", "on_no": "b", "on_invalid": "b"}, "b": {"type": "hangup"}}}`,
			ivr.Problem{Node: "a", Field: "on_timeout", Severity: "warning", Message: "is omitted, so the flow ends there: no consent, no recording"}},
		{"unreachable", `{"start": "a", "nodes": {"a": {"type": "hangup"}, "b": {"type": "hangup"}}}`,
			ivr.Problem{Node: "b", Severity: "error", Message: `is unreachable from start "a"`}},
		{"loop with no exit", `{"start": "a", "nodes": {
			"a": {"type": "play", "prompt": "hello", "next": "m"},
			"m": {"type": "gather", "prompt": "menu", "branches": [{"digits": "1", "next": "a"}], "on_invalid": "m", "on_timeout": "a"}}}`,
			ivr.Problem{Node: "a", Severity: "error", Message: `loop with no exit: no path from "a", "m" ends the flow`}},
		{"self loop", `{"start": "s", "nodes": {"s": {"type": "set", "disposition": "x", "next": "s"}}}`,
			ivr.Problem{Node: "s", Severity: "error", Message: `loop with no exit: no path from "s" ends the flow`}},
		{"unknown prompt", `{"start": "a", "nodes": {"a": {"type": "play", "prompt": "missing"}}}`,
			ivr.Problem{Node: "a", Field: "prompt", Severity: "error", Message: `names unknown prompt "missing"`}},
		{"unknown invalid prompt", `{"start": "a", "nodes": {"a": {"type": "gather", "prompt": "menu", "invalid_prompt": "gone", "next": "b"}, "b": {"type": "hangup"}}}`,
			ivr.Problem{Node: "a", Field: "invalid_prompt", Severity: "error", Message: `names unknown prompt "gone"`}},
		{"record before consent", `{"start": "r", "nodes": {"r": {"type": "record", "action": "start"}}}`,
			ivr.Problem{Node: "r", Field: "action", Severity: "error", Message: "recording may start before consent: a path from start reaches it without passing a consent node's on_yes"}},
		{"record after refusal", `{"start": "a", "nodes": {
			"a": {"type": "consent", "prompt": "consent-q", "purpose": "service", "on_yes": "r", "on_no": "r", "on_timeout": "e", "on_invalid": "e"},
			"r": {"type": "record", "action": "start", "next": "e"}, "e": {"type": "hangup"}}}`,
			ivr.Problem{Node: "r", Field: "action", Severity: "error", Message: "recording may start before consent: a path from start reaches it without passing a consent node's on_yes"}},
		{"record reachable by a webhook before consent", `{"start": "w", "nodes": {
			"w": {"type": "webhook", "url": "https://example.com/", "next": "a"},
			"a": {"type": "consent", "prompt": "consent-q", "purpose": "service", "on_yes": "r", "on_no": "e", "on_timeout": "e", "on_invalid": "e"},
			"r": {"type": "record", "action": "start", "next": "e"}, "e": {"type": "hangup"}}}`,
			ivr.Problem{Node: "r", Field: "action", Severity: "warning", Message: `recording may start before consent if webhook "w" replies with this node (the runner refuses to record without consent)`}},
		{"forbidden phrase", `{"start": "a", "nodes": {"a": {"type": "play", "prompt": "offer"}}}`,
			ivr.Problem{Node: "a", Field: "prompt", Severity: "error", Message: `prompt "offer" says forbidden phrase "free"`}},
		{"forbidden phrase across blanks", `{"start": "a", "nodes": {"a": {"type": "play", "prompt": "threat"}}}`,
			ivr.Problem{Node: "a", Field: "prompt", Severity: "error", Message: `prompt "threat" says forbidden phrase "legal action"`}},
		{"forbidden phrase in Chinese", `{"start": "a", "nodes": {"a": {"type": "play", "prompt": "cn"}}}`,
			ivr.Problem{Node: "a", Field: "prompt", Severity: "error", Message: `prompt "cn" says forbidden phrase "免费"`}},
		{"forbidden phrase in the invalid prompt", `{"start": "a", "nodes": {"a": {"type": "gather", "prompt": "menu", "invalid_prompt": "offer", "next": "b"}, "b": {"type": "hangup"}}}`,
			ivr.Problem{Node: "a", Field: "invalid_prompt", Severity: "error", Message: `prompt "offer" says forbidden phrase "free"`}},
		{"unknown prompt text", `{"start": "a", "nodes": {"a": {"type": "play", "prompt_url": "https://cdn.example.com/a.wav"}}}`,
			ivr.Problem{Node: "a", Field: "prompt_url", Severity: "warning", Message: "the text of a prompt URL is unknown: it was not checked for forbidden phrases"}},
		{"long opening", `{"start": "s", "nodes": {"s": {"type": "set", "disposition": "x", "next": "a"}, "a": {"type": "play", "prompt": "long", "next": "b"}, "b": {"type": "play", "prompt": "long"}}}`,
			ivr.Problem{Node: "a", Field: "prompt", Severity: "warning", Message: `the opening prompt "long" lasts 17.5 s, longer than 15.0 s`}},
		{"long opening under a custom limit", `{"start": "a", "opening_ms_max": 2000, "nodes": {"a": {"type": "gather", "prompt": "menu", "next": "b"}, "b": {"type": "hangup"}}}`,
			ivr.Problem{Node: "a", Field: "prompt", Severity: "warning", Message: `the opening prompt "menu" lasts 3.0 s, longer than 2.0 s`}},
		{"gather without branches", `{"start": "a", "nodes": {"a": {"type": "gather", "prompt": "menu", "on_invalid": "b", "on_timeout": "b"}, "b": {"type": "hangup"}}}`,
			ivr.Problem{Node: "a", Field: "branches", Severity: "warning", Message: "no branches and no next: every input follows on_invalid"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := validEnv()
			prompts := newPrompts(map[string]string{
				"hello": "Hello.", "menu": "Press 1.", "consent-q": "Press 1 to agree.",
				"offer": "Get it FREE today!", "threat": "We will take legal\n action.", "cn": "现在办理免费赠送",
				"long": "A long story.", "freedom": "Freedom and freebies, free-range.",
			})
			p := prompts["long"]
			p.DurationMS = 17500
			prompts["long"] = p
			env.Prompt = prompts.lookup
			problems := validateDoc(t, tc.doc, env)
			require.Contains(t, problems, tc.want, "problems: %v", problems)
			if tc.want.Severity == "warning" {
				require.NoError(t, problems.Err(), "warnings do not fail a flow")
			} else {
				err := problems.Err()
				require.Error(t, err)
				require.Equal(t, controller.EINVALID, controller.ErrorCode(err))
				require.Contains(t, err.Error(), tc.want.Message)
			}
		})
	}
}

func TestValidateWordBoundaries(t *testing.T) {
	t.Parallel()
	prompts := newPrompts(map[string]string{"a": "Freedom, freebies and carefree days.", "b": "It is free-range", "c": "免费"})
	env := ivr.Env{Prompt: prompts.lookup, ForbiddenPhrases: []string{"free", "  "}}
	require.Empty(t, validateDoc(t, `{"start": "a", "nodes": {"a": {"type": "play", "prompt": "a"}}}`, env))
	require.Len(t, validateDoc(t, `{"start": "a", "nodes": {"a": {"type": "play", "prompt": "b"}}}`, env), 1)
	env.ForbiddenPhrases = []string{"免费"}
	require.Len(t, validateDoc(t, `{"start": "a", "nodes": {"a": {"type": "play", "prompt": "c"}}}`, env), 1)
}

func TestValidateLoopWithExit(t *testing.T) {
	t.Parallel()
	// A menu that repeats itself is fine as long as some input leaves it.
	problems := validateDoc(t, `{"start": "m", "nodes": {
		"m": {"type": "gather", "prompt": "menu", "branches": [{"digits": "9", "next": "m"}, {"digits": "1", "next": "bye"}], "on_invalid": "m", "on_timeout": "m"},
		"bye": {"type": "hangup"}}}`, validEnv())
	require.Empty(t, problems)
}

func TestValidateWebhookMakesEveryNodeReachable(t *testing.T) {
	t.Parallel()
	problems := validateDoc(t, `{"start": "w", "nodes": {
		"w": {"type": "webhook", "url": "https://example.com/"},
		"sales": {"type": "transfer", "to": "sofia/gateway/pbx/1000"}}}`, validEnv())
	require.Empty(t, problems)
}

func TestProblemsErr(t *testing.T) {
	t.Parallel()
	require.NoError(t, ivr.Problems{{Node: "a", Severity: "warning", Message: "w"}}.Err())
	err := ivr.Problems{
		{Node: "a", Severity: "warning", Message: "w"},
		{Node: "b", Field: "next", Severity: "error", Message: "names unknown node \"c\""},
		{Field: "start", Severity: "error", Message: "names unknown node \"x\""},
	}.Err()
	require.Equal(t, controller.EINVALID, controller.ErrorCode(err))
	require.Equal(t, "nodes.b.next", controller.ErrorField(err))
	require.Equal(t, `flow has 2 errors: node "b": next: names unknown node "c"; start: names unknown node "x"`, controller.ErrorMessage(err))
}
