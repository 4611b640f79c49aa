package postgres_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

func TestFlowVersions(t *testing.T) {
	b := setup(t)
	b.addTenant(t, "acme")
	v1, err := b.store.PutFlow(b.ctx, controller.FlowRecord{ID: "welcome", Name: "Welcome",
		Body: json.RawMessage(`{"steps": [{"play": "hello"}]}`)})
	require.NoError(t, err)
	require.Equal(t, 1, v1.Version)
	require.Equal(t, controller.DefaultTenant, v1.TenantID)
	require.False(t, v1.CreatedAt.IsZero())
	require.JSONEq(t, `{"steps":[{"play":"hello"}]}`, string(v1.Body))

	v2, err := b.store.PutFlow(b.ctx, controller.FlowRecord{ID: "welcome", Name: "Welcome 2",
		Body: json.RawMessage(`{"steps": []}`)})
	require.NoError(t, err)
	require.Equal(t, 2, v2.Version)
	// The same ID in another tenant is another flow.
	acme, err := b.store.PutFlow(b.ctx, controller.FlowRecord{ID: "welcome", TenantID: "acme",
		Body: json.RawMessage(`{"acme": true}`)})
	require.NoError(t, err)
	require.Equal(t, 1, acme.Version)
	other, err := b.store.PutFlow(b.ctx, controller.FlowRecord{ID: "after-hours_1",
		Body: json.RawMessage(`{}`)})
	require.NoError(t, err)
	require.Equal(t, 1, other.Version)

	latest, err := b.store.GetFlow(b.ctx, controller.DefaultTenant, "welcome", 0)
	require.NoError(t, err)
	require.Equal(t, v2, latest)
	first, err := b.store.GetFlow(b.ctx, controller.DefaultTenant, "welcome", 1)
	require.NoError(t, err)
	require.Equal(t, v1, first)
	_, err = b.store.GetFlow(b.ctx, controller.DefaultTenant, "welcome", 3)
	requireCode(t, controller.ENOTFOUND, err)
	_, err = b.store.GetFlow(b.ctx, controller.DefaultTenant, "nope", 0)
	requireCode(t, controller.ENOTFOUND, err)
	_, err = b.store.GetFlow(b.ctx, "acme", "after-hours_1", 0)
	requireCode(t, controller.ENOTFOUND, err)
	got, err := b.store.GetFlow(b.ctx, "acme", "welcome", 0)
	require.NoError(t, err)
	require.Equal(t, acme, got)

	list, err := b.store.ListFlows(b.ctx, controller.DefaultTenant)
	require.NoError(t, err)
	require.Equal(t, []controller.FlowRecord{other, v2}, list)
	list, err = b.store.ListFlows(b.ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, []controller.FlowRecord{acme}, list)
	list, err = b.store.ListFlows(b.ctx, "nobody")
	require.NoError(t, err)
	require.NotNil(t, list)
	require.Empty(t, list)
}

// TestPutFlowConcurrent: concurrent saves of one flow each get their own
// version, 1 to n.
func TestPutFlowConcurrent(t *testing.T) {
	b := setup(t)
	const n = 8
	versions := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			f, err := b.store.PutFlow(b.ctx, controller.FlowRecord{ID: "race",
				Body: json.RawMessage(`{"i": 1}`)})
			if err != nil {
				versions[i] = -1
				t.Errorf("PutFlow: %v", err)
				return
			}
			versions[i] = f.Version
		})
	}
	wg.Wait()
	seen := map[int]bool{}
	for _, v := range versions {
		require.False(t, seen[v], "version %d given twice: %v", v, versions)
		require.True(t, v >= 1 && v <= n, "version %d: %v", v, versions)
		seen[v] = true
	}
	latest, err := b.store.GetFlow(b.ctx, controller.DefaultTenant, "race", 0)
	require.NoError(t, err)
	require.Equal(t, n, latest.Version)
}

func TestPutFlowRejects(t *testing.T) {
	b := setup(t)
	ok := controller.FlowRecord{ID: "ok", Body: json.RawMessage(`{}`)}
	for name, tc := range map[string]struct {
		edit  func(*controller.FlowRecord)
		field string
	}{
		"empty id":     {func(f *controller.FlowRecord) { f.ID = "" }, "id"},
		"upper id":     {func(f *controller.FlowRecord) { f.ID = "Welcome" }, "id"},
		"dash first":   {func(f *controller.FlowRecord) { f.ID = "-x" }, "id"},
		"dot":          {func(f *controller.FlowRecord) { f.ID = "a.v1" }, "id"},
		"long id":      {func(f *controller.FlowRecord) { f.ID = strings.Repeat("a", 64) }, "id"},
		"array body":   {func(f *controller.FlowRecord) { f.Body = json.RawMessage(`[]`) }, "flow"},
		"null body":    {func(f *controller.FlowRecord) { f.Body = json.RawMessage(`null`) }, "flow"},
		"bad body":     {func(f *controller.FlowRecord) { f.Body = json.RawMessage(`{`) }, "flow"},
		"no body":      {func(f *controller.FlowRecord) { f.Body = nil }, "flow"},
		"nul in name":  {func(f *controller.FlowRecord) { f.Name = "a\x00b" }, "name"},
		"tenant":       {func(f *controller.FlowRecord) { f.TenantID = "nobody" }, "tenant_id"},
		"tenant bytes": {func(f *controller.FlowRecord) { f.TenantID = "\xff" }, "tenant_id"},
	} {
		t.Run(name, func(t *testing.T) {
			f := ok
			tc.edit(&f)
			_, err := b.store.PutFlow(b.ctx, f)
			requireCode(t, controller.EINVALID, err)
			require.Equal(t, tc.field, controller.ErrorField(err))
		})
	}
	_, err := b.store.PutFlow(b.ctx, controller.FlowRecord{ID: strings.Repeat("a", 63), Body: json.RawMessage(`{}`)})
	require.NoError(t, err)
}

func TestFlowRun(t *testing.T) {
	b := setup(t)
	b.addTenant(t, "acme")
	call, _, err := b.store.CreateCall(b.ctx, controller.Call{To: "+15550001234"}, "")
	require.NoError(t, err)

	_, err = b.store.GetFlowRun(b.ctx, controller.DefaultTenant, call.ID)
	requireCode(t, controller.ENOTFOUND, err)

	started := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	run := controller.FlowRun{CallID: call.ID, FlowID: "welcome", FlowVersion: 2, Outcome: "running",
		Path: json.RawMessage(`[{"step": "greet"}]`), StartedAt: started}
	require.NoError(t, b.store.SaveFlowRun(b.ctx, run))
	got, err := b.store.GetFlowRun(b.ctx, controller.DefaultTenant, call.ID)
	require.NoError(t, err)
	require.JSONEq(t, string(run.Path), string(got.Path))
	require.True(t, got.StartedAt.Equal(started))
	require.Nil(t, got.EndedAt)
	require.Equal(t, controller.DefaultTenant, got.TenantID)
	require.Equal(t, "running", got.Outcome)

	// Replaced as the run progresses.
	ended := started.Add(30 * time.Second)
	run.Outcome, run.EndedAt = "consented", &ended
	run.Path = json.RawMessage(`[{"step": "greet"}, {"step": "ask", "digit": "1"}]`)
	require.NoError(t, b.store.SaveFlowRun(b.ctx, run))
	got, err = b.store.GetFlowRun(b.ctx, controller.DefaultTenant, call.ID)
	require.NoError(t, err)
	require.Equal(t, "consented", got.Outcome)
	require.JSONEq(t, string(run.Path), string(got.Path))
	require.True(t, got.EndedAt.Equal(ended))
	require.Equal(t, call.ID, got.CallID)
	require.Equal(t, "welcome", got.FlowID)
	require.Equal(t, 2, got.FlowVersion)

	// A zero start is now, an empty path an empty list.
	call2, _, err := b.store.CreateCall(b.ctx, controller.Call{To: "+15550001235"}, "")
	require.NoError(t, err)
	require.NoError(t, b.store.SaveFlowRun(b.ctx, controller.FlowRun{CallID: call2.ID, FlowID: "welcome",
		FlowVersion: 1, Outcome: "running"}))
	got, err = b.store.GetFlowRun(b.ctx, controller.DefaultTenant, call2.ID)
	require.NoError(t, err)
	require.JSONEq(t, `[]`, string(got.Path))
	require.WithinDuration(t, time.Now(), got.StartedAt, time.Minute)

	// Tenant isolation, and calls that do not exist.
	_, err = b.store.GetFlowRun(b.ctx, "acme", call.ID)
	requireCode(t, controller.ENOTFOUND, err)
	_, err = b.store.GetFlowRun(b.ctx, controller.DefaultTenant, "x")
	requireCode(t, controller.ENOTFOUND, err)
	run.TenantID = "acme"
	requireCode(t, controller.ENOTFOUND, b.store.SaveFlowRun(b.ctx, run))
	run.TenantID = ""
	run.CallID = controller.CallID(uuid.NewString())
	requireCode(t, controller.ENOTFOUND, b.store.SaveFlowRun(b.ctx, run))
}

func TestSaveFlowRunRejects(t *testing.T) {
	b := setup(t)
	ok := controller.FlowRun{CallID: controller.CallID(uuid.NewString()), FlowID: "f", FlowVersion: 1, Outcome: "running"}
	for name, tc := range map[string]struct {
		edit  func(*controller.FlowRun)
		field string
	}{
		"call id": {func(r *controller.FlowRun) { r.CallID = "x" }, "call_id"},
		"flow id": {func(r *controller.FlowRun) { r.FlowID = "F" }, "flow_id"},
		"version": {func(r *controller.FlowRun) { r.FlowVersion = 0 }, "flow_version"},
		"outcome": {func(r *controller.FlowRun) { r.Outcome = "" }, "outcome"},
		"nul":     {func(r *controller.FlowRun) { r.Outcome = "a\x00" }, "outcome"},
		"path":    {func(r *controller.FlowRun) { r.Path = json.RawMessage(`[`) }, "path"},
	} {
		t.Run(name, func(t *testing.T) {
			r := ok
			tc.edit(&r)
			err := b.store.SaveFlowRun(b.ctx, r)
			requireCode(t, controller.EINVALID, err)
			require.Equal(t, tc.field, controller.ErrorField(err))
		})
	}
}
