package postgres_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

func TestPromptVersions(t *testing.T) {
	b := setup(t)
	b.addTenant(t, "acme")
	p := controller.Prompt{Name: "consent", Text: "Press 1 to agree to be called.", Language: "en-US",
		DurationMS: 3200, Size: 102444, SHA256: strings.Repeat("ab", 32), File: "consent.v1.wav"}
	v1, err := b.store.PutPrompt(b.ctx, p)
	require.NoError(t, err)
	require.Equal(t, "consent.v1", v1.ID)
	require.Equal(t, 1, v1.Version)
	require.Equal(t, controller.DefaultTenant, v1.TenantID)
	require.False(t, v1.CreatedAt.IsZero())
	want := p
	want.ID, want.TenantID, want.Version, want.CreatedAt = v1.ID, v1.TenantID, v1.Version, v1.CreatedAt
	require.Equal(t, want, v1)

	p.Text, p.File = "Press 1 to agree.", "consent.v2.wav"
	v2, err := b.store.PutPrompt(b.ctx, p)
	require.NoError(t, err)
	require.Equal(t, "consent.v2", v2.ID)
	require.Equal(t, 2, v2.Version)
	acme, err := b.store.PutPrompt(b.ctx, controller.Prompt{TenantID: "acme", Name: "consent", Text: "Hi"})
	require.NoError(t, err)
	require.Equal(t, "consent.v1", acme.ID)
	bye, err := b.store.PutPrompt(b.ctx, controller.Prompt{Name: "bye", Text: "Goodbye"})
	require.NoError(t, err)

	latest, err := b.store.GetPrompt(b.ctx, controller.DefaultTenant, "consent", 0)
	require.NoError(t, err)
	require.Equal(t, v2, latest)
	first, err := b.store.GetPrompt(b.ctx, controller.DefaultTenant, "consent", 1)
	require.NoError(t, err)
	require.Equal(t, v1, first)
	_, err = b.store.GetPrompt(b.ctx, controller.DefaultTenant, "consent", 3)
	requireCode(t, controller.ENOTFOUND, err)
	_, err = b.store.GetPrompt(b.ctx, controller.DefaultTenant, "nope", 0)
	requireCode(t, controller.ENOTFOUND, err)
	_, err = b.store.GetPrompt(b.ctx, "acme", "bye", 0)
	requireCode(t, controller.ENOTFOUND, err)

	list, err := b.store.ListPrompts(b.ctx, controller.DefaultTenant)
	require.NoError(t, err)
	require.Equal(t, []controller.Prompt{bye, v2}, list)
	list, err = b.store.ListPrompts(b.ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, []controller.Prompt{acme}, list)
	list, err = b.store.ListPrompts(b.ctx, "nobody")
	require.NoError(t, err)
	require.NotNil(t, list)
	require.Empty(t, list)
}

// TestPutPromptConcurrent: concurrent uploads under one name each get their
// own version.
func TestPutPromptConcurrent(t *testing.T) {
	b := setup(t)
	const n = 6
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			p, err := b.store.PutPrompt(b.ctx, controller.Prompt{Name: "race"})
			if err != nil {
				t.Errorf("PutPrompt: %v", err)
				return
			}
			ids[i] = p.ID
		})
	}
	wg.Wait()
	require.ElementsMatch(t, []string{"race.v1", "race.v2", "race.v3", "race.v4", "race.v5", "race.v6"}, ids)
}

func TestPutPromptRejects(t *testing.T) {
	b := setup(t)
	ok := controller.Prompt{Name: "ok", Text: "Hello"}
	for name, tc := range map[string]struct {
		edit  func(*controller.Prompt)
		field string
	}{
		"empty name": {func(p *controller.Prompt) { p.Name = "" }, "name"},
		"dot":        {func(p *controller.Prompt) { p.Name = "ok.v1" }, "name"},
		"slash":      {func(p *controller.Prompt) { p.Name = "../etc" }, "name"},
		"text":       {func(p *controller.Prompt) { p.Text = "\xff" }, "text"},
		"file":       {func(p *controller.Prompt) { p.File = "a\x00" }, "file"},
		"duration":   {func(p *controller.Prompt) { p.DurationMS = -1 }, "duration_ms"},
		"size":       {func(p *controller.Prompt) { p.Size = -1 }, "size"},
		"tenant":     {func(p *controller.Prompt) { p.TenantID = "nobody" }, "tenant_id"},
	} {
		t.Run(name, func(t *testing.T) {
			p := ok
			tc.edit(&p)
			_, err := b.store.PutPrompt(b.ctx, p)
			requireCode(t, controller.EINVALID, err)
			require.Equal(t, tc.field, controller.ErrorField(err))
		})
	}
}
