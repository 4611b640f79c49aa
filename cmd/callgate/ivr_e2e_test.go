package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/audio"
	"github.com/callgate/callgate/controller/ivr"
	"github.com/callgate/callgate/controller/postgres"
	"github.com/callgate/callgate/controller/postgres/pgtest"
	"github.com/callgate/callgate/controller/recording"
	"github.com/callgate/callgate/controller/switchsim"
)

// ivrE2E is the whole stack with IVR flows and recordings on: prompts,
// spool and store in temporary directories, a fresh keyring, and the
// simulator writing its recordings into the spool.
type ivrE2E struct {
	*e2e
	dirs struct{ prompts, spool, store, keys string }
	runs chan controller.FlowRun
	mu   sync.Mutex
	seal map[controller.CallID]chan error
}

func setupIVR(t *testing.T, edit ...func(*Main)) *ivrE2E {
	t.Helper()
	return setupIVRWith(t, simOptions{timeScale: 0.1}, edit...)
}

// setupIVRWith is setupIVR with other simulator options.
func setupIVRWith(t *testing.T, opts simOptions, edit ...func(*Main)) *ivrE2E {
	t.Helper()
	if os.Getenv("CALLGATE_TEST_ESL") != "" && os.Getenv("CALLGATE_TEST_SPOOL_DIR") == "" {
		t.Skip("against a real switch the IVR tests need the spool it writes recordings to: CALLGATE_TEST_SPOOL_DIR")
	}
	x := &ivrE2E{runs: make(chan controller.FlowRun, 64), seal: map[controller.CallID]chan error{}}
	root := t.TempDir()
	x.dirs.prompts, x.dirs.store, x.dirs.keys = filepath.Join(root, "prompts"), filepath.Join(root, "store"), filepath.Join(root, "keys.json")
	x.dirs.spool = filepath.Join(root, "spool")
	if d := os.Getenv("CALLGATE_TEST_SPOOL_DIR"); d != "" {
		x.dirs.spool = d
	}
	_, err := recording.GenerateKeyring(x.dirs.keys)
	require.NoError(t, err)

	opts.media = &MediaConfig{PromptDir: x.dirs.prompts, SpoolDir: x.dirs.spool, StoreDir: x.dirs.store,
		KeysFile: x.dirs.keys, PurgeSchedule: "17 3 * * *",
		// The tests' webhook servers listen on loopback over http.
		EgressAllow: []string{"127.0.0.0/8"}, EgressAllowHTTP: true, WebhookSecret: webhookSecret}
	x.e2e = setupE2E(t, simOptions{
		timeScale: opts.timeScale, ari: opts.ari, media: opts.media,
		main: func(m *Main) {
			m.OnRunEnded = func(r controller.FlowRun) { x.runs <- r }
			m.OnSealed = func(id controller.CallID, err error) { x.sealed(id) <- err }
			for _, f := range edit {
				f(m)
			}
		},
	})
	return x
}

func (x *ivrE2E) sealed(id controller.CallID) chan error {
	x.mu.Lock()
	defer x.mu.Unlock()
	ch, ok := x.seal[id]
	if !ok {
		ch = make(chan error, 4)
		x.seal[id] = ch
	}
	return ch
}

// waitRun returns the finished flow run of call id.
func (x *ivrE2E) waitRun(t *testing.T, id controller.CallID) (controller.FlowRun, ivr.Result) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case r := <-x.runs:
			if r.CallID != id {
				x.runs <- r // another call's: put it back for its waiter
				continue
			}
			var res ivr.Result
			require.NoError(t, json.Unmarshal(r.Path, &res))
			return r, res
		case <-deadline:
			t.Fatalf("flow run of call %s did not end", id)
		}
	}
}

// uploadPrompt uploads a one-second tone as prompt name with text.
func (x *ivrE2E) uploadPrompt(t *testing.T, name, text string) controller.Prompt {
	t.Helper()
	var wav bytes.Buffer
	require.NoError(t, audio.WriteToneWAV(&wav, audio.Format{Channels: 1, SampleRate: 8000}, time.Second, []float64{440}))
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	require.NoError(t, mw.WriteField("text", text))
	require.NoError(t, mw.WriteField("language", "en-US"))
	fw, err := mw.CreateFormFile("audio", name+".wav")
	require.NoError(t, err)
	_, err = fw.Write(wav.Bytes())
	require.NoError(t, err)
	require.NoError(t, mw.Close())
	resp, err := x.client.Post(x.base+"/v1/prompts/"+name, mw.FormDataContentType(), &body)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(raw))
	var p controller.Prompt
	require.NoError(t, json.Unmarshal(raw, &p))
	return p
}

func (x *ivrE2E) putFlow(t *testing.T, id, doc string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, x.base+"/v1/flows/"+id, strings.NewReader(doc))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := x.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(raw))
}

func (x *ivrE2E) placeFlow(t *testing.T, to, flow string) controller.Call {
	t.Helper()
	var c controller.Call
	code := x.do(t, "POST", "/v1/calls", nil, map[string]any{"to": to, "from": "+12125550100",
		"purpose": "marketing", "timeout_seconds": 10, "flow_id": flow}, &c)
	require.Equal(t, http.StatusAccepted, code)
	require.Equal(t, controller.CallQueued, c.State, "%+v", c.Decision)
	return c
}

// webhookSecret signs the tests' webhook requests.
const webhookSecret = "e2e-webhook-secret-0123456789"

// consentFlow asks for consent; yes records a two-second tone, no and
// silence end the call.
const consentFlow = `{
  "name": "Consent then record",
  "start": "ask",
  "nodes": {
    "ask":  {"type": "consent", "prompt": "consent-q", "yes": "1", "no": "2", "purpose": "marketing",
             "tries": 1, "timeout_ms": 3000, "on_yes": "rec", "on_no": "bye", "on_timeout": "bye", "on_invalid": "bye"},
    "rec":  {"type": "record", "action": "start", "next": "talk"},
    "talk": {"type": "play", "tone": "tone_stream://%(2000,0,440)", "next": "stop"},
    "stop": {"type": "record", "action": "stop", "next": "bye"},
    "bye":  {"type": "hangup"}
  }
}`

const consentText = "May we call you about offers? Press 1 for yes, 2 for no."

func TestE2EConsentPress1RecordsEncrypted(t *testing.T) {
	t.Parallel()
	x := setupIVR(t)
	p := x.uploadPrompt(t, "consent-q", consentText)
	x.putFlow(t, "consent", consentFlow)
	const to = "+12125551001" // answers and presses 1
	c := x.placeFlow(t, to, "consent")

	run, res := x.waitRun(t, c.ID)
	require.Equal(t, ivr.OutcomeCompleted, run.Outcome, "%+v", res)
	require.NotEmpty(t, res.ConsentID)
	require.Len(t, res.RecordingIDs, 1)
	final := x.w.WaitTerminal(t, c.ID)
	require.Equal(t, controller.CallCompleted, final.State)
	require.NoError(t, <-x.sealed(c.ID))

	// The consent is in the ledger with its evidence: the prompt version
	// played, the digit, the call.
	var consents struct{ Consents []controller.Consent }
	require.Equal(t, http.StatusOK, x.do(t, "GET", "/v1/consents?number="+url.QueryEscape(to), nil, nil, &consents))
	require.Len(t, consents.Consents, 1)
	got := consents.Consents[0]
	require.Equal(t, res.ConsentID, got.ID)
	require.Equal(t, controller.PurposeMarketing, got.Purpose)
	require.Equal(t, "ivr", got.Source)
	require.Equal(t, "1", got.Digit)
	require.Equal(t, c.ID, got.CallID)
	require.Equal(t, p.ID, got.PromptID)
	require.Equal(t, "1", got.PromptVersion)

	// The recording is stored encrypted: the store holds no WAV, the spool
	// holds nothing, and the decrypted audio is a WAV of the recorded
	// length whose SHA-256 is the one kept.
	var rec controller.Recording
	require.Equal(t, http.StatusOK, x.do(t, "GET", "/v1/recordings/"+res.RecordingIDs[0], nil, nil, &rec))
	require.Equal(t, controller.RecordingStored, rec.Status)
	require.Equal(t, res.ConsentID, rec.ConsentID)
	require.Equal(t, 2, rec.Channels)
	require.NotEmpty(t, rec.KeyID)
	var files []string
	require.NoError(t, filepath.WalkDir(x.dirs.store, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	}))
	require.Len(t, files, 1)
	sealed, err := os.ReadFile(files[0])
	require.NoError(t, err)
	require.False(t, bytes.Contains(sealed, []byte("RIFF")) || bytes.Contains(sealed, []byte("WAVEfmt")), "the stored file is not plaintext")
	requireNoWAV(t, x.dirs.spool)

	resp, err := x.client.Get(x.base + "/v1/recordings/" + rec.ID + "/audio")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "audio/wav", resp.Header.Get("Content-Type"))
	plain, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	sum := sha256.Sum256(plain)
	require.Equal(t, rec.SHA256, hex.EncodeToString(sum[:]))
	f, err := audio.ParseWAV(bytes.NewReader(plain))
	require.NoError(t, err)
	require.Equal(t, 2, f.Channels)
	require.Equal(t, rec.DurationMS, f.Duration().Milliseconds())
	require.GreaterOrEqual(t, rec.DurationMS, int64(2000), "recording started before the two-second tone and stopped after it")

	// The run's path is stored with the call.
	var stored controller.FlowRun
	require.Equal(t, http.StatusOK, x.do(t, "GET", "/v1/calls/"+string(c.ID)+"/flow-run", nil, nil, &stored))
	require.Equal(t, ivr.OutcomeCompleted, stored.Outcome)
	var nodes []string
	for _, s := range res.Path {
		nodes = append(nodes, s.Node)
	}
	require.Equal(t, []string{"ask", "rec", "talk", "stop", "bye"}, nodes)
}

func TestE2EConsentPress2LocksNumber(t *testing.T) {
	t.Parallel()
	x := setupIVR(t)
	x.uploadPrompt(t, "consent-q", consentText)
	x.putFlow(t, "consent", consentFlow)
	const to = "+12125551002" // answers and presses 2
	c := x.placeFlow(t, to, "consent")
	run, res := x.waitRun(t, c.ID)
	require.Equal(t, ivr.OutcomeCompleted, run.Outcome, "%+v", res)
	require.NotEmpty(t, res.RefusalID)
	require.Empty(t, res.ConsentID)
	require.Empty(t, res.RecordingIDs)
	x.w.WaitTerminal(t, c.ID)

	var recs struct{ Recordings []controller.Recording }
	require.Equal(t, http.StatusOK, x.do(t, "GET", "/v1/calls/"+string(c.ID)+"/recordings", nil, nil, &recs))
	require.Empty(t, recs.Recordings)
	requireNoWAV(t, x.dirs.spool)

	// The next attempt to the number is blocked: refused.
	var next controller.Call
	require.Equal(t, http.StatusAccepted, x.do(t, "POST", "/v1/calls", nil,
		map[string]any{"to": to, "from": "+12125550100", "purpose": "marketing"}, &next))
	require.Equal(t, controller.CallBlocked, next.State)
	require.Contains(t, next.Decision.Reasons, controller.ReasonRefused)
}

func TestE2EConsentNoKeyAndHangupMidPrompt(t *testing.T) {
	t.Parallel()
	x := setupIVR(t)
	x.uploadPrompt(t, "consent-q", consentText)
	x.putFlow(t, "consent", consentFlow)

	// No key: no consent, no refusal, no recording.
	silent := x.placeFlow(t, "+12125551005", "consent")
	run, res := x.waitRun(t, silent.ID)
	require.Equal(t, ivr.OutcomeCompleted, run.Outcome, "%+v", res)
	require.Empty(t, res.ConsentID)
	require.Empty(t, res.RefusalID)
	require.Empty(t, res.RecordingIDs)
	require.Equal(t, "timeout", res.Path[0].Result)
	x.w.WaitTerminal(t, silent.ID)

	// The callee hangs up during the (one second) consent prompt... of a
	// long tone flow: the flow ends cleanly, the call completes, nothing is
	// half-written.
	x.putFlow(t, "long", `{"start": "hello", "nodes": {
		"hello": {"type": "play", "tone": "tone_stream://%(5000,0,440)", "next": "ask"},
		"ask": {"type": "consent", "prompt": "consent-q", "purpose": "marketing", "tries": 3, "timeout_ms": 5000,
		        "on_yes": "bye", "on_no": "bye", "on_timeout": "bye", "on_invalid": "bye"},
		"bye": {"type": "hangup"}}}`)
	gone := x.placeFlow(t, "+12125551010", "long")
	run, res = x.waitRun(t, gone.ID)
	require.Equal(t, ivr.OutcomeHungUp, run.Outcome, "%+v", res)
	require.NotNil(t, run.EndedAt)
	final := x.w.WaitTerminal(t, gone.ID)
	require.Equal(t, controller.CallCompleted, final.State)
	for _, number := range []string{url.QueryEscape("+12125551005"), url.QueryEscape("+12125551010")} {
		var consents struct{ Consents []controller.Consent }
		require.Equal(t, http.StatusOK, x.do(t, "GET", "/v1/consents?number="+number, nil, nil, &consents))
		require.Empty(t, consents.Consents)
		var refusals struct{ Refusals []controller.Refusal }
		require.Equal(t, http.StatusOK, x.do(t, "GET", "/v1/refusals?number="+number, nil, nil, &refusals))
		require.Empty(t, refusals.Refusals)
	}
	requireNoWAV(t, x.dirs.spool)
}

func TestE2EWebhookSteersCall(t *testing.T) {
	t.Parallel()
	x := setupIVR(t)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := ivr.VerifySignature([]byte(webhookSecret), r.Header, body, time.Now(), 0); err != nil {
			http.Error(w, "bad signature: "+err.Error(), http.StatusUnauthorized)
			return
		}
		var req ivr.WebhookRequest
		if err := json.Unmarshal(body, &req); err != nil || strings.Contains(string(body), "2125551005") {
			http.Error(w, "bad request or full number", http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte(`{"next": "tag"}`))
	}))
	t.Cleanup(hook.Close)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	x.putFlow(t, "hooked", `{"start": "ask", "nodes": {
		"ask":  {"type": "webhook", "url": "`+hook.URL+`", "timeout_ms": 3000, "next": "bye", "on_error": "bye"},
		"tag":  {"type": "set", "disposition": "steered", "next": "down"},
		"down": {"type": "webhook", "url": "`+downURL+`", "timeout_ms": 1000, "next": "bye", "on_error": "fallback"},
		"fallback": {"type": "set", "tags": {"fallback": "yes"}, "next": "bye"},
		"bye":  {"type": "hangup"}}}`)
	c := x.placeFlow(t, "+12125551005", "hooked") // answers and stays on the line
	run, res := x.waitRun(t, c.ID)
	require.Equal(t, ivr.OutcomeCompleted, run.Outcome, "%+v", res)
	require.Equal(t, "steered", res.Disposition, "the integrator's reply chose the node")
	require.Equal(t, "yes", res.Tags["fallback"], "a server that is down takes the fallback branch")
	var steps []string
	for _, s := range res.Path {
		steps = append(steps, s.Node+":"+s.Result)
	}
	require.Equal(t, []string{"ask:next", "tag:set", "down:error", "fallback:set", "bye:NORMAL_CLEARING"}, steps)
	x.w.WaitTerminal(t, c.ID)
	got, _ := x.getCall(t, c.ID)
	require.Equal(t, "steered", got.Disposition, "the flow's set nodes are stored on the call")
	require.Equal(t, map[string]string{"fallback": "yes"}, got.Tags)
}

// requireNoWAV fails if any plaintext recording is left under dir.
func requireNoWAV(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(strings.ToLower(p), ".wav") {
			t.Errorf("plaintext recording left behind: %s", p)
		}
		return nil
	})
}

// TestE2ECrashLeavesNoPlaintext: a controller died between RECORD_STOP and
// sealing (the recording is still active, its plaintext in the spool), and
// a stray plaintext with no recording lies beside it. The next start seals
// the first, removes the second, and the recording plays back.
func TestE2ECrashLeavesNoPlaintext(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	mc := MediaConfig{PromptDir: filepath.Join(root, "prompts"), SpoolDir: filepath.Join(root, "spool"),
		StoreDir: filepath.Join(root, "store"), KeysFile: filepath.Join(root, "keys.json"), PurgeSchedule: "17 3 * * *"}
	keys, err := recording.GenerateKeyring(mc.KeysFile)
	require.NoError(t, err)
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	require.NoError(t, postgres.Migrate(ctx, dsn))
	db, err := postgres.Open(ctx, dsn)
	require.NoError(t, err)
	store := keyedStore(t, db, mc.KeysFile)

	// What the dead controller left: a finished call, its active recording
	// and the plaintext the switch wrote.
	call, _, err := store.CreateCall(ctx, controller.Call{To: "+12125551001", From: "+12125550100"}, "")
	require.NoError(t, err)
	_, err = store.CancelCall(ctx, controller.DefaultTenant, call.ID)
	require.NoError(t, err)
	rec, err := recording.New(recording.Config{Store: store, Blobs: recording.FSStore{Dir: mc.StoreDir},
		Keys: keys, SpoolDir: mc.SpoolDir, Retention: time.Hour})
	require.NoError(t, err)
	left, err := rec.Begin(ctx, controller.Recording{TenantID: controller.DefaultTenant, CallID: call.ID})
	require.NoError(t, err)
	var wav bytes.Buffer
	require.NoError(t, audio.WriteToneWAV(&wav, audio.Format{Channels: 2, SampleRate: 8000}, 1500*time.Millisecond, []float64{440, 660}))
	require.NoError(t, os.WriteFile(left.SpoolPath, wav.Bytes(), 0o600))
	stray := filepath.Join(mc.SpoolDir, "default", "stray.wav")
	require.NoError(t, os.WriteFile(stray, wav.Bytes(), 0o600))
	db.Close()

	sim := switchsim.New(switchsim.Config{Password: "e2e-secret", TimeScale: 0.05})
	require.NoError(t, sim.Listen("127.0.0.1:0"))
	t.Cleanup(func() { sim.Close() })
	cfg := DefaultConfig()
	cfg.Listen, cfg.DatabaseURL, cfg.InstanceID, cfg.Policy = "127.0.0.1:0", dsn, "e2e-"+t.Name(), "lab"
	cfg.Switches = []SwitchConfig{{Name: "fs1", Kind: "freeswitch", Address: sim.Addr(), Password: "e2e-secret",
		DialTemplate: "loopback/{number}/callgate-test"}}
	cfg.Media = mc
	m := &Main{Config: cfg, Logger: testLogger(t)}
	require.NoError(t, m.Run(ctx))
	t.Cleanup(func() { require.NoError(t, m.Close()) })

	requireNoWAV(t, mc.SpoolDir)
	x := newE2E(t, m, nil, nil)
	var got controller.Recording
	require.Equal(t, http.StatusOK, x.do(t, "GET", "/v1/recordings/"+left.ID, nil, nil, &got))
	require.Equal(t, controller.RecordingStored, got.Status)
	resp, err := x.client.Get(x.base + "/v1/recordings/" + left.ID + "/audio")
	require.NoError(t, err)
	defer resp.Body.Close()
	plain, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, wav.Bytes(), plain, "the sealed recording decrypts to what the switch wrote")
}

// clock is a settable clock for the recordings' retention.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestE2ERotateKeysThenPurge: `callgate keys rotate` (another process)
// re-wraps the recording's data key under a new master key and destroys the
// old one; the running server still plays it back. Past retention the purge
// shreds it: nobody can decrypt it and its file is gone.
func TestE2ERotateKeysThenPurge(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Now()}
	x := setupIVR(t, func(m *Main) { m.Now = clk.now })
	x.needSim(t)
	x.uploadPrompt(t, "consent-q", consentText)
	x.putFlow(t, "consent", consentFlow)
	c := x.placeFlow(t, "+12125551001", "consent")
	_, res := x.waitRun(t, c.ID)
	require.Len(t, res.RecordingIDs, 1)
	require.NoError(t, <-x.sealed(c.ID))
	id := res.RecordingIDs[0]
	var before controller.Recording
	require.Equal(t, http.StatusOK, x.do(t, "GET", "/v1/recordings/"+id, nil, nil, &before))
	audioOf := func() (int, []byte) {
		resp, err := x.client.Get(x.base + "/v1/recordings/" + id + "/audio")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, b
	}
	code, plain := audioOf()
	require.Equal(t, http.StatusOK, code)

	env := map[string]string{
		"CALLGATE_DATABASE_URL": x.m.Config.DatabaseURL, "CALLGATE_POLICY": "lab",
		"CALLGATE_ESL": "127.0.0.1:1", "CALLGATE_ESL_PASSWORD": "x",
		"CALLGATE_RECORDING_SPOOL_DIR": x.dirs.spool, "CALLGATE_RECORDING_STORE_DIR": x.dirs.store,
		"CALLGATE_RECORDING_KEYS": x.dirs.keys,
	}
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"keys", "rotate"}, func(k string) string { return env[k] }, &out, io.Discard))
	require.Regexp(t, `new master key k2; [1-9]\d* recording keys and phone numbers moved to it`, out.String())
	var after controller.Recording
	require.Equal(t, http.StatusOK, x.do(t, "GET", "/v1/recordings/"+id, nil, nil, &after))
	require.NotEqual(t, before.KeyID, after.KeyID)
	keys, err := recording.LoadKeyring(x.dirs.keys)
	require.NoError(t, err)
	require.True(t, keys.Retired(before.KeyID), "the old master key is destroyed")
	code, again := audioOf()
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, plain, again, "still decryptable, with the new key")

	// A year and a day later the purge shreds it.
	clk.add(366 * 24 * time.Hour)
	n, err := x.m.purgeRecordings(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	code, _ = audioOf()
	require.Equal(t, http.StatusConflict, code)
	require.Equal(t, http.StatusOK, x.do(t, "GET", "/v1/recordings/"+id, nil, nil, &after))
	require.Equal(t, controller.RecordingShredded, after.Status)
	var files []string
	require.NoError(t, filepath.WalkDir(x.dirs.store, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	}))
	require.Empty(t, files, "the ciphertext is deleted")
}

// TestE2ETransfer: a transfer node bridges the call; a bridge that ends
// ends the flow ("transferred"), a failed one follows next.
func TestE2ETransfer(t *testing.T) {
	t.Parallel()
	x := setupIVR(t)
	x.putFlow(t, "xfer", `{"start": "busy", "nodes": {
		"busy":  {"type": "transfer", "to": "loopback/1003/callgate-test", "next": "agent"},
		"agent": {"type": "transfer", "to": "loopback/1006/callgate-test", "next": "bye"},
		"bye":   {"type": "hangup"}}}`)
	c := x.placeFlow(t, "+12125551005", "xfer") // answers and stays on the line
	run, res := x.waitRun(t, c.ID)
	require.Equal(t, ivr.OutcomeTransferred, run.Outcome, "%+v", res)
	var steps []string
	for _, s := range res.Path {
		steps = append(steps, s.Node+":"+s.Result)
	}
	require.Equal(t, []string{"busy:not_bridged: USER_BUSY", "agent:bridged"}, steps)
}
