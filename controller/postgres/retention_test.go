package postgres_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

// TestPurgeExpired: a dry run reports exactly what the purge then removes;
// call data past its retention goes, a call whose recording is still stored
// stays, consent evidence younger than two years survives, and consents and
// refusals still in force survive whatever their age.
func TestPurgeExpired(t *testing.T) {
	b := setup(t)
	pool := b.store.DB().Pool()
	now := time.Now()
	yearAgo := now.Add(-366 * 24 * time.Hour)
	ended := func(to string, at time.Time) controller.Call {
		t.Helper()
		c, _, err := b.store.CreateCall(b.ctx, controller.Call{To: to, From: "+12125550100", IdempotencyKey: "key-" + to}, "hash")
		require.NoError(t, err)
		_, err = b.store.CancelCall(b.ctx, controller.DefaultTenant, c.ID)
		require.NoError(t, err)
		_, err = pool.Exec(b.ctx, `UPDATE calls SET ended_at = $2 WHERE id = $1`, c.ID, at)
		require.NoError(t, err)
		return c
	}
	old := ended("+12125551001", yearAgo)
	recent := ended("+12125551002", now.Add(-24*time.Hour))
	withRecording := ended("+12125551003", yearAgo)
	_, err := b.store.CreateRecording(b.ctx, controller.Recording{TenantID: controller.DefaultTenant, CallID: withRecording.ID, SpoolPath: "/spool/x.wav"})
	require.NoError(t, err)

	consent := func(number string, given time.Time, revoked *time.Time) string {
		t.Helper()
		id, err := b.store.CreateConsent(b.ctx, controller.Consent{TenantID: controller.DefaultTenant, Number: number,
			Purpose: controller.PurposeMarketing, Source: "api_import", GivenAt: given})
		require.NoError(t, err)
		if revoked != nil {
			_, err = b.store.RevokeConsent(b.ctx, controller.DefaultTenant, id, *revoked)
			require.NoError(t, err)
		}
		return id
	}
	threeYears, oneYear := now.Add(-3*365*24*time.Hour), now.Add(-365*24*time.Hour)
	revokedLongAgo := now.Add(-800 * 24 * time.Hour)
	goneConsent := consent("+12125551004", threeYears, &revokedLongAgo) // ended 2.2 years ago
	youngConsent := consent("+12125551005", threeYears, &oneYear)       // ended 1 year ago: kept
	activeConsent := consent("+12125551006", threeYears, nil)           // in force: kept

	liftedRefusal, _, err := b.store.LockNumber(b.ctx, controller.DefaultTenant, controller.Refusal{Number: "+12125551007", Source: "api", At: threeYears})
	require.NoError(t, err)
	_, err = b.store.LiftRefusal(b.ctx, controller.DefaultTenant, liftedRefusal, revokedLongAgo)
	require.NoError(t, err)
	_, _, err = b.store.LockNumber(b.ctx, controller.DefaultTenant, controller.Refusal{Number: "+12125551008", Source: "api", At: threeYears})
	require.NoError(t, err) // forever: in force, kept

	evidenceBefore := now.Add(-730 * 24 * time.Hour)
	callsBefore := now.Add(-365 * 24 * time.Hour)
	dry, err := b.store.PurgeExpired(b.ctx, callsBefore, evidenceBefore, true)
	require.NoError(t, err)
	require.True(t, dry.DryRun)
	// Nothing was removed by the dry run.
	_, err = b.store.GetCall(b.ctx, controller.DefaultTenant, old.ID)
	require.NoError(t, err)

	real, err := b.store.PurgeExpired(b.ctx, callsBefore, evidenceBefore, false)
	require.NoError(t, err)
	dry.DryRun = false
	require.Equal(t, dry, real, "the dry run reports what the purge removes")
	require.Equal(t, int64(1), real.Calls, "%+v", real)
	require.Equal(t, int64(1), real.Attempts, "%+v", real)
	require.Equal(t, int64(1), real.IdempotencyKeys)
	require.Equal(t, int64(1), real.Consents)
	require.Equal(t, int64(1), real.Refusals, "only the refusal lifted more than two years ago")
	refusals, err := b.store.ListRefusals(b.ctx, "+12125551008")
	require.NoError(t, err)
	require.Len(t, refusals, 1)

	_, err = b.store.GetCall(b.ctx, controller.DefaultTenant, old.ID)
	require.Equal(t, controller.ENOTFOUND, controller.ErrorCode(err), "past retention: gone")
	for _, c := range []controller.Call{recent, withRecording} {
		_, err = b.store.GetCall(b.ctx, controller.DefaultTenant, c.ID)
		require.NoError(t, err, "kept")
	}
	_, err = b.store.GetConsent(b.ctx, controller.DefaultTenant, goneConsent)
	require.Equal(t, controller.ENOTFOUND, controller.ErrorCode(err))
	for _, id := range []string{youngConsent, activeConsent} {
		_, err = b.store.GetConsent(b.ctx, controller.DefaultTenant, id)
		require.NoError(t, err, "consent evidence younger than two years, or in force, survives")
	}
	again, err := b.store.PurgeExpired(b.ctx, callsBefore, evidenceBefore, false)
	require.NoError(t, err)
	require.Zero(t, again.Calls+again.Consents+again.Refusals)
}
