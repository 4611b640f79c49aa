package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

func TestConsentLedger(t *testing.T) {
	b := setup(t)
	b.addTenant(t, "acme")
	const number = "+15550010000"
	given := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	expires := given.Add(365 * 24 * time.Hour)
	callID := controller.CallID(uuid.NewString())
	c := controller.Consent{TenantID: "acme", Number: number, Purpose: controller.PurposeMarketing,
		Source: "ivr", ProofRef: "rec-1", PromptID: "consent", PromptVersion: "3", Digit: "1",
		CallID: callID, GivenAt: given, ExpiresAt: &expires}
	id, err := b.store.CreateConsent(b.ctx, c)
	require.NoError(t, err)
	require.NotEmpty(t, id)

	got, err := b.store.GetConsent(b.ctx, "acme", id)
	require.NoError(t, err)
	c.ID = id
	require.True(t, got.GivenAt.Equal(given))
	require.True(t, got.ExpiresAt.Equal(expires))
	got.GivenAt, got.ExpiresAt = c.GivenAt, c.ExpiresAt
	require.Equal(t, c, got)

	_, err = b.store.GetConsent(b.ctx, controller.DefaultTenant, id)
	requireCode(t, controller.ENOTFOUND, err)
	_, err = b.store.GetConsent(b.ctx, "acme", "nope")
	requireCode(t, controller.ENOTFOUND, err)

	// A newer consent for another purpose, and one of another tenant.
	service, err := b.store.CreateConsent(b.ctx, controller.Consent{TenantID: "acme", Number: number,
		Purpose: controller.PurposeService, Source: "api_import", ProofRef: "crm:42"})
	require.NoError(t, err)
	_, err = b.store.CreateConsent(b.ctx, controller.Consent{Number: number,
		Purpose: controller.PurposeMarketing, Source: "agent"})
	require.NoError(t, err)
	list, err := b.store.ListConsents(b.ctx, "acme", number)
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, service, list[0].ID, "newest first")
	require.Equal(t, id, list[1].ID)

	revoked, err := b.store.RevokeConsent(b.ctx, "acme", id, time.Time{})
	require.NoError(t, err)
	require.NotNil(t, revoked.RevokedAt)
	_, err = b.store.RevokeConsent(b.ctx, "acme", id, time.Time{})
	requireCode(t, controller.ECONFLICT, err)
	_, err = b.store.RevokeConsent(b.ctx, controller.DefaultTenant, id, time.Time{})
	requireCode(t, controller.ENOTFOUND, err)
	_, err = b.store.RevokeConsent(b.ctx, "acme", uuid.NewString(), time.Time{})
	requireCode(t, controller.ENOTFOUND, err)

	none, err := b.store.ListConsents(b.ctx, "acme", "+15550010001")
	require.NoError(t, err)
	require.Empty(t, none)
}

func TestActiveConsentIsTheNewest(t *testing.T) {
	b := setup(t)
	const number = "+15550011000"
	active := func(purpose controller.Purpose) *controller.Consent {
		t.Helper()
		var c *controller.Consent
		_, err := b.store.Gate(b.ctx, "", number, func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
			var err error
			c, err = l.ActiveConsent(ctx, controller.DefaultTenant, number, purpose)
			return controller.Decision{}, err
		})
		require.NoError(t, err)
		return c
	}
	require.Nil(t, active(controller.PurposeMarketing))
	now := time.Now()
	old, err := b.store.CreateConsent(b.ctx, controller.Consent{Number: number, Purpose: controller.PurposeMarketing,
		Source: "ivr", GivenAt: now.Add(-48 * time.Hour)})
	require.NoError(t, err)
	expired := now.Add(-time.Second)
	newer, err := b.store.CreateConsent(b.ctx, controller.Consent{Number: number, Purpose: controller.PurposeMarketing,
		Source: "sms_link", GivenAt: now.Add(-24 * time.Hour), ExpiresAt: &expired})
	require.NoError(t, err)
	// Returned even though expired: the rule judges validity.
	c := active(controller.PurposeMarketing)
	require.Equal(t, newer, c.ID)
	require.True(t, c.ExpiresAt.Equal(expired.Truncate(time.Microsecond)))
	require.NotEqual(t, old, c.ID)
	require.Nil(t, active(controller.PurposeService))
}

func TestCreateConsentRejects(t *testing.T) {
	b := setup(t)
	now := time.Now()
	before := now.Add(-time.Second)
	ok := controller.Consent{Number: "+15550012000", Purpose: controller.PurposeMarketing, Source: "ivr", GivenAt: now}
	for name, tc := range map[string]struct {
		edit  func(*controller.Consent)
		field string
	}{
		"number":    {func(c *controller.Consent) { c.Number = "5550012000" }, "number"},
		"purpose":   {func(c *controller.Consent) { c.Purpose = "fun" }, "purpose"},
		"source":    {func(c *controller.Consent) { c.Source = "telepathy" }, "source"},
		"expiry":    {func(c *controller.Consent) { c.ExpiresAt = &before }, "expires_at"},
		"id":        {func(c *controller.Consent) { c.ID = "x" }, "id"},
		"call id":   {func(c *controller.Consent) { c.CallID = "x" }, "call_id"},
		"proof ref": {func(c *controller.Consent) { c.ProofRef = "a\x00b" }, "proof_ref"},
		"tenant":    {func(c *controller.Consent) { c.TenantID = "nobody" }, "tenant_id"},
	} {
		t.Run(name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			_, err := b.store.CreateConsent(b.ctx, c)
			requireCode(t, controller.EINVALID, err)
			require.Equal(t, tc.field, controller.ErrorField(err))
		})
	}
	_, err := b.store.ListConsents(b.ctx, controller.DefaultTenant, "x")
	requireCode(t, controller.EINVALID, err)
}
