package ivr_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/ivr"
)

// FuzzDecodeFlow feeds arbitrary documents through Decode and Validate:
// neither panics, Decode fails only with an EINVALID or ETOOLARGE
// *controller.Error, Validate's problems all name a severity, and an
// accepted flow re-encodes to a document Decode accepts again. Seeds live
// in testdata/fuzz/FuzzDecodeFlow as well.
func FuzzDecodeFlow(f *testing.F) {
	for _, seed := range []string{
		exampleFlow,
		`{"start": "a", "nodes": {"a": {"type": "hangup"}}}`,
		`{"start": "a", "nodes": {"a": {"type": "play", "tone": "tone_stream://%(1,0,1)", "next": "a"}}}`,
		`{"start": "a", "nodes": {"a": {"type": "gather", "prompt": "m", "branches": [{"regex": "(a|", "next": "a"}]}}}`,
		`{"start": "a", "nodes": {"a": {"type": "set", "tags": {"k": "v"}}, "a": {"type": "hangup"}}}`,
		`{"start": "r", "nodes": {"r": {"type": "record", "action": "start"}}}`,
		`{"start": "w", "nodes": {"w": {"type": "webhook", "url": "https://example.com/", "on_error": "w"}}}`,
		`{"start": 1}`, `[]`, `null`, ``, `{"nodes": {"": {}}}`,
	} {
		f.Add([]byte(seed))
	}
	prompts := newPrompts(map[string]string{"hello": "Hello, free stuff!", "m": "Menu.", "consent-q": "Agree?"})
	env := ivr.Env{Prompt: prompts.lookup, ForbiddenPhrases: []string{"free", "legal action", "免费"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		flow, err := ivr.Decode(data)
		if err != nil {
			var e *controller.Error
			if !errors.As(err, &e) || (e.Code != controller.EINVALID && e.Code != controller.ETOOLARGE) {
				t.Fatalf("Decode failed with %v, want an EINVALID or ETOOLARGE *controller.Error", err)
			}
			return
		}
		for _, p := range ivr.Validate(flow, env) {
			if p.Severity != ivr.SeverityError && p.Severity != ivr.SeverityWarning {
				t.Fatalf("problem %+v has no severity", p)
			}
		}
		_ = ivr.Validate(flow, ivr.Env{}).Err()
		again, err := json.Marshal(flow)
		if err != nil {
			t.Fatalf("re-encoding an accepted flow: %v", err)
		}
		if _, err := ivr.Decode(again); err != nil {
			t.Fatalf("accepted %q, but not its re-encoding %q: %v", data, again, err)
		}
	})
}
