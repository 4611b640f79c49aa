package ivr_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller/ivr"
)

// webhookFlow asks the webhook at url after a consent, with on_error when
// onError is set.
func webhookFlow(url string, timeoutMS int, onError bool) string {
	errRef := ""
	if onError {
		errRef = `, "on_error": "failed"`
	}
	return fmt.Sprintf(`{"start": "ask", "nodes": {
		"ask":    {"type": "consent", "prompt": "consent-q", "purpose": "marketing", "on_yes": "hook", "on_no": "bye", "on_timeout": "bye", "on_invalid": "bye"},
		"hook":   {"type": "webhook", "url": %q, "timeout_ms": %d, "next": "after"%s},
		"after":  {"type": "set", "disposition": "continued", "next": "bye"},
		"sales":  {"type": "set", "disposition": "sales", "next": "bye"},
		"failed": {"type": "set", "disposition": "webhook_failed", "next": "bye"},
		"bye":    {"type": "hangup"}}}`, url, timeoutMS, errRef)
}

func reply(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func TestWebhook(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(reply(200, `{}`))
	closed.Close()
	// slow blocks until the client gives up; it reads the body first so
	// the server notices the connection closing.
	slow := func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}

	for _, tc := range []struct {
		name      string
		handler   http.HandlerFunc // nil: the closed server
		timeoutMS int
		path      []string
		result    string
		err       string // of the webhook step
		disp      string
	}{
		{name: "down", err: "webhook request failed: ", path: []string{"ask", "hook", "failed", "bye"}, result: "error", disp: "webhook_failed"},
		{name: "slow", handler: slow, timeoutMS: 50, err: "webhook timed out after 50 ms", path: []string{"ask", "hook", "failed", "bye"}, result: "error", disp: "webhook_failed"},
		{name: "garbage", handler: reply(200, `<html>oops</html>`), err: "webhook reply is not valid JSON: ", path: []string{"ask", "hook", "failed", "bye"}, result: "error", disp: "webhook_failed"},
		{name: "500", handler: reply(500, `{"next": "sales"}`), err: "webhook replied 500", path: []string{"ask", "hook", "failed", "bye"}, result: "error", disp: "webhook_failed"},
		{name: "unknown node", handler: reply(200, `{"next": "x"}`), err: `webhook named unknown node "x"`, path: []string{"ask", "hook", "failed", "bye"}, result: "error", disp: "webhook_failed"},
		{name: "unknown field", handler: reply(200, `{"goto": "sales"}`), err: `webhook reply is not valid: unknown field "goto"`, path: []string{"ask", "hook", "failed", "bye"}, result: "error", disp: "webhook_failed"},
		{name: "two answers", handler: reply(200, `{"next": "sales", "hangup": true}`), err: "only one of", path: []string{"ask", "hook", "failed", "bye"}, result: "error", disp: "webhook_failed"},
		{name: "too large", handler: reply(200, `{"next": "sales", "x": "`+strings.Repeat("a", 70<<10)+`"}`), err: "webhook reply exceeds 65536 bytes", path: []string{"ask", "hook", "failed", "bye"}, result: "error", disp: "webhook_failed"},
		{name: "valid next", handler: reply(200, `{"next": "sales"}`), path: []string{"ask", "hook", "sales", "bye"}, result: "next", disp: "sales"},
		{name: "no content", handler: reply(204, ``), path: []string{"ask", "hook", "after", "bye"}, result: "continue", disp: "continued"},
		{name: "empty object", handler: reply(200, `{}`), path: []string{"ask", "hook", "after", "bye"}, result: "continue", disp: "continued"},
		{name: "hangup", handler: reply(200, `{"hangup": true}`), path: []string{"ask", "hook"}, result: "hangup"},
		{name: "sub-flow", handler: reply(200, `{"flow": {"start": "s1", "nodes": {
			"s1": {"type": "record", "action": "start", "next": "s2"},
			"s2": {"type": "set", "tags": {"route": "sub"}, "disposition": "sub", "next": "bye"},
			"bye": {"type": "hangup", "cause": "NORMAL_CLEARING"}}}}`),
			path: []string{"ask", "hook", "s1", "s2", "bye"}, result: "flow", disp: "sub"},
		{name: "sub-flow with a webhook", handler: reply(200, `{"flow": {"start": "w", "nodes": {"w": {"type": "webhook", "url": "https://example.com/"}}}}`),
			err: "webhook flow must not hold webhook nodes", path: []string{"ask", "hook", "failed", "bye"}, result: "error", disp: "webhook_failed"},
		{name: "invalid sub-flow", handler: reply(200, `{"flow": {"start": "s1", "nodes": {"s1": {"type": "play", "prompt": "free-offer"}}}}`),
			err: `webhook flow is invalid: flow has 1 error: node "s1": prompt: prompt "free-offer" says forbidden phrase "free"`, path: []string{"ask", "hook", "failed", "bye"}, result: "error", disp: "webhook_failed"},
		{name: "malformed sub-flow", handler: reply(200, `{"flow": {"start": "s1", "nodes": {"s1": {"type": "play", "tone": "x"}}}}`),
			err: "webhook flow is invalid: nodes.s1.tone: must start with", path: []string{"ask", "hook", "failed", "bye"}, result: "error", disp: "webhook_failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := closed.URL
			if tc.handler != nil {
				srv := httptest.NewServer(tc.handler)
				t.Cleanup(srv.Close)
				url = srv.URL
			}
			if tc.timeoutMS == 0 {
				tc.timeoutMS = 2000
			}
			b := setup(t, "1")
			b.prompts["free-offer"] = b.prompts["hello"]
			p := b.prompts["free-offer"]
			p.Text = "A FREE offer!"
			b.prompts["free-offer"] = p
			b.runner.ForbiddenPhrases = []string{"free"}
			res := b.run(t, webhookFlow(url, tc.timeoutMS, true))

			require.Equal(t, ivr.OutcomeCompleted, res.Outcome, res.Err)
			require.Equal(t, tc.path, nodes(res.Path))
			hook := res.Path[1]
			require.Equal(t, tc.result, hook.Result)
			if tc.err == "" {
				require.Empty(t, hook.Error)
			} else {
				require.Contains(t, hook.Error, tc.err)
			}
			require.Equal(t, tc.disp, res.Disposition)
			require.LessOrEqual(t, len(hook.Webhook), 512)
			if tc.name == "sub-flow" {
				require.Equal(t, "hook", res.Path[2].Flow, "sub-flow steps name the webhook")
				require.Equal(t, "started", res.Path[2].Result, "the run's consent carries into the sub-flow")
				require.Equal(t, map[string]string{"route": "sub"}, res.Tags)
			}
			if tc.name == "valid next" {
				require.Equal(t, `{"next": "sales"}`, hook.Webhook)
			}
		})
	}
}

func TestWebhookFailureWithoutOnErrorHangsUp(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(reply(500, `boom`))
	t.Cleanup(srv.Close)
	b := setup(t, "1")
	res := b.run(t, webhookFlow(srv.URL, 2000, false))

	require.Equal(t, ivr.OutcomeError, res.Outcome)
	require.Equal(t, []string{"ask", "hook"}, nodes(res.Path))
	require.Equal(t, `node "hook": webhook replied 500`, res.Err)
	require.Equal(t, "boom", res.Path[1].Webhook)
	require.Equal(t, "hangup NORMAL_TEMPORARY_FAILURE", b.ev.all()[len(b.ev.all())-1])
}

func TestWebhookRequest(t *testing.T) {
	t.Parallel()
	got := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		require.Equal(t, http.MethodPost, r.Method)
		require.Equal(t, "application/json", r.Header.Get("Content-Type"))
		got <- body
		_, _ = io.WriteString(w, `{"next": "sales"}`)
	}))
	t.Cleanup(srv.Close)
	b := setup(t, "1")
	res := b.run(t, webhookFlow(srv.URL, 2000, true))
	require.Equal(t, ivr.OutcomeCompleted, res.Outcome, res.Err)

	var body []byte
	select {
	case body = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the webhook was not called")
	}
	require.NotContains(t, string(body), b.call.To, "the callee's number is never sent in full")
	var req ivr.WebhookRequest
	require.NoError(t, json.Unmarshal(body, &req))
	require.Equal(t, ivr.WebhookRequest{
		CallID: b.call.ID, TenantID: "t1", FlowID: "consent-flow", FlowVersion: 3, Node: "hook",
		ToMasked: "****4567", From: b.call.From,
		Path: []ivr.WebhookStep{{Node: "ask", Digits: "1", Result: "yes"}}, Tags: map[string]string{},
	}, req)
}
