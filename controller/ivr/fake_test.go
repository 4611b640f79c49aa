package ivr_test

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/egress"
	"github.com/callgate/callgate/controller/ivr"
)

// testSecret signs the tests' webhooks.
const testSecret = "whsec_test_0123456789"

// Scripted callee inputs for fakeMedia.Gather.
const (
	pressNothing = ""        // the gather times out
	hangUp       = "HANG_UP" // the callee hangs up during the gather
)

// events is the ordered log of everything the fakes were asked to do.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, fmt.Sprintf(format, args...))
}

func (e *events) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.log...)
}

// index returns the position of the first event with prefix, -1 if none.
func (e *events) index(prefix string) int {
	for i, ev := range e.all() {
		if strings.HasPrefix(ev, prefix) {
			return i
		}
	}
	return -1
}

// fakeMedia is a switch whose callee follows a script: the inputs of its
// gathers in order, and an optional prompt during which it hangs up.
type fakeMedia struct {
	ev        *events
	mu        sync.Mutex
	inputs    []string                  // per Gather: digits, pressNothing or hangUp
	hangUpAt  string                    // Play of this prompt returns ErrHungUp
	transfer  controller.TransferResult // what Transfer returns
	requests  []controller.GatherRequest
	recordErr error
}

func (m *fakeMedia) Play(_ context.Context, id controller.CallID, prompt string) error {
	m.ev.add("play %s", prompt)
	if m.hangUpAt != "" && prompt == m.hangUpAt {
		return fmt.Errorf("playing on %s: %w", id, controller.ErrHungUp)
	}
	return nil
}

func (m *fakeMedia) Gather(_ context.Context, id controller.CallID, req controller.GatherRequest) (controller.GatherResult, error) {
	m.mu.Lock()
	m.requests = append(m.requests, req)
	if len(m.inputs) == 0 {
		m.mu.Unlock()
		return controller.GatherResult{}, fmt.Errorf("script exhausted at gather %s", req.Prompt)
	}
	in := m.inputs[0]
	m.inputs = m.inputs[1:]
	m.mu.Unlock()
	m.ev.add("gather %s", req.Prompt)
	switch {
	case in == hangUp:
		return controller.GatherResult{}, fmt.Errorf("gathering on %s: %w", id, controller.ErrHungUp)
	case in == pressNothing:
		return controller.GatherResult{Status: controller.GatherTimeout}, nil
	case req.Regex != "" && !regexp.MustCompile(req.Regex).MatchString(in):
		return controller.GatherResult{Status: controller.GatherInvalid}, nil
	}
	return controller.GatherResult{Digits: in, Status: controller.GatherSuccess}, nil
}

func (m *fakeMedia) Record(_ context.Context, _ controller.CallID, action controller.RecordAction, path string) error {
	m.ev.add("record %s %s", action, path)
	return m.recordErr
}

func (m *fakeMedia) Transfer(_ context.Context, _ controller.CallID, dest string) (controller.TransferResult, error) {
	m.ev.add("transfer %s", dest)
	return m.transfer, nil
}

func (m *fakeMedia) gatherRequests() []controller.GatherRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]controller.GatherRequest(nil), m.requests...)
}

var _ controller.Media = (*fakeMedia)(nil)

// fakeLedger records consents and refusals.
type fakeLedger struct {
	ev       *events
	mu       sync.Mutex
	consents []controller.Consent
	refusals []controller.Refusal
	err      error
}

func (l *fakeLedger) CreateConsent(_ context.Context, c controller.Consent) (string, error) {
	l.ev.add("consent %s", c.Digit)
	if l.err != nil {
		return "", l.err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.consents = append(l.consents, c)
	return fmt.Sprintf("consent-%d", len(l.consents)), nil
}

func (l *fakeLedger) LockNumber(_ context.Context, _ string, r controller.Refusal) (string, int, error) {
	l.ev.add("refusal")
	if l.err != nil {
		return "", 0, l.err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refusals = append(l.refusals, r)
	return fmt.Sprintf("refusal-%d", len(l.refusals)), 0, nil
}

// fakeRecordings creates recordings rec-1, rec-2…
type fakeRecordings struct {
	ev        *events
	mu        sync.Mutex
	consentID []string
}

func (r *fakeRecordings) Begin(_ context.Context, call controller.Call, consentID string) (string, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.consentID = append(r.consentID, consentID)
	id := fmt.Sprintf("rec-%d", len(r.consentID))
	r.ev.add("begin %s", id)
	return id, "/var/spool/callgate/" + string(call.ID) + "-" + id + ".wav", nil
}

// fakePrompts knows version 2 of each of its prompts.
type fakePrompts map[string]controller.Prompt

func (p fakePrompts) Resolve(_ context.Context, _, name string) (controller.Prompt, string, error) {
	pr, ok := p[name]
	if !ok {
		return controller.Prompt{}, "", controller.Errorf(controller.ENOTFOUND, "prompt %q not found", name)
	}
	return pr, "/prompts/" + pr.ID + ".wav", nil
}

func (p fakePrompts) lookup(name string) (controller.Prompt, bool) {
	pr, ok := p[name]
	return pr, ok
}

func newPrompts(texts map[string]string) fakePrompts {
	p := fakePrompts{}
	for name, text := range texts {
		p[name] = controller.Prompt{ID: name + ".v2", TenantID: "t1", Name: name, Version: 2, Text: text, DurationMS: 3000}
	}
	return p
}

// bundle is one test's runner with its fakes.
type bundle struct {
	runner  *ivr.Runner
	media   *fakeMedia
	ledger  *fakeLedger
	recs    *fakeRecordings
	prompts fakePrompts
	ev      *events
	call    controller.Call
	now     time.Time
	steps   []ivr.Step
	stepsMu sync.Mutex
}

func setup(t *testing.T, inputs ...string) *bundle {
	t.Helper()
	ev := &events{}
	b := &bundle{
		media:  &fakeMedia{ev: ev, inputs: inputs},
		ledger: &fakeLedger{ev: ev},
		recs:   &fakeRecordings{ev: ev},
		prompts: newPrompts(map[string]string{
			"hello": "Hello, this is Acme.", "consent-q": "May we record this call? Press 1 for yes, 2 for no.",
			"sorry": "Sorry, I did not get that.", "menu": "Press 1 for sales.",
		}),
		ev:   ev,
		call: controller.Call{ID: "0b7c6a2e-1f7b-4c8e-9d5a-3e2f1a0b9c8d", TenantID: "t1", To: "+15551234567", From: "+15557654321"},
		now:  time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	}
	// The tests' webhooks are httptest servers on loopback: their CIDR
	// is allowed explicitly, over http.
	guard, err := egress.New(egress.Config{Allow: []string{"127.0.0.0/8", "::1/128", "example.com", "cdn.example.com"}, AllowHTTP: true,
		Resolver: func(context.Context, string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("203.0.113.10")}, nil
		}})
	require.NoError(t, err)
	b.runner = &ivr.Runner{
		Media:         b.media,
		Egress:        guard,
		WebhookSecret: ivr.StaticSecret([]byte(testSecret)),
		Hangup: func(_ context.Context, id controller.CallID, cause string) error {
			ev.add("hangup %s", cause)
			return nil
		},
		Ledger:     b.ledger,
		Recordings: b.recs,
		Prompts:    b.prompts,
		Now:        func() time.Time { return b.now },
		OnStep: func(s ivr.Step) {
			b.stepsMu.Lock()
			defer b.stepsMu.Unlock()
			b.steps = append(b.steps, s)
		},
	}
	return b
}

func (b *bundle) run(t *testing.T, doc string) ivr.Result {
	t.Helper()
	f, err := ivr.Decode([]byte(doc))
	require.NoError(t, err)
	return b.runner.Run(t.Context(), b.call, f, "consent-flow", 3)
}

// nodes returns the node IDs of a path.
func nodes(path []ivr.Step) []string {
	out := make([]string, len(path))
	for i, s := range path {
		out[i] = s.Node
	}
	return out
}
