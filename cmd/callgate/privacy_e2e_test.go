package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

// lockedBuffer is a log sink many goroutines write to.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// numberForms are the ways a test number may be written: E.164, without
// the +, and national.
func numberForms(e164 ...string) []string {
	var out []string
	for _, n := range e164 {
		digits := strings.TrimPrefix(n, "+")
		out = append(out, n, digits, strings.TrimPrefix(digits, "1"))
	}
	return out
}

// answer is one response a reader saw: the request, what it asked (which
// may hold a number it sent) and the body (which must not).
type answer struct{ request, body string }

// reader is one token's view of the API: every body it was answered with.
type reader struct {
	name, secret string
	seen         []answer
}

// do sends a request with r's token, records the answer and decodes it into
// out (if not nil).
func (r *reader) do(t *testing.T, e *e2e, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.secret)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	r.seen = append(r.seen, answer{request: fmt.Sprintf("%s %s -> %d", method, path, resp.StatusCode), body: string(raw)})
	if out != nil && resp.StatusCode < 300 {
		require.NoError(t, json.Unmarshal(raw, out), string(raw))
	}
	return resp.StatusCode
}

// TestE2ENoFullNumberLeaks runs a consent flow, a refusal and a failed
// call placed by an agent through the whole stack, reads everything the
// agent and a QA token may read, and scans every body they were answered
// with and every line the controller logged (through the logger `callgate
// serve` builds) for the numbers used, in any form. Admin still sees them
// whole, in the API and in the traceability export.
func TestE2ENoFullNumberLeaks(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	x := setupIVR(t, func(m *Main) {
		m.Config.LogLevel = "debug"
		m.Logger = newLogger(m.Config, logs)
	})
	const (
		consenting = "+12125551001" // answers, presses 1: consent and a recording
		refusing   = "+12125551002" // answers, presses 2: a refusal
		busy       = "+12125551003" // busy: the call fails
		callerID   = "+12125550100"
	)
	forms := numberForms(consenting, refusing, busy, callerID)

	x.uploadPrompt(t, "consent-q", consentText)
	x.putFlow(t, "consent", consentFlow)
	dsn := x.m.Config.DatabaseURL
	_, agentSecret := createToken(t, dsn, "--role", "agent", "--tenant", "default", "--agent", "a1")
	_, qaSecret := createToken(t, dsn, "--role", "qa", "--tenant", "default")
	agent, qa := &reader{name: "agent", secret: agentSecret}, &reader{name: "qa", secret: qaSecret}

	// The agent places the calls to whole numbers.
	place := func(to string, body map[string]any) controller.Call {
		t.Helper()
		body["to"], body["from"] = to, callerID
		var c controller.Call
		require.Equal(t, http.StatusAccepted, agent.do(t, x.e2e, "POST", "/v1/calls", body, &c), agent.seen[len(agent.seen)-1].body)
		require.Equal(t, "****"+to[len(to)-4:], c.To, "the agent is answered with the number masked")
		return c
	}
	consent := place(consenting, map[string]any{"purpose": "marketing", "flow_id": "consent", "timeout_seconds": 10})
	refusal := place(refusing, map[string]any{"purpose": "marketing", "flow_id": "consent", "timeout_seconds": 10})
	failed := place(busy, map[string]any{"purpose": "service", "timeout_seconds": 10})

	_, res := x.waitRun(t, consent.ID)
	require.NotEmpty(t, res.ConsentID, "%+v", res)
	require.Len(t, res.RecordingIDs, 1)
	require.NoError(t, <-x.sealed(consent.ID))
	_, res2 := x.waitRun(t, refusal.ID)
	require.NotEmpty(t, res2.RefusalID, "%+v", res2)
	for _, c := range []controller.Call{consent, refusal, failed} {
		x.w.WaitTerminal(t, c.ID)
	}
	var final controller.Call
	require.Equal(t, http.StatusOK, agent.do(t, x.e2e, "GET", "/v1/calls/"+string(failed.ID), nil, &final))
	require.Equal(t, controller.CallFailed, final.State)
	// A call to a number that refused is blocked at once: its decision is
	// answered masked too.
	blocked := place(refusing, map[string]any{"purpose": "marketing"})
	require.Equal(t, controller.CallBlocked, blocked.State)

	// Everything each token may read.
	for _, r := range []*reader{agent, qa} {
		var page struct{ Calls []controller.Call }
		require.Equal(t, http.StatusOK, r.do(t, x.e2e, "GET", "/v1/calls", nil, &page))
		require.Len(t, page.Calls, 4, r.name)
		for _, c := range []controller.Call{consent, refusal, failed, blocked} {
			id := string(c.ID)
			require.Equal(t, http.StatusOK, r.do(t, x.e2e, "GET", "/v1/calls/"+id+"?include=events", nil, nil))
			require.Equal(t, http.StatusOK, r.do(t, x.e2e, "GET", "/v1/calls/"+id+"/events", nil, nil))
			require.Contains(t, []int{200, 404}, r.do(t, x.e2e, "GET", "/v1/calls/"+id+"/flow-run", nil, nil))
			require.Equal(t, http.StatusOK, r.do(t, x.e2e, "GET", "/v1/calls/"+id+"/recordings", nil, nil))
		}
		var rec controller.Recording
		require.Equal(t, http.StatusOK, r.do(t, x.e2e, "GET", "/v1/recordings/"+res.RecordingIDs[0], nil, &rec))
		require.Equal(t, controller.RecordingStored, rec.Status)
	}
	for _, c := range []controller.Call{consent, failed, blocked} {
		require.Equal(t, http.StatusOK, agent.do(t, x.e2e, "GET", "/v1/attempts/"+string(c.ID), nil, nil))
	}
	require.Equal(t, http.StatusOK, agent.do(t, x.e2e, "GET", "/v1/caller-ids", nil, nil))
	var d controller.Decision
	require.Equal(t, http.StatusOK, agent.do(t, x.e2e, "POST", "/v1/compliance/check", map[string]any{"to": refusing}, &d))
	require.False(t, d.Allow)
	require.Equal(t, "****1002", d.Number)
	// Refusals quote nothing either.
	require.Equal(t, http.StatusConflict, agent.do(t, x.e2e, "POST", "/v1/calls/"+string(failed.ID)+"/hangup", map[string]any{}, nil))
	require.Equal(t, http.StatusBadRequest, agent.do(t, x.e2e, "POST", "/v1/calls", map[string]any{"to": "+15550001001", "from": callerID}, nil))
	require.Equal(t, http.StatusBadRequest, agent.do(t, x.e2e, "GET", "/v1/calls?"+strings.TrimPrefix(consenting, "+")+"=1", nil, nil))
	require.Equal(t, http.StatusForbidden, agent.do(t, x.e2e, "GET", "/v1/consents?number=%2B12125551001", nil, nil))
	require.Equal(t, http.StatusForbidden, qa.do(t, x.e2e, "GET", "/v1/refusals?number=%2B12125551002", nil, nil))
	require.Equal(t, http.StatusForbidden, qa.do(t, x.e2e, "GET", "/v1/attempts/"+string(consent.ID), nil, nil))

	for _, r := range []*reader{agent, qa} {
		for _, a := range r.seen {
			for _, f := range forms {
				require.NotContains(t, a.body, f, "%s was answered a full number: %s", r.name, a.request)
			}
		}
	}

	// The admin puts the busy number on an internal do-not-call list.
	require.Equal(t, http.StatusCreated, x.do(t, "POST", "/v1/dnc/lists", nil,
		map[string]any{"id": "internal", "name": "Internal", "kind": "internal"}, nil))
	require.Contains(t, []int{200, 201}, x.do(t, "POST", "/v1/dnc/lists/internal/numbers", nil, map[string]any{"number": busy}, nil))

	// At rest, the consent, the refusal, the calls and their attempts hold
	// their number sealed: no clear column, no digits in any stored byte;
	// the do-not-call entry is its blind index alone.
	var dncDigits, dncKeys int
	require.NoError(t, x.m.db.Pool().QueryRow(context.Background(), `SELECT (SELECT count(*) FROM dnc_entries),
		(SELECT count(*) FROM dnc_index WHERE number_key <> $1)`, strings.TrimPrefix(busy, "+")).Scan(&dncDigits, &dncKeys))
	require.Zero(t, dncDigits)
	require.Equal(t, 1, dncKeys)
	for _, c := range []struct{ table, cols string }{
		{"consents", "coalesce(number, ''), number_index, number_sealed"},
		{"refusals", "coalesce(number, ''), number_index, number_sealed"},
		{"calls", "coalesce(to_number, ''), to_index, to_sealed"},
		{"attempts", "coalesce(to_number, ''), to_index, to_index"},
	} {
		table := c.table
		rows, err := x.m.db.Pool().Query(context.Background(), `SELECT `+c.cols+` FROM `+table)
		require.NoError(t, err)
		n := 0
		for rows.Next() {
			var (
				clear       string
				idx, sealed []byte
			)
			require.NoError(t, rows.Scan(&clear, &idx, &sealed))
			require.Empty(t, clear, table)
			for _, f := range forms {
				require.NotContains(t, string(idx)+string(sealed), f, table)
			}
			n++
		}
		require.NoError(t, rows.Err())
		require.NotZero(t, n, table)
	}

	// Admin sees the numbers, and exports them for the regulator.
	var whole controller.Call
	require.Equal(t, http.StatusOK, x.do(t, "GET", "/v1/calls/"+string(consent.ID), nil, nil, &whole))
	require.Equal(t, consenting, whole.To)
	resp, err := x.client.Get(x.base + "/v1/exports/trace?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z&format=csv")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Disposition"), "attachment")
	rows, err := csv.NewReader(resp.Body).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 5, "a header and the four calls")
	byID := map[string][]string{}
	for _, row := range rows[1:] {
		byID[row[0]] = row
	}
	row := byID[string(consent.ID)]
	require.Equal(t, []string{consenting, callerID, "completed"}, []string{row[5], row[6], row[8]})
	require.Equal(t, res.ConsentID, row[15])
	require.Equal(t, res.RecordingIDs[0], row[16])
	require.Equal(t, "false", byID[string(blocked.ID)][10])
	require.Contains(t, byID[string(blocked.ID)][11], controller.ReasonRefused)

	// The export is audited, with its period and no number.
	var audit struct{ Entries []controller.AuditEntry }
	require.Equal(t, http.StatusOK, x.do(t, "GET", "/v1/audit?limit=1000", nil, nil, &audit))
	var exported *controller.AuditEntry
	for i, e := range audit.Entries {
		if e.Action == "export.trace" {
			exported = &audit.Entries[i]
		}
	}
	require.NotNil(t, exported)
	require.Contains(t, exported.Detail, "period 2000-01-01T00:00:00Z/2100-01-01T00:00:00Z")
	require.Contains(t, exported.Detail, "4 rows")

	// Nothing the controller logged holds a full number.
	require.NoError(t, x.m.Close()) // flush what the services log on the way out
	out := logs.String()
	require.Contains(t, out, "call accepted", "the logs were captured")
	require.Contains(t, out, "****1001", "numbers are logged masked")
	for _, line := range strings.Split(out, "\n") {
		for _, f := range forms {
			require.NotContains(t, line, f, "a full number in the log")
		}
	}
}
