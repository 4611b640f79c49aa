package ivr_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/audio"
	"github.com/callgate/callgate/controller/compliance"
	"github.com/callgate/callgate/controller/ivr"
	"github.com/callgate/callgate/controller/recording"
)

// fakeStore is ivr.Store in memory.
type fakeStore struct {
	fakeLedger
	mu      sync.Mutex
	flows   map[string][]controller.FlowRecord
	prompts map[string][]controller.Prompt
	runs    map[controller.CallID]controller.FlowRun
	calls   map[controller.CallID]controller.Call
}

func newFakeStore(ev *events) *fakeStore {
	return &fakeStore{fakeLedger: fakeLedger{ev: ev}, flows: map[string][]controller.FlowRecord{},
		prompts: map[string][]controller.Prompt{}, runs: map[controller.CallID]controller.FlowRun{},
		calls: map[controller.CallID]controller.Call{}}
}

func (s *fakeStore) PutFlow(_ context.Context, f controller.FlowRecord) (controller.FlowRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.Version = len(s.flows[f.ID]) + 1
	s.flows[f.ID] = append(s.flows[f.ID], f)
	return f, nil
}

func (s *fakeStore) GetFlow(_ context.Context, _, id string, version int) (controller.FlowRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.flows[id]
	if len(vs) == 0 || version > len(vs) {
		return controller.FlowRecord{}, controller.Errorf(controller.ENOTFOUND, "no flow %s", id)
	}
	if version == 0 {
		version = len(vs)
	}
	return vs[version-1], nil
}

func (s *fakeStore) ListFlows(context.Context, string) ([]controller.FlowRecord, error) {
	return nil, nil
}

func (s *fakeStore) SaveFlowRun(_ context.Context, r controller.FlowRun) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs[r.CallID] = r
	return nil
}

func (s *fakeStore) GetFlowRun(_ context.Context, _ string, id controller.CallID) (controller.FlowRun, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runs[id]
	if !ok {
		return r, controller.Errorf(controller.ENOTFOUND, "no run")
	}
	return r, nil
}

func (s *fakeStore) PutPrompt(_ context.Context, p controller.Prompt) (controller.Prompt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.Version = len(s.prompts[p.Name]) + 1
	p.ID = p.Name + ".v" + string(rune('0'+p.Version))
	s.prompts[p.Name] = append(s.prompts[p.Name], p)
	return p, nil
}

func (s *fakeStore) GetPrompt(_ context.Context, _, name string, _ int) (controller.Prompt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.prompts[name]
	if len(vs) == 0 {
		return controller.Prompt{}, controller.Errorf(controller.ENOTFOUND, "no prompt %s", name)
	}
	return vs[len(vs)-1], nil
}

func (s *fakeStore) ListPrompts(context.Context, string) ([]controller.Prompt, error) {
	return nil, nil
}

func (s *fakeStore) TagCall(_ context.Context, _ string, id controller.CallID, tags map[string]string, disposition string) (controller.Call, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls[id]
	c.Tags, c.Disposition = tags, disposition
	s.calls[id] = c
	return c, nil
}

func (s *fakeStore) GetCall(_ context.Context, _ string, id controller.CallID) (controller.Call, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.calls[id]
	if !ok {
		return c, controller.Errorf(controller.ENOTFOUND, "no call %s", id)
	}
	return c, nil
}

// fakeSwitch is a controller.Switch with fakeMedia's capabilities.
type fakeSwitch struct {
	*fakeMedia
	ev *events
}

func (f fakeSwitch) Name() string { return "fs1" }
func (f fakeSwitch) Originate(context.Context, controller.OriginateRequest) error {
	return nil
}
func (f fakeSwitch) Hangup(_ context.Context, _ controller.CallID, cause string) error {
	f.ev.add("hangup %s", cause)
	return nil
}
func (f fakeSwitch) Track(controller.CallID)                                {}
func (f fakeSwitch) Channels(context.Context) ([]controller.Channel, error) { return nil, nil }
func (f fakeSwitch) Status() controller.SwitchStatus                        { return controller.SwitchStatus{} }
func (f fakeSwitch) Record(ctx context.Context, id controller.CallID, a controller.RecordAction, p string) error {
	return f.fakeMedia.Record(ctx, id, a, p)
}

type serviceBundle struct {
	svc   *ivr.Service
	store *fakeStore
	sw    fakeSwitch
	ev    *events
	runs  chan controller.FlowRun
	dir   string
}

func setupService(t *testing.T, inputs ...string) *serviceBundle {
	t.Helper()
	return setupServiceWith(t, nil, inputs...)
}

// setupServiceWith is setupService with cfg changed by mod first.
func setupServiceWith(t *testing.T, mod func(*ivr.ServiceConfig), inputs ...string) *serviceBundle {
	t.Helper()
	t.Parallel()
	ev := &events{}
	b := &serviceBundle{store: newFakeStore(ev), ev: ev, runs: make(chan controller.FlowRun, 4), dir: t.TempDir()}
	b.sw = fakeSwitch{fakeMedia: &fakeMedia{ev: ev, inputs: inputs}, ev: ev}
	pol, _ := compliance.Preset("lab")
	cfg := ivr.ServiceConfig{
		Store:      b.store,
		Switches:   func(string) (controller.Switch, bool) { return b.sw, true },
		Policy:     func(context.Context, string) (compliance.Policy, error) { return pol, nil },
		PromptDir:  filepath.Join(b.dir, "prompts"),
		OnRunEnded: func(r controller.FlowRun) { b.runs <- r },
	}
	if mod != nil {
		mod(&cfg)
	}
	svc, err := ivr.NewService(cfg)
	require.NoError(t, err)
	t.Cleanup(svc.Stop)
	b.svc = svc
	return b
}

func (b *serviceBundle) wait(t *testing.T) (controller.FlowRun, ivr.Result) {
	t.Helper()
	select {
	case r := <-b.runs:
		var res ivr.Result
		require.NoError(t, json.Unmarshal(r.Path, &res))
		return r, res
	case <-time.After(10 * time.Second):
		t.Fatal("the run did not end")
	}
	panic("unreachable")
}

func toneWAV(t *testing.T, d time.Duration) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, audio.WriteToneWAV(&b, audio.Format{Channels: 1, SampleRate: 8000}, d, []float64{440}))
	return b.Bytes()
}

func TestServiceRunsTheCallsFlow(t *testing.T) {
	b := setupService(t, "1")
	ctx := context.Background()
	_, err := b.svc.UploadPrompt(ctx, controller.Prompt{Name: "consent-q", TenantID: "t1",
		Text: "May we call you? Press 1 for yes."}, bytes.NewReader(toneWAV(t, time.Second)))
	require.NoError(t, err)
	_, problems, err := b.svc.SaveFlow(ctx, "t1", "ask", []byte(`{"start": "ask", "nodes": {
		"ask": {"type": "consent", "prompt": "consent-q", "purpose": "service", "on_yes": "bye", "on_no": "bye",
		        "on_timeout": "bye", "on_invalid": "bye"},
		"bye": {"type": "hangup"}}}`))
	require.NoError(t, err)
	require.Empty(t, problems)

	call := controller.Call{ID: "0b7c6a2e-1f7b-4c8e-9d5a-3e2f1a0b9c8d", TenantID: "t1", To: "+15551234567", FlowID: "ask"}
	b.svc.Answered(call, b.sw)
	b.svc.Answered(call, b.sw) // a repeated answer does not start a second run
	run, res := b.wait(t)
	require.Equal(t, ivr.OutcomeCompleted, run.Outcome)
	require.Equal(t, 1, run.FlowVersion)
	require.NotEmpty(t, res.ConsentID)
	stored, err := b.svc.FlowRun(ctx, "t1", call.ID)
	require.NoError(t, err)
	require.Equal(t, ivr.OutcomeCompleted, stored.Outcome)
	// The prompt the switch played is the uploaded file, by its content name.
	gathers := b.sw.gatherRequests()
	require.Len(t, gathers, 1)
	require.True(t, strings.HasPrefix(gathers[0].Prompt, filepath.Join(b.dir, "prompts", "t1", "consent-q-")), gathers[0].Prompt)
	_, err = os.Stat(gathers[0].Prompt)
	require.NoError(t, err)
	select {
	case r := <-b.runs:
		t.Fatalf("a second run: %+v", r)
	default:
	}
}

func TestServiceFailsClosed(t *testing.T) {
	b := setupService(t)
	call := controller.Call{ID: "0b7c6a2e-1f7b-4c8e-9d5a-3e2f1a0b9c8d", TenantID: "t1", To: "+15551234567", FlowID: "gone"}
	b.svc.Answered(call, b.sw)
	run, res := b.wait(t)
	require.Equal(t, ivr.OutcomeError, run.Outcome)
	require.Contains(t, res.Err, "loading the flow")
	require.Contains(t, b.ev.all(), "hangup NORMAL_TEMPORARY_FAILURE")
}

func TestServiceValidatesWithThePolicy(t *testing.T) {
	b := setupService(t)
	ctx := context.Background()
	_, err := b.svc.UploadPrompt(ctx, controller.Prompt{Name: "pitch", TenantID: "t1", Text: "Your FREE cruise awaits!"},
		bytes.NewReader(toneWAV(t, time.Second)))
	require.NoError(t, err)
	doc := []byte(`{"start": "a", "nodes": {"a": {"type": "play", "prompt": "pitch"}}}`)
	_, problems, err := b.svc.SaveFlow(ctx, "t1", "pitch", doc)
	require.Equal(t, controller.EINVALID, controller.ErrorCode(err))
	require.NotEmpty(t, problems)
	require.Equal(t, "a", problems[0].Node)
	require.Contains(t, problems[0].Message, "free")
	_, err = b.svc.GetFlow(ctx, "t1", "pitch", 0)
	require.Equal(t, controller.ENOTFOUND, controller.ErrorCode(err), "a refused flow is not stored")
	vs, err := b.svc.ValidateFlow(ctx, "t1", doc)
	require.NoError(t, err)
	require.Equal(t, problems, vs)
	_, _, err = b.svc.SaveFlow(ctx, "t1", "Bad ID", doc)
	require.Equal(t, "id", controller.ErrorField(err))
}

func TestServiceUploadPromptChecksAudio(t *testing.T) {
	b := setupService(t)
	ctx := context.Background()
	dir := filepath.Join(b.dir, "prompts", "t1")
	for _, tc := range []struct {
		p     controller.Prompt
		body  []byte
		field string
	}{
		{controller.Prompt{Name: "x", Text: "Hi."}, []byte("not a wav at all"), "audio"},
		{controller.Prompt{Name: "x", Text: "Hi."}, toneWAV(t, time.Second)[:100], "audio"},
		{controller.Prompt{Name: "X y", Text: "Hi."}, toneWAV(t, time.Second), "name"},
		{controller.Prompt{Name: "x"}, toneWAV(t, time.Second), "text"},
		{controller.Prompt{Name: "x", Text: "Hi.\x00"}, toneWAV(t, time.Second), "text"},
	} {
		tc.p.TenantID = "t1"
		_, err := b.svc.UploadPrompt(ctx, tc.p, bytes.NewReader(tc.body))
		require.Equal(t, controller.EINVALID, controller.ErrorCode(err), "%+v", tc.p)
		require.Equal(t, tc.field, controller.ErrorField(err))
		require.NotContains(t, err.Error(), dir, "no server path in the message")
	}
	entries, _ := os.ReadDir(dir)
	require.Empty(t, entries, "nothing left behind by refused uploads")
	_, err := b.svc.GetPrompt(ctx, "t1", "x", 0)
	require.Equal(t, controller.ENOTFOUND, controller.ErrorCode(err))
}

// memRecordings is controller.RecordingStore in memory (only what pause
// and resume read matters here).
type memRecordings struct {
	controller.RecordingStore
	recs []controller.Recording
}

func (m *memRecordings) ListRecordings(context.Context, string, controller.CallID) ([]controller.Recording, error) {
	return m.recs, nil
}

func TestServicePauseResume(t *testing.T) {
	t.Parallel()
	ev := &events{}
	store := newFakeStore(ev)
	sw := fakeSwitch{fakeMedia: &fakeMedia{ev: ev}, ev: ev}
	dir := t.TempDir()
	keys, err := recording.GenerateKeyring(filepath.Join(dir, "keys.json"))
	require.NoError(t, err)
	recs := &memRecordings{}
	rec, err := recording.New(recording.Config{Store: recs, Blobs: recording.FSStore{Dir: filepath.Join(dir, "store")},
		Keys: keys, SpoolDir: filepath.Join(dir, "spool"), Retention: time.Hour})
	require.NoError(t, err)
	pol, _ := compliance.Preset("lab")
	svc, err := ivr.NewService(ivr.ServiceConfig{
		Store: store, Recordings: rec, RecordingStore: recs,
		Switches: func(name string) (controller.Switch, bool) { return sw, name == "fs1" },
		Policy:   func(context.Context, string) (compliance.Policy, error) { return pol, nil },
		SpoolDir: filepath.Join(dir, "spool"), SwitchSpoolDir: "/var/lib/callgate/spool",
	})
	require.NoError(t, err)
	t.Cleanup(svc.Stop)
	ctx := context.Background()
	const id = controller.CallID("0b7c6a2e-1f7b-4c8e-9d5a-3e2f1a0b9c8d")

	require.Equal(t, controller.ENOTFOUND, controller.ErrorCode(svc.PauseRecording(ctx, "t1", id)), "no such call")
	store.calls[id] = controller.Call{ID: id, TenantID: "t1", Switch: "fs1", State: controller.CallAnswered}
	require.Equal(t, controller.ENOTFOUND, controller.ErrorCode(svc.PauseRecording(ctx, "t1", id)), "no active recording")
	recs.recs = []controller.Recording{
		{ID: "r0", Status: controller.RecordingStored, SpoolPath: filepath.Join(dir, "spool", "t1", "old.wav")},
		{ID: "r1", Status: controller.RecordingActive, SpoolPath: filepath.Join(dir, "spool", "t1", "now.wav")},
	}
	require.NoError(t, svc.PauseRecording(ctx, "t1", id))
	require.NoError(t, svc.ResumeRecording(ctx, "t1", id))
	require.Equal(t, []string{
		"record mask /var/lib/callgate/spool/t1/now.wav",
		"record unmask /var/lib/callgate/spool/t1/now.wav",
	}, ev.all(), "the active recording, at the path the switch sees")
	store.calls[id] = controller.Call{ID: id, TenantID: "t1", Switch: "fs1", State: controller.CallCompleted}
	require.Equal(t, controller.ENOTFOUND, controller.ErrorCode(svc.PauseRecording(ctx, "t1", id)), "the call is over")
}
