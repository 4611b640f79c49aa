package ivr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/egress"
)

// Outcomes of a run (controller.FlowRun.Outcome).
const (
	OutcomeCompleted   = "completed"   // the flow ended or hung up the call as written
	OutcomeHungUp      = "hungup"      // the callee hung up during a step
	OutcomeTransferred = "transferred" // a transfer bridged the call
	OutcomeAgent       = "agent"       // an agent took the call
	OutcomeAbandoned   = "abandoned"   // no agent in time: identified, hung up
	OutcomeError       = "error"       // a step failed: the call was hung up with NORMAL_TEMPORARY_FAILURE
)

// Run limits and defaults.
const (
	MaxSteps              = 500      // steps in one run before it ends with OutcomeError
	DefaultMaxWebhookBody = 64 << 10 // bytes of a webhook reply
	maxWebhookEcho        = 512      // bytes of a reply kept in Step.Webhook
	failureCause          = "NORMAL_TEMPORARY_FAILURE"
	hangupTimeout         = 10 * time.Second
)

// Ledger records consent evidence and refusal locks (controller.ComplianceStore).
type Ledger interface {
	// CreateConsent records consent evidence and returns its ID.
	CreateConsent(ctx context.Context, c controller.Consent) (string, error)
	// LockNumber records a refusal and returns its ID and how many queued
	// calls were canceled.
	LockNumber(ctx context.Context, tenant string, r controller.Refusal) (string, int, error)
}

// Recordings creates recordings of calls.
type Recordings interface {
	// Begin creates a recording of call started under consentID and returns
	// its ID and the path on the switch to record to.
	Begin(ctx context.Context, call controller.Call, consentID string) (recordingID, path string, err error)
}

// PromptResolver finds uploaded prompts.
type PromptResolver interface {
	// Resolve returns the newest version of the tenant's prompt name and the
	// path the switch plays it from. Returns ENOTFOUND if there is none.
	Resolve(ctx context.Context, tenant, name string) (controller.Prompt, string, error)
}

// Runner runs flows on answered calls. Media and Hangup are required; the
// other dependencies only by the nodes that use them (a consent node needs
// Ledger, record start Recordings, a prompt name Prompts). A Runner is safe
// for concurrent runs once set up.
type Runner struct {
	Media controller.Media
	// Hangup ends a call with a Q.850 cause (controller.Switch.Hangup).
	Hangup func(ctx context.Context, id controller.CallID, cause string) error
	// Agents connects calls to agents (agent nodes); nil: an agent node
	// fails the run.
	Agents controller.AgentDesk
	// Disposition stores a call's disposition at once (an abandoned call's,
	// before it is hung up, so the campaign never sees it ended without);
	// nil: it is stored with the run's other tags when the run ends.
	Disposition func(ctx context.Context, call controller.Call, disposition string) error
	Ledger      Ledger
	Recordings  Recordings
	Prompts     PromptResolver
	// Egress guards outbound URLs: a webhook URL it refuses (checked
	// before the request, and again on the address dialled) fails the
	// webhook, which follows on_error; a prompt URL it refuses (checked,
	// resolved, before the switch is told to fetch it) fails the run.
	// Nil: every webhook and prompt URL is refused.
	Egress *egress.Guard
	// WebhookSecret returns the secret a tenant's webhook requests are
	// signed with (see HeaderSignature), at least MinWebhookSecretLen
	// bytes; nil, or no secret for the tenant: its webhooks are not sent
	// and fail as a refused one does.
	WebhookSecret func(tenant string) []byte
	// HTTP sends webhooks; nil: Egress.Client() (no redirects followed).
	// A client set here must dial through Egress.Transport(), or the
	// connect-time checks are lost. Each request's deadline is its node's
	// timeout_ms.
	HTTP *http.Client
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Log is enriched once per call; nil discards. Numbers are masked.
	Log *slog.Logger
	// MaxWebhookBody caps a webhook reply; 0: DefaultMaxWebhookBody.
	MaxWebhookBody int64
	// ForbiddenPhrases are checked in flows that webhooks reply with.
	ForbiddenPhrases []string
	// RefusalLock is how long pressing "no" locks the number; 0:
	// controller.DefaultRefusalLock, negative: forever.
	RefusalLock time.Duration
	// OnStep, if set, is called after each step (to persist progress).
	OnStep func(Step)
}

// Result is what a run did.
type Result struct {
	Outcome      string            `json:"outcome"`
	Path         []Step            `json:"path"`
	Tags         map[string]string `json:"tags,omitempty"`
	Disposition  string            `json:"disposition,omitempty"`
	ConsentID    string            `json:"consent_id,omitempty"`
	RefusalID    string            `json:"refusal_id,omitempty"`
	RecordingIDs []string          `json:"recording_ids,omitempty"`
	Err          string            `json:"error,omitempty"` // why, for OutcomeError
}

// Step is one node executed. Result says what happened, per type: play
// "played"; gather "success" | "timeout" | "invalid" | "no_match"; consent
// "yes" | "no" | "timeout" | "invalid"; record "started" | "stopped" |
// "paused" | "resumed" | "refused"; transfer "bridged" | "not_bridged[: <cause>]";
// webhook "next" | "flow" | "hangup" | "continue" | "error"; set "set";
// hangup the cause; "hungup" when the call hung up during the step.
type Step struct {
	Node       string    `json:"node"`
	Type       string    `json:"type"`
	Flow       string    `json:"flow,omitempty"` // the webhook node whose reply supplied the flow; "" for the flow itself
	At         time.Time `json:"at"`
	DurationMS int64     `json:"duration_ms"`
	Prompt     string    `json:"prompt,omitempty"` // the uploaded prompt played ("<name>.v<version>")
	Digits     string    `json:"digits,omitempty"` // as "*"s while the recording is paused
	Result     string    `json:"result,omitempty"`
	Webhook    string    `json:"webhook,omitempty"` // the reply, cut to 512 bytes
	Error      string    `json:"error,omitempty"`
}

// endRun ends a run successfully at a step.
type endRun struct {
	outcome string
	cause   string // to hang up with; "" hangs up nothing
}

func (e *endRun) Error() string { return "run ended: " + e.outcome }

// run is the state of one call's run.
type run struct {
	r        *Runner
	ctx      context.Context
	call     controller.Call
	flowID   string
	version  int
	log      *slog.Logger
	flow     *Flow
	sub      string // the webhook node that supplied flow, if any
	res      Result
	recPath  string // the active recording's path
	recPause bool
}

// Run executes flow (from Decode) on an answered call and returns what it
// did; it never returns an error: a failed step ends the run with
// OutcomeError and the call hung up NORMAL_TEMPORARY_FAILURE. After the
// callee hangs up nothing more is written. Cancelling ctx ends the run with
// OutcomeError.
func (r *Runner) Run(ctx context.Context, call controller.Call, flow *Flow, flowID string, version int) Result {
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ru := &run{r: r, ctx: ctx, call: call, flowID: flowID, version: version, flow: flow,
		log: log.With("call_id", call.ID, "flow_id", flowID, "flow_version", version, "to", controller.MaskNumber(call.To))}
	ru.res.Path = []Step{}
	switch {
	case r.Media == nil || r.Hangup == nil:
		ru.res.Outcome, ru.res.Err = OutcomeError, "the runner has no media or hangup"
		ru.log.Error("flow not run", "error", ru.res.Err)
		return ru.res
	case flow == nil || !flow.decoded:
		return ru.fail("the flow was not decoded with ivr.Decode")
	}
	ru.log.Info("flow started")
	id := flow.Start
	for {
		if id == "" { // the flow ends here
			return ru.end(&endRun{outcome: OutcomeCompleted, cause: DefaultHangupCause})
		}
		if err := ctx.Err(); err != nil {
			return ru.fail("run canceled: " + err.Error())
		}
		if len(ru.res.Path) >= MaxSteps {
			return ru.fail(fmt.Sprintf("the run took %d steps: a loop that never ends?", MaxSteps))
		}
		n := ru.flow.Nodes[id]
		if n == nil {
			return ru.fail(fmt.Sprintf("node %s does not exist", quoteShort(id)))
		}
		step := Step{Node: id, Type: n.Type, Flow: ru.sub, At: ru.now()}
		next, err := ru.exec(&step, n)
		step.DurationMS = ru.now().Sub(step.At).Milliseconds()
		var end *endRun
		switch {
		case err == nil:
		case errors.Is(err, controller.ErrHungUp):
			step.Result, step.Error = "hungup", "the call hung up"
		case errors.As(err, &end):
		case step.Error == "":
			step.Error = ru.scrub(err.Error())
		}
		ru.record(step)
		switch {
		case err == nil:
			id = next
		case errors.Is(err, controller.ErrHungUp):
			ru.res.Outcome = OutcomeHungUp
			ru.log.Info("flow ended: the call hung up", "node", id, "steps", len(ru.res.Path))
			return ru.result()
		case end != nil:
			return ru.end(end)
		case ctx.Err() != nil:
			return ru.fail(fmt.Sprintf("run canceled during node %q: %v", id, ctx.Err()))
		default:
			return ru.fail(fmt.Sprintf("node %q: %s", id, step.Error))
		}
	}
}

// exec runs one node and returns the next node ("" ends the flow). An
// error wrapping ErrHungUp or an *endRun ends the run; any other fails it.
func (ru *run) exec(step *Step, n *Node) (string, error) {
	switch n.Type {
	case TypePlay:
		path, _, err := ru.playable(step, n)
		if err != nil {
			return "", err
		}
		if err := ru.r.Media.Play(ru.ctx, ru.call.ID, path); err != nil {
			return "", fmt.Errorf("playing: %w", err)
		}
		step.Result = "played"
		return n.Next, nil
	case TypeGather:
		return ru.gather(step, n)
	case TypeConsent:
		return ru.consent(step, n)
	case TypeRecord:
		return ru.recordStep(step, n)
	case TypeTransfer:
		res, err := ru.r.Media.Transfer(ru.ctx, ru.call.ID, n.To)
		if err != nil {
			return "", fmt.Errorf("transferring: %w", err)
		}
		if res.Bridged {
			step.Result = "bridged"
			return "", &endRun{outcome: OutcomeTransferred}
		}
		step.Result = "not_bridged"
		if res.HangupCause != "" {
			step.Result += ": " + res.HangupCause
		}
		return n.Next, nil
	case TypeWebhook:
		return ru.webhook(step, n)
	case TypeAgent:
		return ru.agent(step, n)
	case TypeSet:
		if len(n.Tags) > 0 && ru.res.Tags == nil {
			ru.res.Tags = map[string]string{}
		}
		for k, v := range n.Tags {
			ru.res.Tags[k] = v
		}
		if n.Disposition != "" {
			ru.res.Disposition = n.Disposition
		}
		step.Result = "set"
		return n.Next, nil
	case TypeHangup:
		step.Result = n.Cause
		return "", &endRun{outcome: OutcomeCompleted, cause: n.Cause}
	}
	return "", fmt.Errorf("unknown node type %q", n.Type)
}

// playable returns what the switch plays for a node's prompt, and the
// uploaded prompt if it is one.
func (ru *run) playable(step *Step, n *Node) (string, controller.Prompt, error) {
	switch {
	case n.PromptURL != "":
		if err := ru.checkPromptURL(n.PromptURL); err != nil {
			return "", controller.Prompt{}, err
		}
		return n.PromptURL, controller.Prompt{}, nil
	case n.Tone != "":
		return n.Tone, controller.Prompt{}, nil
	}
	p, path, err := ru.resolve(n.Prompt)
	if err != nil {
		return "", controller.Prompt{}, err
	}
	step.Prompt = promptID(p)
	return path, p, nil
}

func (ru *run) resolve(name string) (controller.Prompt, string, error) {
	if ru.r.Prompts == nil {
		return controller.Prompt{}, "", fmt.Errorf("prompt %q: the runner has no prompt resolver", name)
	}
	p, path, err := ru.r.Prompts.Resolve(ru.ctx, ru.call.TenantID, name)
	if err != nil {
		return controller.Prompt{}, "", fmt.Errorf("resolving prompt %q: %w", name, err)
	}
	return p, path, nil
}

func (ru *run) gather(step *Step, n *Node) (string, error) {
	req, _, err := ru.gatherRequest(step, n)
	if err != nil {
		return "", err
	}
	req.MinDigits, req.MaxDigits = n.MinDigits, n.MaxDigits
	req.DigitTimeout = time.Duration(n.DigitTimeoutMS) * time.Millisecond
	req.Terminators = n.Terminators
	req.Regex = switchRegex(n)
	res, err := ru.r.Media.Gather(ru.ctx, ru.call.ID, req)
	if err != nil {
		return "", fmt.Errorf("gathering digits: %w", err)
	}
	ru.setDigits(step, res.Digits)
	step.Result = res.Status
	switch res.Status {
	case controller.GatherTimeout:
		return n.OnTimeout, nil
	case controller.GatherInvalid:
		return n.OnInvalid, nil
	case controller.GatherSuccess:
	default:
		return "", fmt.Errorf("the switch reported gather status %q", res.Status)
	}
	for _, b := range n.Branches {
		if b.Digits != "" && b.Digits == res.Digits {
			return b.Next, nil
		}
	}
	for _, b := range n.Branches {
		if b.re != nil && b.re.MatchString(res.Digits) {
			return b.Next, nil
		}
	}
	if n.Next != "" {
		return n.Next, nil
	}
	step.Result = "no_match"
	return n.OnInvalid, nil
}

// gatherRequest fills what gather and consent nodes share.
func (ru *run) gatherRequest(step *Step, n *Node) (controller.GatherRequest, controller.Prompt, error) {
	prompt, p, err := ru.playable(step, n)
	if err != nil {
		return controller.GatherRequest{}, p, err
	}
	req := controller.GatherRequest{Prompt: prompt, Tries: n.Tries, Timeout: time.Duration(n.TimeoutMS) * time.Millisecond}
	if n.InvalidPrompt != "" {
		if _, req.InvalidPrompt, err = ru.resolve(n.InvalidPrompt); err != nil {
			return controller.GatherRequest{}, p, err
		}
	}
	return req, p, nil
}

// switchRegex is the input the switch accepts for a gather (it replays the
// invalid prompt on anything else): any digits when next catches unmatched
// input or when the branches' regexes cannot be carried to the switch
// safely; the runner matches the branches itself in every case.
func switchRegex(n *Node) string {
	if n.Next != "" || len(n.Branches) == 0 {
		return ""
	}
	parts := make([]string, 0, len(n.Branches))
	for _, b := range n.Branches {
		if b.Digits != "" {
			parts = append(parts, strings.ReplaceAll(b.Digits, "*", "[*]"))
		} else {
			parts = append(parts, "(?:"+b.Regex+")")
		}
	}
	re := "^(?:" + strings.Join(parts, "|") + ")$"
	if len(re) > maxRegexLen || strings.ContainsAny(re, " \t'\"\\{}") {
		return ""
	}
	return re
}

func (ru *run) consent(step *Step, n *Node) (string, error) {
	if ru.r.Ledger == nil {
		return "", errors.New("the runner has no consent ledger")
	}
	req, p, err := ru.gatherRequest(step, n) // p, the version played, is evidence
	if err != nil {
		return "", err
	}
	req.MinDigits, req.MaxDigits = 1, 1
	req.Regex = "^[" + n.Yes + n.No + "]$"
	res, err := ru.r.Media.Gather(ru.ctx, ru.call.ID, req)
	if err != nil {
		return "", fmt.Errorf("asking for consent: %w", err)
	}
	ru.setDigits(step, res.Digits)
	switch {
	case res.Status == controller.GatherTimeout:
		step.Result = "timeout"
		return n.OnTimeout, nil
	case res.Status == controller.GatherSuccess && res.Digits == n.Yes:
		step.Result = "yes"
		id, err := ru.r.Ledger.CreateConsent(ru.ctx, controller.Consent{
			TenantID: ru.call.TenantID, Number: ru.call.To, Purpose: n.Purpose, Source: "ivr",
			ProofRef: fmt.Sprintf("call:%s/node:%s", ru.call.ID, step.Node),
			PromptID: promptID(p), PromptVersion: strconv.Itoa(p.Version),
			Digit: res.Digits, CallID: ru.call.ID, GivenAt: ru.now(),
		})
		if err != nil {
			return "", fmt.Errorf("recording consent: %w", err)
		}
		ru.res.ConsentID = id
		ru.log.Info("consent recorded", "node", step.Node, "consent_id", id, "purpose", n.Purpose)
		return n.OnYes, nil
	case res.Status == controller.GatherSuccess && res.Digits == n.No:
		step.Result = "no"
		ref := controller.Refusal{Number: ru.call.To, Source: "ivr", CallID: ru.call.ID, At: ru.now()}
		switch lock := ru.r.RefusalLock; {
		case lock == 0:
			until := ref.At.Add(controller.DefaultRefusalLock)
			ref.Until = &until
		case lock > 0:
			until := ref.At.Add(lock)
			ref.Until = &until
		}
		id, canceled, err := ru.r.Ledger.LockNumber(ru.ctx, ru.call.TenantID, ref)
		if err != nil {
			return "", fmt.Errorf("locking the refused number: %w", err)
		}
		ru.res.RefusalID = id
		ru.log.Info("number locked on refusal", "node", step.Node, "refusal_id", id, "canceled_calls", canceled)
		return n.OnNo, nil
	default: // invalid, or input the switch let through that is neither
		step.Result = "invalid"
		return n.OnInvalid, nil
	}
}

func (ru *run) recordStep(step *Step, n *Node) (string, error) {
	if n.Action == RecordStart {
		switch {
		case ru.res.ConsentID == "":
			step.Result, step.Error = "refused", "no consent: recording not started"
			ru.log.Warn("recording refused without consent", "node", step.Node)
			return n.Next, nil
		case ru.recPath != "":
			step.Result, step.Error = "refused", "a recording is already running"
			return n.Next, nil
		case ru.r.Recordings == nil:
			return "", errors.New("the runner has no recordings")
		}
		id, path, err := ru.r.Recordings.Begin(ru.ctx, ru.call, ru.res.ConsentID)
		if err != nil {
			return "", fmt.Errorf("creating a recording: %w", err)
		}
		ru.res.RecordingIDs = append(ru.res.RecordingIDs, id)
		if err := ru.r.Media.Record(ru.ctx, ru.call.ID, controller.RecordStart, path); err != nil {
			return "", fmt.Errorf("starting recording %s: %w", id, err)
		}
		ru.recPath, ru.recPause = path, false
		step.Result = "started"
		return n.Next, nil
	}
	if ru.recPath == "" {
		step.Result, step.Error = "refused", "no recording is running"
		return n.Next, nil
	}
	action, result := controller.RecordStop, "stopped"
	switch n.Action {
	case RecordPause:
		action, result = controller.RecordMask, "paused"
	case RecordResume:
		action, result = controller.RecordUnmask, "resumed"
	}
	if err := ru.r.Media.Record(ru.ctx, ru.call.ID, action, ru.recPath); err != nil {
		return "", fmt.Errorf("recording (%s): %w", action, err)
	}
	switch action {
	case controller.RecordStop:
		ru.recPath, ru.recPause = "", false
	case controller.RecordMask:
		ru.recPause = true
	case controller.RecordUnmask:
		ru.recPause = false
	}
	step.Result = result
	return n.Next, nil
}

// setDigits keeps gathered digits, masked while the recording is paused
// (card data must not be stored).
func (ru *run) setDigits(step *Step, digits string) {
	if ru.recPause {
		digits = strings.Repeat("*", len(digits))
	}
	step.Digits = digits
}

// end hangs up as e says and finishes the run.
func (ru *run) end(e *endRun) Result {
	ru.res.Outcome = e.outcome
	if e.cause != "" {
		if err := ru.hangup(e.cause); err != nil {
			ru.res.Outcome = OutcomeError
			ru.res.Err = ru.scrub("hanging up: " + err.Error())
			ru.log.Error("flow ended, hangup failed", "error", ru.res.Err)
			return ru.result()
		}
	}
	ru.log.Info("flow ended", "outcome", ru.res.Outcome, "steps", len(ru.res.Path))
	return ru.result()
}

// fail ends the run with OutcomeError, hanging the call up.
func (ru *run) fail(reason string) Result {
	ru.res.Outcome, ru.res.Err = OutcomeError, ru.scrub(reason)
	if err := ru.hangup(failureCause); err != nil {
		ru.res.Err += ru.scrub("; hanging up: " + err.Error())
	}
	ru.log.Error("flow failed", "error", ru.res.Err, "steps", len(ru.res.Path))
	return ru.result()
}

// hangup hangs the call up even after ctx ended; a call already gone is
// not an error.
func (ru *run) hangup(cause string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ru.ctx), hangupTimeout)
	defer cancel()
	err := ru.r.Hangup(ctx, ru.call.ID, cause)
	if err == nil || errors.Is(err, controller.ErrHungUp) || controller.ErrorCode(err) == controller.ENOTFOUND {
		return nil
	}
	return err
}

func (ru *run) record(s Step) {
	ru.res.Path = append(ru.res.Path, s)
	if s.Error != "" {
		ru.log.Warn("flow step failed", "node", s.Node, "type", s.Type, "error", s.Error)
	}
	if ru.r.OnStep != nil {
		ru.r.OnStep(s)
	}
}

func (ru *run) result() Result {
	return ru.res
}

func (ru *run) now() time.Time {
	if ru.r.Now != nil {
		return ru.r.Now()
	}
	return time.Now()
}

// scrub masks the call's numbers in a message.
func (ru *run) scrub(s string) string {
	for _, n := range []string{ru.call.To, ru.call.From} {
		if len(n) > 4 {
			s = strings.ReplaceAll(s, n, controller.MaskNumber(n))
		}
	}
	return s
}

func promptID(p controller.Prompt) string {
	if p.ID != "" {
		return p.ID
	}
	return p.Name + ".v" + strconv.Itoa(p.Version)
}
