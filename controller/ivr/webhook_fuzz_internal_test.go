package ivr

import (
	"context"
	"errors"
	"log/slog"
	"testing"
)

// FuzzWebhookReply: whatever an integrator's server answers, following the
// reply never panics and only ever leads to a node that exists (in the flow
// or in the sub-flow the reply supplied), to the node's own next, or to an
// end of the run; anything else is a webhook error.
func FuzzWebhookReply(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `{"next": "tag"}`, `{"next": "nope"}`, `{"hangup": true}`, `{"hangup": "yes"}`,
		`{"flow": {"start": "x", "nodes": {"x": {"type": "hangup"}}}}`, `{"flow": null}`,
		`{"next": "tag", "hangup": true}`, `[1, 2]`, `{"next": "tag"} trailing`, `{"unknown": 1}`,
		`{"flow": {"start": "x", "nodes": {"x": {"type": "webhook", "url": "https://h"}}}}`,
	} {
		f.Add([]byte(seed))
	}
	flow, err := Decode([]byte(`{"start": "hook", "nodes": {
		"hook": {"type": "webhook", "url": "https://example.com/hook", "next": "tag", "on_error": "tag"},
		"tag":  {"type": "set", "disposition": "x"}}}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, reply []byte) {
		ru := &run{r: &Runner{}, ctx: context.Background(), flow: flow, log: slog.New(slog.DiscardHandler)}
		step := &Step{Node: "hook", Type: TypeWebhook}
		next, err := ru.followReply(step, flow.Nodes["hook"], reply)
		var end *endRun
		var hookErr *webhookError
		switch {
		case errors.As(err, &end):
		case errors.As(err, &hookErr):
			if hookErr.msg == "" {
				t.Fatal("a webhook error without a message")
			}
		case err != nil:
			t.Fatalf("unexpected error kind: %v", err)
		case next == "":
		case ru.flow.Nodes[next] == nil:
			t.Fatalf("reply %q leads to unknown node %q", reply, next)
		}
	})
}
