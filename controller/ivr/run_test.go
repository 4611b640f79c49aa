package ivr_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/ivr"
)

// exampleFlow is the flow of the package's documentation.
const exampleFlow = `{"name": "Consent v1", "start": "greet", "opening_ms_max": 15000,
 "nodes": {
  "greet":  {"type": "play", "prompt": "hello", "next": "ask"},
  "ask":    {"type": "consent", "prompt": "consent-q", "invalid_prompt": "sorry", "yes": "1", "no": "2", "purpose": "marketing", "tries": 2, "timeout_ms": 5000, "on_yes": "rec", "on_no": "bye", "on_timeout": "bye", "on_invalid": "bye"},
  "rec":    {"type": "record", "action": "start", "next": "menu"},
  "menu":   {"type": "gather", "prompt": "menu", "min_digits": 1, "max_digits": 4, "tries": 3, "timeout_ms": 5000, "digit_timeout_ms": 2000, "terminators": "#", "branches": [{"digits": "1", "next": "xfer"}, {"regex": "^[2-4]$", "next": "hook"}], "on_invalid": "bye", "on_timeout": "bye"},
  "hook":   {"type": "webhook", "url": "https://example.com/hook", "timeout_ms": 2000, "next": "bye", "on_error": "bye"},
  "xfer":   {"type": "transfer", "to": "sofia/gateway/pbx/1000", "next": "bye"},
  "tag":    {"type": "set", "tags": {"interest": "high"}, "disposition": "interested", "next": "bye"},
  "bye":    {"type": "hangup", "cause": "NORMAL_CLEARING"}
 }}`

func TestRunConsentYes(t *testing.T) {
	t.Parallel()
	b := setup(t, "1", "1")
	res := b.run(t, exampleFlow)

	require.Equal(t, ivr.OutcomeCompleted, res.Outcome, res.Err)
	require.Equal(t, []string{"greet", "ask", "rec", "menu", "xfer", "bye"}, nodes(res.Path))
	require.Equal(t, "consent-1", res.ConsentID)
	require.Empty(t, res.RefusalID)
	require.Equal(t, []string{"rec-1"}, res.RecordingIDs)

	require.Len(t, b.ledger.consents, 1)
	c := b.ledger.consents[0]
	require.Equal(t, controller.Consent{
		TenantID: "t1", Number: "+15551234567", Purpose: controller.PurposeMarketing, Source: "ivr",
		ProofRef: "call:" + string(b.call.ID) + "/node:ask", PromptID: "consent-q.v2", PromptVersion: "2",
		Digit: "1", CallID: b.call.ID, GivenAt: b.now,
	}, c)
	require.Equal(t, []string{"consent-1"}, b.recs.consentID, "the recording is begun under the consent")

	// Consent is written before the recording is begun, which is before
	// the switch records.
	consent, begin, start := b.ev.index("consent "), b.ev.index("begin "), b.ev.index("record start ")
	require.True(t, consent >= 0 && consent < begin && begin < start, "events: %v", b.ev.all())
	require.Equal(t, "hangup NORMAL_CLEARING", b.ev.all()[len(b.ev.all())-1])

	ask := res.Path[1]
	require.Equal(t, "yes", ask.Result)
	require.Equal(t, "1", ask.Digits)
	require.Equal(t, "consent-q.v2", ask.Prompt)
	require.Equal(t, "started", res.Path[2].Result)
	require.Equal(t, "not_bridged", res.Path[4].Result)

	reqs := b.media.gatherRequests()
	require.Equal(t, controller.GatherRequest{
		Prompt: "/prompts/consent-q.v2.wav", InvalidPrompt: "/prompts/sorry.v2.wav", MinDigits: 1, MaxDigits: 1,
		Tries: 2, Timeout: 5e9, Regex: "^[12]$",
	}, reqs[0])
	require.Equal(t, "^(?:1|(?:^[2-4]$))$", reqs[1].Regex)
	require.Equal(t, 4, reqs[1].MaxDigits)

	require.Equal(t, res.Path, b.steps, "OnStep saw every step")
}

func TestRunConsentNo(t *testing.T) {
	t.Parallel()
	b := setup(t, "2")
	res := b.run(t, exampleFlow)

	require.Equal(t, ivr.OutcomeCompleted, res.Outcome, res.Err)
	require.Equal(t, []string{"greet", "ask", "bye"}, nodes(res.Path))
	require.Equal(t, "refusal-1", res.RefusalID)
	require.Empty(t, res.ConsentID)
	require.Empty(t, res.RecordingIDs)
	require.Empty(t, b.ledger.consents)
	require.Len(t, b.ledger.refusals, 1)
	r := b.ledger.refusals[0]
	require.Equal(t, "+15551234567", r.Number)
	require.Equal(t, "ivr", r.Source)
	require.Equal(t, b.call.ID, r.CallID)
	require.Equal(t, b.now, r.At)
	require.NotNil(t, r.Until)
	require.Equal(t, b.now.Add(controller.DefaultRefusalLock), *r.Until)
	require.Equal(t, -1, b.ev.index("begin "))
	require.Equal(t, -1, b.ev.index("record "))
	require.Equal(t, "no", res.Path[1].Result)
}

func TestRunConsentNoKey(t *testing.T) {
	t.Parallel()
	for _, input := range []string{pressNothing, "7"} {
		b := setup(t, input)
		res := b.run(t, exampleFlow)

		require.Equal(t, ivr.OutcomeCompleted, res.Outcome, res.Err)
		require.Equal(t, []string{"greet", "ask", "bye"}, nodes(res.Path))
		require.Empty(t, res.ConsentID)
		require.Empty(t, res.RefusalID)
		require.Empty(t, b.ledger.consents)
		require.Empty(t, b.ledger.refusals)
		require.Equal(t, -1, b.ev.index("begin "))
		want := map[string]string{pressNothing: "timeout", "7": "invalid"}[input]
		require.Equal(t, want, res.Path[1].Result)
	}
}

func TestRunConsentOmittedBranchesEndTheCall(t *testing.T) {
	t.Parallel()
	b := setup(t, pressNothing)
	res := b.run(t, `{"start": "ask", "nodes": {
		"ask": {"type": "consent", "prompt": "consent-q", "purpose": "service", "on_yes": "rec", "on_no": "bye"},
		"rec": {"type": "record", "action": "start"},
		"bye": {"type": "hangup"}}}`)
	require.Equal(t, ivr.OutcomeCompleted, res.Outcome)
	require.Equal(t, []string{"ask"}, nodes(res.Path))
	require.Equal(t, []string{"gather /prompts/consent-q.v2.wav", "hangup NORMAL_CLEARING"}, b.ev.all())
}

func TestRunHangUpMidPrompt(t *testing.T) {
	t.Parallel()
	t.Run("during play", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "1")
		b.media.hangUpAt = "/prompts/hello.v2.wav"
		res := b.run(t, exampleFlow)

		require.Equal(t, ivr.OutcomeHungUp, res.Outcome)
		require.Equal(t, []string{"greet"}, nodes(res.Path))
		require.Equal(t, "hungup", res.Path[0].Result)
		require.Equal(t, []string{"play /prompts/hello.v2.wav"}, b.ev.all(), "nothing written, no hangup sent")
		require.Empty(t, res.Err)
	})
	t.Run("during consent", func(t *testing.T) {
		t.Parallel()
		b := setup(t, hangUp)
		res := b.run(t, exampleFlow)

		require.Equal(t, ivr.OutcomeHungUp, res.Outcome)
		require.Equal(t, []string{"greet", "ask"}, nodes(res.Path))
		require.Empty(t, b.ledger.consents)
		require.Empty(t, b.ledger.refusals)
		require.Equal(t, -1, b.ev.index("hangup"))
		require.Equal(t, -1, b.ev.index("begin"))
	})
}

func TestRunRecordWithoutConsentIsRefused(t *testing.T) {
	t.Parallel()
	doc := `{"start": "rec", "nodes": {
		"rec": {"type": "record", "action": "start", "next": "bye"},
		"bye": {"type": "play", "tone": "tone_stream://%(500,0,440)"}}}`
	f, err := ivr.Decode([]byte(doc))
	require.NoError(t, err)
	problems := ivr.Validate(f, ivr.Env{})
	require.Error(t, problems.Err())
	require.Contains(t, problems.Err().Error(), "recording may start before consent")

	b := setup(t)
	res := b.runner.Run(t.Context(), b.call, f, "f", 1)
	require.Equal(t, ivr.OutcomeCompleted, res.Outcome)
	require.Equal(t, []string{"rec", "bye"}, nodes(res.Path))
	require.Equal(t, "no consent: recording not started", res.Path[0].Error)
	require.Equal(t, "refused", res.Path[0].Result)
	require.Empty(t, res.RecordingIDs)
	require.Equal(t, -1, b.ev.index("begin"))
	require.Equal(t, -1, b.ev.index("record"))
}

func TestRunRecordingPauseMasksDigits(t *testing.T) {
	t.Parallel()
	b := setup(t, "1", "4111111111111111")
	res := b.run(t, `{"start": "ask", "nodes": {
		"ask":    {"type": "consent", "prompt": "consent-q", "purpose": "service", "on_yes": "rec", "on_no": "end", "on_timeout": "end", "on_invalid": "end"},
		"rec":    {"type": "record", "action": "start", "next": "pause"},
		"pause":  {"type": "record", "action": "pause", "next": "card"},
		"card":   {"type": "gather", "tone": "tone_stream://%(100,0,440)", "min_digits": 12, "max_digits": 19, "next": "resume"},
		"resume": {"type": "record", "action": "resume", "next": "stop"},
		"stop":   {"type": "record", "action": "stop", "next": "end"},
		"end":    {"type": "hangup"}}}`)
	require.Equal(t, ivr.OutcomeCompleted, res.Outcome, res.Err)
	require.Equal(t, strings.Repeat("*", 16), res.Path[3].Digits)
	require.Equal(t, "success", res.Path[3].Result)
	path := "/var/spool/callgate/" + string(b.call.ID) + "-rec-1.wav"
	require.Equal(t, []string{"record start " + path, "record mask " + path, "record unmask " + path, "record stop " + path},
		filter(b.ev.all(), "record "))
	require.Equal(t, "", b.media.gatherRequests()[1].Regex, "next catches any input")
}

func TestRunGatherBranches(t *testing.T) {
	t.Parallel()
	doc := `{"start": "menu", "nodes": {
		"menu": {"type": "gather", "tone": "tone_stream://%(100,0,440)", "max_digits": 3, "tries": 1,
			"branches": [{"regex": "1|2", "next": "re"}, {"digits": "1", "next": "exact"}, {"digits": "*9", "next": "star"}],
			"on_invalid": "inv", "on_timeout": "tmo"},
		"re": {"type": "set", "disposition": "re"}, "exact": {"type": "set", "disposition": "exact"},
		"star": {"type": "set", "disposition": "star"}, "inv": {"type": "set", "disposition": "invalid"},
		"tmo": {"type": "set", "disposition": "timeout"}}}`
	for input, want := range map[string]string{"1": "exact", "2": "re", "*9": "star", "12": "invalid", pressNothing: "timeout"} {
		b := setup(t, input)
		res := b.run(t, doc)
		require.Equal(t, ivr.OutcomeCompleted, res.Outcome, res.Err)
		require.Equal(t, want, res.Disposition, "input %q", input)
	}
	b := setup(t, "1")
	b.run(t, doc)
	require.Equal(t, "^(?:(?:1|2)|1|[*]9)$", b.media.gatherRequests()[0].Regex)
}

func TestRunTransferAndSet(t *testing.T) {
	t.Parallel()
	doc := `{"start": "tag", "nodes": {
		"tag":  {"type": "set", "tags": {"interest": "high"}, "disposition": "interested", "next": "xfer"},
		"xfer": {"type": "transfer", "to": "sofia/gateway/pbx/1000", "next": "bye"},
		"bye":  {"type": "hangup", "cause": "NORMAL_CLEARING"}}}`
	b := setup(t)
	b.media.transfer = controller.TransferResult{Bridged: true, HangupCause: "NORMAL_CLEARING"}
	res := b.run(t, doc)
	require.Equal(t, ivr.OutcomeTransferred, res.Outcome)
	require.Equal(t, map[string]string{"interest": "high"}, res.Tags)
	require.Equal(t, "interested", res.Disposition)
	require.Equal(t, []string{"transfer sofia/gateway/pbx/1000"}, b.ev.all(), "a bridged call is not hung up")

	b = setup(t)
	b.media.transfer = controller.TransferResult{HangupCause: "USER_BUSY"}
	res = b.run(t, doc)
	require.Equal(t, ivr.OutcomeCompleted, res.Outcome)
	require.Equal(t, "not_bridged: USER_BUSY", res.Path[1].Result)
	require.Equal(t, []string{"tag", "xfer", "bye"}, nodes(res.Path))
}

func TestRunStepFailureHangsUp(t *testing.T) {
	t.Parallel()
	b := setup(t, "1")
	b.ledger.err = errors.New("database down while saving +15551234567")
	res := b.run(t, exampleFlow)

	require.Equal(t, ivr.OutcomeError, res.Outcome)
	require.Contains(t, res.Err, `node "ask": recording consent: database down`)
	require.NotContains(t, res.Err, "+15551234567", "numbers are masked")
	require.Contains(t, res.Err, "****4567")
	require.Equal(t, "hangup NORMAL_TEMPORARY_FAILURE", b.ev.all()[len(b.ev.all())-1])
	require.Equal(t, -1, b.ev.index("begin"))
	require.NotEmpty(t, res.Path[1].Error)
}

func TestRunMissingPrompt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.run(t, `{"start": "a", "nodes": {"a": {"type": "play", "prompt": "nope"}}}`)
	require.Equal(t, ivr.OutcomeError, res.Outcome)
	require.Contains(t, res.Err, `resolving prompt "nope"`)
	require.Equal(t, []string{"hangup NORMAL_TEMPORARY_FAILURE"}, b.ev.all())
}

func TestRunRunawayLoop(t *testing.T) {
	t.Parallel()
	doc := `{"start": "a", "nodes": {
		"a": {"type": "play", "tone": "tone_stream://%(100,0,440)", "next": "b"},
		"b": {"type": "set", "disposition": "looping", "next": "a"}}}`
	f, err := ivr.Decode([]byte(doc))
	require.NoError(t, err)
	require.Contains(t, ivr.Validate(f, ivr.Env{}).Err().Error(), "loop with no exit")

	b := setup(t)
	res := b.runner.Run(t.Context(), b.call, f, "f", 1)
	require.Equal(t, ivr.OutcomeError, res.Outcome)
	require.Len(t, res.Path, ivr.MaxSteps)
	require.Contains(t, res.Err, "500 steps")
	require.Equal(t, "hangup NORMAL_TEMPORARY_FAILURE", b.ev.all()[len(b.ev.all())-1])
}

func TestRunCanceled(t *testing.T) {
	t.Parallel()
	b := setup(t, "1")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	f, err := ivr.Decode([]byte(exampleFlow))
	require.NoError(t, err)
	res := b.runner.Run(ctx, b.call, f, "f", 1)
	require.Equal(t, ivr.OutcomeError, res.Outcome)
	require.Contains(t, res.Err, "run canceled")
	require.Empty(t, res.Path)
	require.Equal(t, []string{"hangup NORMAL_TEMPORARY_FAILURE"}, b.ev.all(), "hung up despite the canceled context")
}

func TestRunRefusesUndecodedFlow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.runner.Run(t.Context(), b.call, &ivr.Flow{Start: "a"}, "f", 1)
	require.Equal(t, ivr.OutcomeError, res.Outcome)
	require.Contains(t, res.Err, "not decoded")
}

func filter(evs []string, prefix string) []string {
	var out []string
	for _, e := range evs {
		if strings.HasPrefix(e, prefix) {
			out = append(out, e)
		}
	}
	return out
}
