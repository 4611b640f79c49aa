package postgres_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/pii"
	"github.com/callgate/callgate/controller/postgres"
	"github.com/callgate/callgate/controller/postgres/pgtest"
	"github.com/callgate/callgate/controller/recording"
)

// storedNumbers returns every number column of consents and refusals as
// stored: clear values and sealed bytes.
func storedNumbers(t *testing.T, b *bundle) (clear []string, sealed [][]byte) {
	t.Helper()
	for _, table := range []string{"consents", "refusals"} {
		rows, err := b.store.DB().Pool().Query(b.ctx, `SELECT number, number_index, number_sealed FROM `+table)
		require.NoError(t, err)
		for rows.Next() {
			var (
				n        *string
				idx, sld []byte
			)
			require.NoError(t, rows.Scan(&n, &idx, &sld))
			if n != nil {
				clear = append(clear, *n)
			}
			sealed = append(sealed, idx, sld)
		}
		require.NoError(t, rows.Err())
	}
	return clear, sealed
}

// lookupSees reports whether the gate's lookup sees a refusal of number and
// a marketing consent of tenant for it.
func lookupSees(t *testing.T, b *bundle, tenant, number string) (refused, consented bool) {
	t.Helper()
	_, err := b.store.Gate(b.ctx, tenant, number, func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
		r, err := l.ActiveRefusal(ctx, number, time.Now())
		if err != nil {
			return controller.Decision{}, err
		}
		c, err := l.ActiveConsent(ctx, tenant, number, controller.PurposeMarketing)
		if err != nil {
			return controller.Decision{}, err
		}
		refused, consented = r != nil, c != nil
		return controller.Decision{Allow: true}, nil
	})
	require.NoError(t, err)
	return refused, consented
}

func TestNumbersAreSealedAtRest(t *testing.T) {
	b := setup(t)
	const number = "+15550071234"
	_, err := b.store.CreateConsent(b.ctx, controller.Consent{Number: number,
		Purpose: controller.PurposeMarketing, Source: "ivr"})
	require.NoError(t, err)
	_, _, err = b.store.LockNumber(b.ctx, "", controller.Refusal{Number: number, Source: "api"})
	require.NoError(t, err)

	clear, stored := storedNumbers(t, b)
	require.Empty(t, clear, "no number in the clear")
	for _, v := range stored {
		require.False(t, bytes.Contains(v, []byte("5550071234")), "no digits in what is stored")
	}
	refused, consented := lookupSees(t, b, controller.DefaultTenant, number)
	require.True(t, refused)
	require.True(t, consented)
	list, err := b.store.ListRefusals(b.ctx, number)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, number, list[0].Number, "opened for whoever may read it")

	// A store without keys fails rather than write or read in the clear.
	bare := postgres.NewStore(b.store.DB())
	_, err = bare.CreateConsent(b.ctx, controller.Consent{Number: number, Purpose: controller.PurposeMarketing, Source: "ivr"})
	requireCode(t, controller.EINTERNAL, err)
	_, err = bare.ListRefusals(b.ctx, number)
	requireCode(t, controller.EINTERNAL, err)
	_, err = bare.Gate(b.ctx, "", number, func(context.Context, controller.Lookup) (controller.Decision, error) {
		return controller.Decision{Allow: true}, nil
	})
	requireCode(t, controller.EINTERNAL, err)
}

func TestClearNumbersFromBeforeSealingAreFoundThenSealed(t *testing.T) {
	b := setup(t)
	const refusedNumber, consentedNumber = "+15550071111", "+15550072222"
	// Rows as an older version wrote them.
	_, err := b.store.DB().Pool().Exec(b.ctx, `
		INSERT INTO refusals (id, number, source, at) VALUES ($1, $2, 'api', now());
		`, uuid.NewString(), refusedNumber)
	require.NoError(t, err)
	_, err = b.store.DB().Pool().Exec(b.ctx, `
		INSERT INTO consents (id, tenant_id, number, purpose, source, given_at) VALUES ($1, 'default', $2, 'marketing', 'ivr', now())`,
		uuid.NewString(), consentedNumber)
	require.NoError(t, err)

	refused, _ := lookupSees(t, b, controller.DefaultTenant, refusedNumber)
	require.True(t, refused, "a clear refusal is never missed")
	_, consented := lookupSees(t, b, controller.DefaultTenant, consentedNumber)
	require.True(t, consented)

	n, err := b.store.SealClearNumbers(b.ctx)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	clear, _ := storedNumbers(t, b)
	require.Empty(t, clear)
	refused, _ = lookupSees(t, b, controller.DefaultTenant, refusedNumber)
	require.True(t, refused, "found by its index once sealed")
	_, consented = lookupSees(t, b, controller.DefaultTenant, consentedNumber)
	require.True(t, consented)
	n, err = b.store.SealClearNumbers(b.ctx)
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestIndexKeyMustMatchTheDatabase(t *testing.T) {
	b := setup(t)
	mine, err := pgtest.PersonalData().Fingerprint()
	require.NoError(t, err)
	require.NoError(t, b.store.CheckIndexKey(b.ctx, mine))
	require.NoError(t, b.store.CheckIndexKey(b.ctx, mine), "the same key again")
	other, err := pii.New(recording.NewMemoryKeyring())
	require.NoError(t, err)
	theirs, err := other.Fingerprint()
	require.NoError(t, err)
	err = b.store.CheckIndexKey(b.ctx, theirs)
	requireCode(t, controller.EINVALID, err)
	require.ErrorContains(t, err, "same keyring file")
}

func TestRotationResealsNumbers(t *testing.T) {
	b := setup(t)
	kr := recording.NewMemoryKeyring()
	keys, err := pii.New(kr)
	require.NoError(t, err)
	s := postgres.NewStore(b.store.DB())
	s.SetPersonalData(keys)
	const number = "+15550073333"
	for range 3 {
		_, err := s.CreateConsent(b.ctx, controller.Consent{Number: number, Purpose: controller.PurposeService, Source: "ivr"})
		require.NoError(t, err)
	}
	_, _, err = s.LockNumber(b.ctx, "", controller.Refusal{Number: number, Source: "api"})
	require.NoError(t, err)
	old := kr.CurrentID()

	newID := kr.Rotate()
	n, err := s.ResealNumbers(b.ctx, pii.SealedPrefix(newID))
	require.NoError(t, err)
	require.Equal(t, 4, n)
	n, err = s.ResealNumbers(b.ctx, pii.SealedPrefix(newID))
	require.NoError(t, err)
	require.Zero(t, n, "nothing left under the old key")
	require.NoError(t, kr.Retire(old))

	list, err := s.ListConsents(b.ctx, controller.DefaultTenant, number)
	require.NoError(t, err)
	require.Len(t, list, 3)
	for _, c := range list {
		require.Equal(t, number, c.Number, "readable with the new key alone")
	}
	refusals, err := s.ListRefusals(b.ctx, number)
	require.NoError(t, err)
	require.Len(t, refusals, 1)
}
