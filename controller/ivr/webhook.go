package ivr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/callgate/callgate/controller"
)

// WebhookRequest is the JSON body a webhook node POSTs.
type WebhookRequest struct {
	CallID      controller.CallID `json:"call_id"`
	TenantID    string            `json:"tenant_id"`
	FlowID      string            `json:"flow_id"`
	FlowVersion int               `json:"flow_version"`
	Node        string            `json:"node"`
	ToMasked    string            `json:"to_masked"` // controller.MaskNumber of the callee
	From        string            `json:"from"`      // the caller ID presented
	Path        []WebhookStep     `json:"path"`      // the steps so far
	Tags        map[string]string `json:"tags"`
	Disposition string            `json:"disposition,omitempty"`
}

// WebhookStep is one step of WebhookRequest.Path.
type WebhookStep struct {
	Node   string `json:"node"`
	Digits string `json:"digits,omitempty"`
	Result string `json:"result,omitempty"`
}

// WebhookReply is what a webhook answers (2xx, JSON): at most one of Next
// (a node of the running flow), Flow (a flow document of at most
// MaxSubFlowNodes nodes and no webhook node, which replaces the rest of the
// run) and Hangup. An empty body or {} continues with the node's next.
type WebhookReply struct {
	Next   string          `json:"next,omitempty"`
	Flow   json.RawMessage `json:"flow,omitempty"`
	Hangup bool            `json:"hangup,omitempty"`
}

// webhookError is a webhook failure, followed through on_error if set.
type webhookError struct{ msg string }

func (e *webhookError) Error() string { return e.msg }

func webhookErrorf(format string, args ...any) error {
	return &webhookError{msg: fmt.Sprintf(format, args...)}
}

func (ru *run) webhook(step *Step, n *Node) (string, error) {
	next, err := ru.callWebhook(step, n)
	var werr *webhookError
	if !errors.As(err, &werr) {
		return next, err
	}
	step.Result, step.Error = "error", ru.scrub(werr.msg)
	if n.OnError != "" {
		ru.log.Warn("webhook failed, following on_error", "node", step.Node, "error", step.Error)
		return n.OnError, nil
	}
	return "", err
}

// callWebhook POSTs the run so far, signed, and reads the reply. A URL
// the egress guard refuses is a webhook error like a network failure.
func (ru *run) callWebhook(step *Step, n *Node) (string, error) {
	client, err := ru.webhookClient(n.URL)
	if err != nil {
		return "", err
	}
	secret, err := ru.webhookSecret()
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(ru.webhookRequest(step.Node))
	if err != nil {
		return "", fmt.Errorf("encoding the webhook request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ru.ctx, msDuration(n.TimeoutMS))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.URL, bytes.NewReader(body))
	if err != nil {
		return "", webhookErrorf("webhook URL is unusable: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "callgate-ivr")
	signedAt := ru.now()
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(signedAt.Unix(), 10))
	req.Header.Set(HeaderSignature, SignWebhook(secret, signedAt, body))
	timedOut := func() error {
		if err := ru.ctx.Err(); err != nil {
			return err // the run was canceled, not the webhook
		}
		if ctx.Err() != nil {
			return webhookErrorf("webhook timed out after %d ms", n.TimeoutMS)
		}
		return nil
	}
	resp, err := client.Do(req)
	if err != nil {
		if terr := timedOut(); terr != nil {
			return "", terr
		}
		if rerr := refusedWebhook(err); rerr != nil {
			return "", rerr
		}
		return "", webhookErrorf("webhook request failed: %v", err)
	}
	defer resp.Body.Close()
	limit := ru.r.MaxWebhookBody
	if limit <= 0 {
		limit = DefaultMaxWebhookBody
	}
	reply, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	step.Webhook = truncate(string(reply), maxWebhookEcho)
	switch {
	case err != nil:
		if terr := timedOut(); terr != nil {
			return "", terr
		}
		return "", webhookErrorf("reading the webhook reply: %v", err)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return "", webhookErrorf("webhook replied %d", resp.StatusCode)
	case int64(len(reply)) > limit:
		return "", webhookErrorf("webhook reply exceeds %d bytes", limit)
	}
	return ru.followReply(step, n, reply)
}

func (ru *run) webhookRequest(node string) WebhookRequest {
	path := make([]WebhookStep, len(ru.res.Path))
	for i, s := range ru.res.Path {
		path[i] = WebhookStep{Node: s.Node, Digits: s.Digits, Result: s.Result}
	}
	tags := ru.res.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return WebhookRequest{CallID: ru.call.ID, TenantID: ru.call.TenantID, FlowID: ru.flowID, FlowVersion: ru.version,
		Node: node, ToMasked: controller.MaskNumber(ru.call.To), From: ru.call.From, Path: path, Tags: tags,
		Disposition: ru.res.Disposition}
}

// followReply acts on a 2xx reply.
func (ru *run) followReply(step *Step, n *Node, reply []byte) (string, error) {
	if len(bytes.TrimSpace(reply)) == 0 {
		step.Result = "continue"
		return n.Next, nil
	}
	var r WebhookReply
	dec := json.NewDecoder(bytes.NewReader(reply))
	dec.DisallowUnknownFields()
	err := dec.Decode(&r)
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case err == nil && dec.More():
		return "", webhookErrorf("webhook reply is not valid JSON: unexpected data after the object")
	case err == nil:
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF):
		return "", webhookErrorf("webhook reply is not valid JSON: %v", err)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return "", webhookErrorf("webhook reply must be a JSON object")
		}
		return "", webhookErrorf("webhook reply field %s must be %s", typ.Field, jsonKind(typ.Type.Kind().String()))
	default:
		return "", webhookErrorf("webhook reply is not valid: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	hasFlow := len(r.Flow) > 0 && string(r.Flow) != "null"
	set := 0
	for _, b := range []bool{r.Next != "", hasFlow, r.Hangup} {
		if b {
			set++
		}
	}
	switch {
	case set > 1:
		return "", webhookErrorf("webhook reply must hold only one of next, flow and hangup")
	case r.Hangup:
		step.Result = "hangup"
		return "", &endRun{outcome: OutcomeCompleted, cause: DefaultHangupCause}
	case r.Next != "":
		if ru.flow.Nodes[r.Next] == nil {
			return "", webhookErrorf("webhook named unknown node %s", quoteShort(r.Next))
		}
		step.Result = "next"
		return r.Next, nil
	case hasFlow:
		sub, err := ru.subFlow(r.Flow)
		if err != nil {
			return "", err
		}
		ru.flow, ru.sub = sub, step.Node
		step.Result = "flow"
		ru.log.Info("webhook replaced the rest of the flow", "node", step.Node, "nodes", len(sub.Nodes))
		return sub.Start, nil
	default:
		step.Result = "continue"
		return n.Next, nil
	}
}

// subFlow decodes and validates a flow a webhook replied with.
func (ru *run) subFlow(raw json.RawMessage) (*Flow, error) {
	sub, err := Decode(raw)
	if err != nil {
		return nil, webhookErrorf("webhook flow is invalid: %s", errorText(err))
	}
	if len(sub.Nodes) > MaxSubFlowNodes {
		return nil, webhookErrorf("webhook flow has %d nodes, at most %d", len(sub.Nodes), MaxSubFlowNodes)
	}
	for _, id := range sortedIDs(sub) {
		if sub.Nodes[id].Type == TypeWebhook {
			return nil, webhookErrorf("webhook flow must not hold webhook nodes (node %q)", id)
		}
	}
	env := Env{ForbiddenPhrases: ru.r.ForbiddenPhrases, Egress: ru.r.Egress}
	if ru.r.Prompts != nil {
		env.Prompt = func(name string) (controller.Prompt, bool) {
			p, _, err := ru.r.Prompts.Resolve(ru.ctx, ru.call.TenantID, name)
			return p, err == nil
		}
	}
	if err := validate(sub, env, ru.res.ConsentID != "").Err(); err != nil {
		return nil, webhookErrorf("webhook flow is invalid: %s", errorText(err))
	}
	return sub, nil
}

// errorText is an error's message without its code.
func errorText(err error) string {
	var e *controller.Error
	if errors.As(err, &e) {
		if e.Field != "" && !strings.HasPrefix(e.Message, "flow has ") {
			return e.Field + ": " + e.Message
		}
		return e.Message
	}
	return err.Error()
}

// truncate cuts s to at most n bytes of valid UTF-8 (invalid bytes and a
// rune cut in two become "?").
func truncate(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "?")
}

func msDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
