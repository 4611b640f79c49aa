package postgres_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

func TestPolicyVersions(t *testing.T) {
	b := setup(t)
	b.addTenant(t, "acme")
	v, err := b.store.PutPolicy(b.ctx, "acme", "acme-us", "US", json.RawMessage(`{"daily_cap": 15}`))
	require.NoError(t, err)
	require.Equal(t, 1, v)
	v, err = b.store.PutPolicy(b.ctx, "acme", "acme-us", "US strict", json.RawMessage(`{"daily_cap": 3}`))
	require.NoError(t, err)
	require.Equal(t, 2, v)

	latest, err := b.store.GetPolicy(b.ctx, "acme", "acme-us", 0)
	require.NoError(t, err)
	require.Equal(t, 2, latest.Version)
	require.Equal(t, "US strict", latest.Name)
	require.JSONEq(t, `{"daily_cap": 3}`, string(latest.Body))
	first, err := b.store.GetPolicy(b.ctx, "acme", "acme-us", 1)
	require.NoError(t, err)
	require.JSONEq(t, `{"daily_cap": 15}`, string(first.Body))
	_, err = b.store.GetPolicy(b.ctx, "acme", "acme-us", 3)
	requireCode(t, controller.ENOTFOUND, err)
	_, err = b.store.GetPolicy(b.ctx, controller.DefaultTenant, "acme-us", 0)
	requireCode(t, controller.ENOTFOUND, err) // another tenant's policy is invisible

	// A preset (no tenant) is visible to everyone but belongs to no tenant.
	_, err = b.store.PutPolicy(b.ctx, "", "us", "US preset", json.RawMessage(`{"hours": "08:00-21:00"}`))
	require.NoError(t, err)
	_, err = b.store.PutPolicy(b.ctx, "acme", "us", "mine", json.RawMessage(`{}`))
	requireCode(t, controller.ECONFLICT, err)
	_, err = b.store.PutPolicy(b.ctx, "", "acme-us", "steal", json.RawMessage(`{}`))
	requireCode(t, controller.ECONFLICT, err)
	preset, err := b.store.GetPolicy(b.ctx, "acme", "us", 0)
	require.NoError(t, err)
	require.Empty(t, preset.TenantID)

	list, err := b.store.ListPolicies(b.ctx, "acme")
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, "acme-us", list[0].ID)
	require.Equal(t, 2, list[0].Version)
	require.Equal(t, "us", list[1].ID)
	list, err = b.store.ListPolicies(b.ctx, controller.DefaultTenant)
	require.NoError(t, err)
	require.Len(t, list, 1)
}

func TestPutPolicyConcurrentVersions(t *testing.T) {
	b := setup(t)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		versions = map[int]bool{}
	)
	for range 8 {
		wg.Go(func() {
			v, err := b.store.PutPolicy(b.ctx, controller.DefaultTenant, "p", "", json.RawMessage(`{}`))
			if assertNoError(t, err) {
				mu.Lock()
				versions[v] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, versions, 8)
	for v := 1; v <= 8; v++ {
		require.True(t, versions[v], "version %d", v)
	}
}

func TestPutPolicyRejects(t *testing.T) {
	b := setup(t)
	for name, tc := range map[string]struct {
		tenant, id, name, body, field string
	}{
		"empty id":  {"default", "", "", `{}`, "id"},
		"quote id":  {"default", `a"b`, "", `{}`, "id"},
		"not json":  {"default", "p", "", `{`, "body"},
		"not obj":   {"default", "p", "", `[1]`, "body"},
		"null body": {"default", "p", "", `null`, "body"},
		"tenant":    {"nobody", "p", "", `{}`, "tenant_id"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := b.store.PutPolicy(b.ctx, tc.tenant, tc.id, tc.name, json.RawMessage(tc.body))
			requireCode(t, controller.EINVALID, err)
			require.Equal(t, tc.field, controller.ErrorField(err))
		})
	}
}

func TestPolicyAssignment(t *testing.T) {
	b := setup(t)
	b.addTenant(t, "acme")
	_, err := b.store.PolicyFor(b.ctx, "acme", "spring")
	requireCode(t, controller.ENOTFOUND, err)

	_, err = b.store.PutPolicy(b.ctx, "", "us", "US", json.RawMessage(`{"v": 1}`))
	require.NoError(t, err)
	_, err = b.store.PutPolicy(b.ctx, "acme", "acme-strict", "strict", json.RawMessage(`{"v": 2}`))
	require.NoError(t, err)

	require.NoError(t, b.store.AssignPolicy(b.ctx, "acme", "", "us"))
	p, err := b.store.PolicyFor(b.ctx, "acme", "spring")
	require.NoError(t, err)
	require.Equal(t, "us", p.ID, "the tenant default applies")

	require.NoError(t, b.store.AssignPolicy(b.ctx, "acme", "spring", "acme-strict"))
	p, err = b.store.PolicyFor(b.ctx, "acme", "spring")
	require.NoError(t, err)
	require.Equal(t, "acme-strict", p.ID, "the campaign's own wins")
	require.Equal(t, 1, p.Version)
	p, err = b.store.PolicyFor(b.ctx, "acme", "autumn")
	require.NoError(t, err)
	require.Equal(t, "us", p.ID)

	// A new version applies at once; reassigning replaces.
	v, err := b.store.PutPolicy(b.ctx, "acme", "acme-strict", "stricter", json.RawMessage(`{"v": 3}`))
	require.NoError(t, err)
	p, err = b.store.PolicyFor(b.ctx, "acme", "spring")
	require.NoError(t, err)
	require.Equal(t, v, p.Version)
	require.JSONEq(t, `{"v": 3}`, string(p.Body))
	require.NoError(t, b.store.AssignPolicy(b.ctx, "acme", "spring", "us"))
	p, err = b.store.PolicyFor(b.ctx, "acme", "spring")
	require.NoError(t, err)
	require.Equal(t, "us", p.ID)

	// Only visible policies can be assigned.
	err = b.store.AssignPolicy(b.ctx, controller.DefaultTenant, "", "acme-strict")
	requireCode(t, controller.ENOTFOUND, err)
	err = b.store.AssignPolicy(b.ctx, "acme", "", "missing")
	requireCode(t, controller.ENOTFOUND, err)
	_, err = b.store.PolicyFor(b.ctx, controller.DefaultTenant, "")
	requireCode(t, controller.ENOTFOUND, err)
}

func TestOwnedNumbers(t *testing.T) {
	b := setup(t)
	b.addTenant(t, "acme")
	require.NoError(t, b.store.AddOwnedNumber(b.ctx, "acme", "+4001234567"))
	require.NoError(t, b.store.AddOwnedNumber(b.ctx, "acme", "+4001234567")) // again: no change
	require.NoError(t, b.store.AddOwnedNumber(b.ctx, "acme", "+9512345"))
	require.NoError(t, b.store.AddOwnedNumber(b.ctx, controller.DefaultTenant, "+15559990000"))
	err := b.store.AddOwnedNumber(b.ctx, "acme", "4001234567")
	requireCode(t, controller.EINVALID, err)
	err = b.store.AddOwnedNumber(b.ctx, "nobody", "+4001234567")
	requireCode(t, controller.EINVALID, err)
	require.Equal(t, "tenant_id", controller.ErrorField(err))

	list, err := b.store.ListOwnedNumbers(b.ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, []string{"+4001234567", "+9512345"}, list)

	owned := func(tenant, number string) bool {
		t.Helper()
		var ok bool
		_, err := b.store.Gate(b.ctx, tenant, "+15550013000", func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
			var err error
			ok, err = l.CallerIDOwned(ctx, tenant, number)
			return controller.Decision{}, err
		})
		require.NoError(t, err)
		return ok
	}
	require.True(t, owned("acme", "+9512345"))
	require.False(t, owned(controller.DefaultTenant, "+9512345"))
	require.NoError(t, b.store.RemoveOwnedNumber(b.ctx, "acme", "+9512345"))
	require.False(t, owned("acme", "+9512345"))
	err = b.store.RemoveOwnedNumber(b.ctx, "acme", "+9512345")
	requireCode(t, controller.ENOTFOUND, err)
	list, err = b.store.ListOwnedNumbers(b.ctx, "nobody")
	require.NoError(t, err)
	require.Empty(t, list)
}
