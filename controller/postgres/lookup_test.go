package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

// TestLookupIsBound checks that a rule cannot read outside the decision:
// another tenant's data, or lock-protected data of another number.
func TestLookupIsBound(t *testing.T) {
	b := setup(t)
	const number = "+15550004000"
	_, err := b.store.Gate(b.ctx, "acme", number, func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
		_, err := l.ActiveConsent(ctx, "other", number, controller.PurposeMarketing)
		requireCode(t, controller.EINVALID, err)
		_, err = l.DNCHits(ctx, "other", number)
		requireCode(t, controller.EINVALID, err)
		_, err = l.DNCLists(ctx, "other")
		requireCode(t, controller.EINVALID, err)
		_, err = l.CallerIDOwned(ctx, "other", number)
		requireCode(t, controller.EINVALID, err)
		_, err = l.CountAttempts(ctx, "+15550004001", time.Time{})
		requireCode(t, controller.EINVALID, err)
		_, err = l.ActiveRefusal(ctx, "+15550004001", time.Now())
		requireCode(t, controller.EINVALID, err)
		_, err = l.DNCHits(ctx, "acme", "not e164")
		requireCode(t, controller.EINVALID, err)
		// The empty tenant and the decision's own are both fine.
		_, err = l.DNCLists(ctx, "")
		require.NoError(t, err)
		_, err = l.DNCLists(ctx, "acme")
		require.NoError(t, err)
		return controller.Decision{}, nil
	})
	require.NoError(t, err)
}

// TestLookupAnswers checks every Lookup method, both when it answers from
// what the lock read in advance (the decision's own number, tenant and
// caller ID, recent attempts) and when it queries (anything else).
func TestLookupAnswers(t *testing.T) {
	b := setup(t)
	b.addTenant(t, "acme")
	const (
		n, m   = "+15550015000", "+15550015001"
		from   = "+15559990000"
		notOur = "+15559990001"
	)
	now := time.Now()
	mkConsent := func(number string, p controller.Purpose, given time.Time) string {
		id, err := b.store.CreateConsent(b.ctx, controller.Consent{Number: number, Purpose: p, Source: "ivr", GivenAt: given})
		require.NoError(t, err)
		return id
	}
	mkConsent(n, controller.PurposeMarketing, now.Add(-48*time.Hour))
	newest := mkConsent(n, controller.PurposeMarketing, now.Add(-time.Hour))
	_, err := b.store.RevokeConsent(b.ctx, controller.DefaultTenant, newest, now)
	require.NoError(t, err)
	service := mkConsent(n, controller.PurposeService, now.Add(-2*time.Hour))
	otherNumber := mkConsent(m, controller.PurposeMarketing, now.Add(-time.Hour))

	past := now.Add(-time.Minute)
	_, _, err = b.store.LockNumber(b.ctx, "", controller.Refusal{Number: n, Source: "ivr", At: now.Add(-time.Hour), Until: &past})
	require.NoError(t, err)
	lifted, _, err := b.store.LockNumber(b.ctx, "", controller.Refusal{Number: n, Source: "agent"})
	require.NoError(t, err)
	_, err = b.store.LiftRefusal(b.ctx, controller.DefaultTenant, lifted, time.Time{})
	require.NoError(t, err)
	refused, _, err := b.store.LockNumber(b.ctx, "", controller.Refusal{Number: m, Source: "sms"})
	require.NoError(t, err)

	for _, l := range []controller.DNCList{
		{ID: "national", Name: "national", Kind: "national"},
		{ID: "mine", TenantID: controller.DefaultTenant, Name: "mine", Kind: "internal"},
		{ID: "theirs", TenantID: "acme", Name: "theirs", Kind: "internal"},
	} {
		_, err := b.store.CreateDNCList(b.ctx, l)
		require.NoError(t, err)
		_, err = b.store.AddDNCNumber(b.ctx, l.ID, n)
		require.NoError(t, err)
	}
	_, err = b.store.AddDNCNumber(b.ctx, "national", m)
	require.NoError(t, err)
	require.NoError(t, b.store.AddOwnedNumber(b.ctx, controller.DefaultTenant, from))

	for range 3 {
		c := newCall(0)
		c.To = n
		_, _, _, err := b.store.CreateCallGated(b.ctx, c, "", allow)
		require.NoError(t, err)
	}
	// One more, allowed long ago: beyond what the lock reads in advance.
	old, _, _, err := b.store.CreateCallGated(b.ctx, controller.Call{To: n}, "", allow)
	require.NoError(t, err)
	_, err = b.store.DB().Pool().Exec(b.ctx, `UPDATE attempts SET allowed_at = now() - interval '30 days' WHERE call_id = $1`, old.ID)
	require.NoError(t, err)

	var kept controller.Lookup
	c := newCall(1)
	c.To, c.From = n, from
	_, _, _, err = b.store.CreateCallGated(b.ctx, c, "", func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
		kept = l
		consent, err := l.ActiveConsent(ctx, "", n, controller.PurposeMarketing)
		require.NoError(t, err)
		require.Equal(t, newest, consent.ID, "the newest, revoked or not")
		require.NotNil(t, consent.RevokedAt)
		consent, err = l.ActiveConsent(ctx, controller.DefaultTenant, n, controller.PurposeService)
		require.NoError(t, err)
		require.Equal(t, service, consent.ID)
		consent, err = l.ActiveConsent(ctx, "", n, controller.PurposeTransactional)
		require.NoError(t, err)
		require.Nil(t, consent)
		consent, err = l.ActiveConsent(ctx, "", m, controller.PurposeMarketing) // queried
		require.NoError(t, err)
		require.Equal(t, otherNumber, consent.ID)
		consent, err = l.ActiveConsent(ctx, "", m, controller.PurposeService)
		require.NoError(t, err)
		require.Nil(t, consent)

		r, err := l.ActiveRefusal(ctx, n, now)
		require.NoError(t, err)
		require.Nil(t, r, "expired and lifted refusals do not count")
		r, err = l.ActiveRefusal(ctx, n, now.Add(-2*time.Minute))
		require.NoError(t, err)
		require.NotNil(t, r, "the expired one was in force two minutes ago")

		hits, err := l.DNCHits(ctx, "", n)
		require.NoError(t, err)
		require.Equal(t, []controller.DNCHit{{ListID: "mine", ListKind: "internal"}, {ListID: "national", ListKind: "national"}}, hits)
		hits, err = l.DNCHits(ctx, "", m) // queried
		require.NoError(t, err)
		require.Equal(t, []controller.DNCHit{{ListID: "national", ListKind: "national"}}, hits)
		hits, err = l.DNCHits(ctx, "", "+15550015002")
		require.NoError(t, err)
		require.Empty(t, hits)

		lists, err := l.DNCLists(ctx, "")
		require.NoError(t, err)
		require.Len(t, lists, 2)
		require.Equal(t, "mine", lists[0].ID)
		require.EqualValues(t, 1, lists[0].Entries)
		require.Equal(t, "national", lists[1].ID)
		require.EqualValues(t, 2, lists[1].Entries)

		count, err := l.CountAttempts(ctx, n, now.Add(-time.Hour))
		require.NoError(t, err)
		require.Equal(t, 3, count)
		count, err = l.CountAttempts(ctx, n, now.Add(-60*24*time.Hour)) // queried
		require.NoError(t, err)
		require.Equal(t, 4, count)

		owned, err := l.CallerIDOwned(ctx, "", from)
		require.NoError(t, err)
		require.True(t, owned)
		owned, err = l.CallerIDOwned(ctx, "", notOur) // queried
		require.NoError(t, err)
		require.False(t, owned)
		return controller.Decision{Allow: true}, nil
	})
	require.NoError(t, err)

	// The lookup ends with its decision.
	_, err = kept.ActiveRefusal(b.ctx, n, now)
	requireCode(t, controller.EINTERNAL, err)
	_, err = kept.DNCLists(b.ctx, "")
	requireCode(t, controller.EINTERNAL, err)

	_, err = b.store.Gate(b.ctx, "", m, func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
		r, err := l.ActiveRefusal(ctx, m, now.Add(100*365*24*time.Hour))
		require.NoError(t, err)
		require.Equal(t, refused, r.ID, "forever")
		owned, err := l.CallerIDOwned(ctx, "", from) // queried: a dry run names no caller ID
		require.NoError(t, err)
		require.True(t, owned)
		return controller.Decision{}, nil
	})
	require.NoError(t, err)
}

// TestCountAttemptsBeyondPrefetch counts a number with more recent attempts
// than the lock reads in advance.
func TestCountAttemptsBeyondPrefetch(t *testing.T) {
	b := setup(t)
	const number = "+15550016000"
	_, err := b.store.DB().Pool().Exec(b.ctx, `
		WITH c AS (
			INSERT INTO calls (id, tenant_id, to_number, state)
			SELECT gen_random_uuid(), 'default', $1, 'completed' FROM generate_series(1, 1500)
			RETURNING id
		)
		INSERT INTO attempts (tenant_id, call_id, status, to_number, allowed_at)
		SELECT 'default', id, 'done', $1, now() FROM c`, number)
	require.NoError(t, err)
	require.Equal(t, 1500, gateCount(t, b, number, time.Now().Add(-time.Hour)))
}
