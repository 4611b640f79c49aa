package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/calltest"
	"github.com/callgate/callgate/controller/pii"
	"github.com/callgate/callgate/controller/postgres"
	"github.com/callgate/callgate/controller/postgres/pgtest"
	"github.com/callgate/callgate/controller/recording"
	"github.com/callgate/callgate/controller/switchsim"
	"github.com/stretchr/testify/require"
)

// The end-to-end tests drive the whole binary's wiring (Main) over real TCP:
// HTTP API → PostgreSQL → dialer → ESL driver → switch. The switch is
// switchsim unless CALLGATE_TEST_ESL names a real FreeSWITCH booted from
// freeswitch-conf/ with dialplans/ (then CALLGATE_TEST_ESL_PASSWORD too), in
// which case the same scenario tests run unchanged against it and the
// fault-injection tests skip.

type e2e struct {
	m    *Main
	sim  *switchsim.Sim // nil against a real switch
	base string
	w    *calltest.Watcher
	// client sends every request with the admin token of the default
	// tenant (unless the request sets its own Authorization).
	client *http.Client
	admin  string
}

// bearer adds a token to every request that carries no Authorization.
type bearer struct {
	secret string
	next   http.RoundTripper
}

func (b bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Authorization") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", "Bearer "+b.secret)
	}
	return b.next.RoundTrip(req)
}

type simOptions struct {
	maxSessions int          // switch's own limit (switchsim only)
	configLimit int          // callgate's configured limit for the switch
	timeScale   float64      // switchsim's; 0 means 0.05
	media       *MediaConfig // prompts and recordings (switchsim records into its SpoolDir)
	main        func(*Main)  // edits the Main before it runs
	// ari adds an Asterisk switch "ast1": switchsim's ARI side, or the real
	// Asterisk named by CALLGATE_TEST_ARI (with _USER, _PASSWORD, _APP).
	ari bool
}

func setupE2E(t *testing.T, opts simOptions) *e2e {
	t.Helper()
	addr, password := os.Getenv("CALLGATE_TEST_ESL"), os.Getenv("CALLGATE_TEST_ESL_PASSWORD")
	var sim *switchsim.Sim
	if addr == "" {
		password = "e2e-secret"
		scale := opts.timeScale
		if scale == 0 {
			scale = 0.05
		}
		simCfg := switchsim.Config{Password: password, MaxSessions: opts.maxSessions, TimeScale: scale,
			ARIUser: "callgate", ARIPassword: "e2e-ari-secret"}
		if opts.media != nil {
			simCfg.RecordDir = opts.media.SpoolDir
		}
		sim = switchsim.New(simCfg)
		require.NoError(t, sim.Listen("127.0.0.1:0"))
		t.Cleanup(func() { sim.Close() })
		addr = sim.Addr()
	}
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DatabaseURL = pgtest.DSN(t)
	cfg.InstanceID = "e2e-" + t.Name()
	cfg.Policy = "lab"
	cfg.Dialer.HeartbeatInterval = 200 * time.Millisecond
	cfg.Switches = []SwitchConfig{{Name: "fs1", Kind: "freeswitch", Address: addr, Password: password,
		DialTemplate: "loopback/{number}/callgate-test", MaxSessions: opts.configLimit}}
	if opts.media != nil {
		cfg.Media = *opts.media
	}
	if cfg.Media.KeysFile == "" {
		cfg.KeysFile = testKeysFile(t)
	}
	if opts.ari {
		cfg.Switches = append(cfg.Switches, ariSwitch(t, sim))
	}
	w := calltest.New(30 * time.Second)
	m := &Main{Config: cfg, Logger: testLogger(t), OnCallUpdate: w.Observe}
	if opts.main != nil {
		opts.main(m)
	}
	require.NoError(t, m.Run(context.Background()))
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	return newE2E(t, m, sim, w)
}

// testKeysFile creates a keyring for the test (every controller of one
// database must share it).
func testKeysFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.json")
	_, err := recording.GenerateKeyring(path)
	require.NoError(t, err)
	return path
}

// keyedStore returns a store on db that seals numbers with the keyring in
// keysFile, as the controllers of the test do.
func keyedStore(t *testing.T, db *postgres.DB, keysFile string) *postgres.Store {
	t.Helper()
	kr, err := recording.LoadKeyring(keysFile)
	require.NoError(t, err)
	keys, err := pii.New(kr)
	require.NoError(t, err)
	store := postgres.NewStore(db)
	store.SetPersonalData(keys)
	return store
}

// newE2E wraps a running Main, with a client that sends the admin token of
// the default tenant it issues.
func newE2E(t *testing.T, m *Main, sim *switchsim.Sim, w *calltest.Watcher) *e2e {
	t.Helper()
	secret, _, err := m.issueToken(context.Background(), controller.DefaultTenant, controller.RoleAdmin, "")
	require.NoError(t, err)
	return &e2e{m: m, sim: sim, base: "http://" + m.Addr(), w: w, admin: secret,
		client: &http.Client{Transport: bearer{secret: secret, next: http.DefaultTransport}}}
}

// ariSwitch configures the Asterisk switch ast1: the real one named by
// CALLGATE_TEST_ARI, else sim's ARI side (sim may be nil when the
// FreeSWITCH is real: a simulator for ARI alone is started).
func ariSwitch(t *testing.T, sim *switchsim.Sim) SwitchConfig {
	t.Helper()
	sc := SwitchConfig{Name: "ast1", Kind: "asterisk", URL: os.Getenv("CALLGATE_TEST_ARI"),
		User: os.Getenv("CALLGATE_TEST_ARI_USER"), Password: os.Getenv("CALLGATE_TEST_ARI_PASSWORD"),
		App: os.Getenv("CALLGATE_TEST_ARI_APP"), DialTemplate: "Local/{number}@callgate-test"}
	if sc.App == "" {
		sc.App = "callgate"
	}
	if sc.URL != "" {
		return sc
	}
	if sim == nil {
		sim = switchsim.New(switchsim.Config{TimeScale: 1, ARIUser: "callgate", ARIPassword: "e2e-ari-secret"})
		t.Cleanup(func() { sim.Close() })
	}
	require.NoError(t, sim.ListenARI("127.0.0.1:0"))
	sc.URL, sc.User, sc.Password, sc.DialTemplate = "http://"+sim.ARIAddr()+"/ari", "callgate", "e2e-ari-secret", "Local/{number}@cgtest"
	return sc
}

func (e *e2e) needSim(t *testing.T) {
	t.Helper()
	if e.sim == nil {
		t.Skip("fault injection needs switchsim (CALLGATE_TEST_ESL is set)")
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// do sends a JSON request and decodes a JSON answer into out (if not nil).
func (e *e2e) do(t *testing.T, method, path string, headers map[string]string, body any, out any) int {
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
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil {
		require.NoError(t, json.Unmarshal(raw, out), string(raw))
	}
	return resp.StatusCode
}

func (e *e2e) place(t *testing.T, to string) controller.Call {
	t.Helper()
	var c controller.Call
	// FreeSWITCH counts originate_timeout in whole clock seconds from the
	// second the originate began, so a 2 s timeout can fire after 1.0x s:
	// only the never-answering callee gets a short one.
	timeout := 10
	if strings.HasSuffix(to, "1004") {
		timeout = 2
	}
	code := e.do(t, "POST", "/v1/calls", nil, map[string]any{"to": to, "from": "+12125550100", "purpose": "service", "timeout_seconds": timeout}, &c)
	require.Equal(t, http.StatusAccepted, code)
	return c
}

// getCall reads the call back through the API.
func (e *e2e) getCall(t *testing.T, id controller.CallID) (controller.Call, []controller.CallEventRecord) {
	t.Helper()
	var out struct {
		controller.Call
		Events []controller.CallEventRecord `json:"events"`
	}
	require.Equal(t, http.StatusOK, e.do(t, "GET", "/v1/calls/"+string(id)+"?include=events", nil, nil, &out))
	return out.Call, out.Events
}

func TestE2ECallScenarios(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, simOptions{})
	tests := []struct {
		to       string
		state    controller.CallState
		cause    string
		answered bool
	}{
		{"+12125551006", controller.CallCompleted, "NORMAL_CLEARING", true}, // answer, hang up after 2 s
		{"+12125551003", controller.CallFailed, "USER_BUSY", false},
		{"+12125551004", controller.CallFailed, "NO_ANSWER", false},
		{"+12125551007", controller.CallFailed, "CALL_REJECTED", false},
		{"+12125551008", controller.CallFailed, "UNALLOCATED_NUMBER", false},
		{"+12125551009", controller.CallCompleted, "NORMAL_CLEARING", true}, // ring 1 s, answer
	}
	calls := make([]controller.Call, len(tests))
	for i, tt := range tests {
		calls[i] = e.place(t, tt.to)
		require.Equal(t, controller.CallQueued, calls[i].State)
	}
	for i, tt := range tests {
		t.Run(tt.to[len(tt.to)-4:], func(t *testing.T) {
			e.w.WaitTerminal(t, calls[i].ID)
			c, events := e.getCall(t, calls[i].ID)
			require.Equal(t, tt.state, c.State)
			require.Equal(t, tt.cause, c.HangupCause)
			require.Equal(t, tt.answered, c.AnsweredAt != nil)
			if tt.answered {
				require.Positive(t, c.Billsec, "billsec of an answered call")
			} else {
				require.Zero(t, c.Billsec)
			}
			require.NotEmpty(t, events)
			require.Equal(t, controller.CallOriginating, events[0].ToState)
			require.Equal(t, tt.state, events[len(events)-1].ToState)
		})
	}
}

func TestE2EIdempotencyKey(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, simOptions{})
	body := map[string]any{"to": "+12125551006", "from": "+12125550100"}
	hdr := map[string]string{"Idempotency-Key": "order-42"}
	var first, second controller.Call
	require.Equal(t, http.StatusAccepted, e.do(t, "POST", "/v1/calls", hdr, body, &first))
	require.Equal(t, http.StatusOK, e.do(t, "POST", "/v1/calls", hdr, body, &second))
	require.Equal(t, first.ID, second.ID)
	body["to"] = "+12125551001"
	var errBody struct {
		Error struct{ Code string } `json:"error"`
	}
	require.Equal(t, http.StatusConflict, e.do(t, "POST", "/v1/calls", hdr, body, &errBody))
	require.Equal(t, controller.ECONFLICT, errBody.Error.Code)

	e.w.WaitTerminal(t, first.ID)
	var page controller.CallPage
	require.Equal(t, http.StatusOK, e.do(t, "GET", "/v1/calls", nil, nil, &page))
	require.Len(t, page.Calls, 1, "one key, one call")
}

func TestE2ELinkDropMidCall(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, simOptions{})
	e.needSim(t)
	// Both callees (1005) answer and stay on the line.
	gone := e.place(t, "+12125551005")
	kept := e.place(t, "+12125551005")
	e.w.WaitState(t, gone.ID, controller.CallAnswered)
	e.w.WaitState(t, kept.ID, controller.CallAnswered)

	// Cut the link and keep callgate out while the far end of one call
	// hangs up: its hangup events are lost, only reconciliation can end it.
	e.sim.SetRefuseConnections(true)
	e.sim.DropConnections()
	require.True(t, e.sim.HangupChannel(string(gone.ID), "NORMAL_CLEARING"))
	require.NoError(t, e.sim.WaitChannelGone(t.Context(), string(gone.ID)))
	e.sim.SetRefuseConnections(false)

	c := e.w.WaitTerminal(t, gone.ID)
	require.Equal(t, controller.CallCompleted, c.State)
	require.True(t, c.Reconciled)
	got, _ := e.getCall(t, gone.ID)
	require.Equal(t, controller.CallCompleted, got.State)
	require.True(t, got.Reconciled)

	// The other call survived the drop and is tracked again: hang it up.
	require.Equal(t, http.StatusAccepted, e.do(t, "POST", "/v1/calls/"+string(kept.ID)+"/hangup", nil, map[string]string{"cause": "NORMAL_CLEARING"}, nil))
	e.w.WaitTerminal(t, kept.ID)
	got, _ = e.getCall(t, kept.ID)
	require.Equal(t, controller.CallCompleted, got.State)
	require.False(t, got.Reconciled, "its hangup arrived as events on the new link")
	require.NotNil(t, got.AnsweredAt) // billsec is whole seconds and may be 0 at test speed
}

func TestE2ESessionLimit(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, simOptions{maxSessions: 2})
	e.needSim(t)
	// The simulated switch takes 2 sessions (a loopback call uses two
	// channels: one call). callgate does not know that limit, so the switch
	// refuses the second call; the attempt must wait and go through once the
	// first call ends.
	first := e.place(t, "+12125551005")
	e.w.WaitFor(t, first.ID, "answered", func(c controller.Call) bool { return c.State == controller.CallAnswered })
	second := e.place(t, "+12125551006")
	require.NoError(t, e.sim.WaitRefusals(t.Context(), 1))
	e.w.WaitFor(t, second.ID, "requeued", func(c controller.Call) bool { return c.State == controller.CallQueued })

	c, events := e.getCall(t, second.ID)
	require.Equal(t, controller.CallQueued, c.State, "refused attempt is back in the queue, not lost")
	require.Equal(t, "DESTINATION_OUT_OF_ORDER", events[len(events)-1].Event.HangupCause)

	var sw struct {
		Switches []controller.SwitchStatus `json:"switches"`
	}
	require.Equal(t, http.StatusOK, e.do(t, "GET", "/v1/switches", nil, nil, &sw))
	require.Len(t, sw.Switches, 1)
	require.True(t, sw.Switches[0].Connected)

	require.Equal(t, http.StatusAccepted, e.do(t, "POST", "/v1/calls/"+string(first.ID)+"/hangup", nil, nil, nil))
	e.w.WaitTerminal(t, second.ID)
	c, _ = e.getCall(t, second.ID)
	require.Equal(t, controller.CallCompleted, c.State)
}

func TestE2ECommandInjection(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, simOptions{})
	e.needSim(t)
	hostile := []string{
		"x\nbgapi originate loopback/1005/callgate-test &park()",
		"x}loopback/9999 &park()",
		"a,origination_uuid=00000000-0000-0000-0000-000000000000",
		"it's {odd}",
		"x\r\n\r\napi hupall",
		"Smith, John & Co",
		"a b,cg_x=1 loopback/1001 &park()",
	}
	for _, name := range hostile {
		for _, field := range []string{"caller_id_name", "variable"} {
			body := map[string]any{"to": "+12125551005", "from": "+12125550100"}
			if field == "caller_id_name" {
				body["caller_id_name"] = name
			} else {
				body["variables"] = map[string]string{"cg_crm_ref": name}
			}
			var c controller.Call
			code := e.do(t, "POST", "/v1/calls", nil, body, &c)
			if code == http.StatusBadRequest {
				continue // rejected: nothing reached the switch
			}
			require.Equal(t, http.StatusAccepted, code)
			e.w.WaitFor(t, c.ID, "answered", func(c controller.Call) bool { return c.State == controller.CallAnswered })
			ch, ok := e.sim.Channel(string(c.ID))
			require.True(t, ok, "the channel carries our UUID, not an injected one")
			if field == "caller_id_name" {
				require.Equal(t, name, ch.Vars["origination_caller_id_name"])
			} else {
				require.Equal(t, name, ch.Vars["cg_crm_ref"])
			}
			require.Equal(t, "+12125551005", ch.Dest)
			require.Equal(t, http.StatusAccepted, e.do(t, "POST", "/v1/calls/"+string(c.ID)+"/hangup", nil, nil, nil))
			e.w.WaitTerminal(t, c.ID)
		}
	}
	require.Equal(t, 0, e.sim.HupallCount(), "no injected command ran")
}

func TestE2EComplianceGate(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, simOptions{})
	e.needSim(t)
	// The lab policy allows 15 calls per number per day: the 16th is blocked
	// when it is created and never reaches the switch.
	const to = "+12125551007" // rejects at once
	var allowed []controller.Call
	for range 15 {
		c := e.place(t, to)
		require.Equal(t, controller.CallQueued, c.State)
		require.NotNil(t, c.Decision)
		require.True(t, c.Decision.Allow)
		allowed = append(allowed, c)
	}
	var blocked controller.Call
	require.Equal(t, http.StatusAccepted, e.do(t, "POST", "/v1/calls", nil,
		map[string]any{"to": to, "from": "+12125550100", "purpose": "service"}, &blocked))
	require.Equal(t, controller.CallBlocked, blocked.State)
	require.Equal(t, []string{controller.ReasonCapDaily}, blocked.Decision.Reasons)

	for _, c := range allowed {
		e.w.WaitTerminal(t, c.ID)
	}
	require.Equal(t, 15, e.sim.Originated(), "the switch saw exactly the allowed calls")
	_, seen := e.sim.Channel(string(blocked.ID))
	require.False(t, seen)

	var a controller.Attempt
	require.Equal(t, http.StatusOK, e.do(t, "GET", "/v1/attempts/"+string(blocked.ID), nil, nil, &a))
	require.Equal(t, "blocked", a.Status)
	require.Equal(t, []string{controller.ReasonCapDaily}, a.BlockedReasons)
	require.Equal(t, http.StatusOK, e.do(t, "GET", "/v1/attempts/"+string(allowed[0].ID), nil, nil, &a))
	require.NotNil(t, a.DialDecision, "allowed calls were checked again before dialling")
	require.True(t, a.DialDecision.Allow)

	// A dry run explains without creating anything.
	var d controller.Decision
	require.Equal(t, http.StatusOK, e.do(t, "POST", "/v1/compliance/check", nil, map[string]any{"to": to}, &d))
	require.False(t, d.Allow)
	require.Contains(t, d.Reasons, controller.ReasonCapDaily)

	// An invalid number is bad input: refused, nothing stored.
	var errBody struct {
		Error struct{ Code, Field string } `json:"error"`
	}
	require.Equal(t, http.StatusBadRequest, e.do(t, "POST", "/v1/calls", nil,
		map[string]any{"to": "+15550001001", "from": "+12125550100"}, &errBody))
	require.Equal(t, "to", errBody.Error.Field)
	require.Equal(t, 15, e.sim.Originated())
}
