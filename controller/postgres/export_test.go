package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/postgres"
)

func TestExportTrace(t *testing.T) {
	b := setup(t)
	consentID, err := b.store.CreateConsent(b.ctx, controller.Consent{TenantID: controller.DefaultTenant,
		Number: "+12125551001", Purpose: controller.PurposeMarketing, Source: "api_import", GivenAt: time.Now()})
	require.NoError(t, err)
	withConsent := func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
		return controller.Decision{Allow: true, Stage: controller.StageCreate, PolicyID: "preset-us", PolicyVersion: 1,
			Verdicts: []controller.Verdict{{Rule: "consent", Allow: true, Evidence: []string{consentID}}}}, nil
	}
	from := time.Now().Add(-time.Minute)
	var ids []controller.CallID
	for _, to := range []string{"+12125551001", "+12125551002"} {
		c, _, _, err := b.store.CreateCallGated(b.ctx, controller.Call{To: to, From: "+12125550100",
			Purpose: controller.PurposeMarketing}, "", withConsent)
		require.NoError(t, err)
		ids = append(ids, c.ID)
	}
	rec, err := b.store.CreateRecording(b.ctx, controller.Recording{TenantID: controller.DefaultTenant, CallID: ids[0], SpoolPath: "/s/a.wav"})
	require.NoError(t, err)
	_, _, err = b.store.CreateCall(b.ctx, controller.Call{TenantID: "default", To: "+12125551003"}, "")
	require.NoError(t, err)

	var rows []postgres.TraceRow
	require.NoError(t, b.store.ExportTrace(b.ctx, controller.DefaultTenant, from, time.Now().Add(time.Minute), func(r postgres.TraceRow) error {
		rows = append(rows, r)
		return nil
	}))
	require.Len(t, rows, 3)
	require.Equal(t, ids[0], rows[0].CallID, "oldest first")
	require.Equal(t, "+12125550100", rows[0].CallerID)
	require.Equal(t, "preset-us", rows[0].Decision.PolicyID)
	require.Equal(t, []string{consentID}, rows[0].ConsentIDs, "the consent the decision cited")
	require.Equal(t, []string{rec.ID}, rows[0].RecordingIDs)
	require.Empty(t, rows[2].ConsentIDs)
	require.NotNil(t, rows[2].ConsentIDs, "an empty list, not null")

	var other []postgres.TraceRow
	require.NoError(t, b.store.ExportTrace(b.ctx, "other", from, time.Now().Add(time.Minute), func(r postgres.TraceRow) error {
		other = append(other, r)
		return nil
	}))
	require.Empty(t, other, "tenants never see each other's calls")
	err = b.store.ExportTrace(b.ctx, controller.DefaultTenant, time.Now(), from, func(postgres.TraceRow) error { return nil })
	require.Equal(t, "from", controller.ErrorField(err))
}
