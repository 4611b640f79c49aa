package dialer_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/dialer"
	"github.com/callgate/callgate/controller/postgres"
	"github.com/callgate/callgate/controller/postgres/pgtest"
)

// TestAdminRefusalCancelsQueued: a manual refusal through the admin cancels
// the number's queued call, which is never dialled, and blocks new calls to
// it with reason refused.
func TestAdminRefusalCancelsQueued(t *testing.T) {
	t.Parallel()
	b := setup(t, dialer.SwitchLimits{MaxSessions: 1})
	ctx := context.Background()
	adm := b.svc.Admin()

	live := b.call(t, "+12125551005")
	b.w.WaitState(t, live.ID, controller.CallAnswered)
	queued := b.call(t, "+12125551005") // held back by the session limit

	before := time.Now()
	lock, err := adm.LockNumber(ctx, "", controller.RefusalRequest{Number: "+1 212-555-1005", Source: "agent"})
	require.NoError(t, err)
	require.Equal(t, 1, lock.CanceledCalls)
	require.Equal(t, "+12125551005", lock.Refusal.Number)
	require.NotEmpty(t, lock.Refusal.ID)
	require.NotNil(t, lock.Refusal.Until)
	require.WithinDuration(t, before.Add(controller.DefaultRefusalLock), *lock.Refusal.Until, time.Minute)

	got, err := b.svc.GetCall(ctx, "", queued.ID)
	require.NoError(t, err)
	require.Equal(t, controller.CallCanceled, got.State)

	blocked, _, err := b.svc.CreateCall(ctx, controller.CreateCallRequest{To: "+12125551005", From: "+12125550100"})
	require.NoError(t, err)
	require.Equal(t, controller.CallBlocked, blocked.State)
	a, err := b.svc.GetAttempt(ctx, "", blocked.ID)
	require.NoError(t, err)
	require.Contains(t, a.BlockedReasons, controller.ReasonRefused)

	refusals, err := adm.ListRefusals(ctx, "+12125551005")
	require.NoError(t, err)
	require.Len(t, refusals, 1)

	// Another tenant cannot lift it; the tenant that recorded it can, and
	// the number may be called again.
	_, err = adm.LiftRefusal(ctx, "other", lock.Refusal.ID)
	require.Equal(t, controller.ENOTFOUND, controller.ErrorCode(err))
	_, err = adm.LiftRefusal(ctx, controller.DefaultTenant, lock.Refusal.ID)
	require.NoError(t, err)
	_, err = adm.LiftRefusal(ctx, controller.DefaultTenant, lock.Refusal.ID)
	require.Equal(t, controller.ECONFLICT, controller.ErrorCode(err))
	d, err := b.svc.CheckCompliance(ctx, controller.CheckRequest{To: "+12125551005", From: "+12125550100"})
	require.NoError(t, err)
	require.NotContains(t, d.Reasons, controller.ReasonRefused)

	_, err = b.svc.HangupCall(ctx, "", live.ID, "")
	require.NoError(t, err)
	require.Zero(t, b.sw.originateCount(queued.ID))
}

// TestAdminDNCImportBlocks: a number imported into an internal do-not-call
// list is blocked by the gate with dnc_internal (the DNC rule blocks on a
// hit under every policy, lab included); bad rows are reported with their
// line numbers and the good ones kept.
func TestAdminDNCImportBlocks(t *testing.T) {
	t.Parallel()
	b := setup(t, dialer.SwitchLimits{})
	ctx := context.Background()
	adm := b.svc.Admin()

	l, err := adm.CreateDNCList(ctx, "", controller.DNCList{Name: "internal", Kind: "internal"})
	require.NoError(t, err)
	csv := "number\n+12125551001\nnot-a-number\n+1 212 555 1001\n"
	rep, err := adm.ImportDNC(ctx, "", l.ID, strings.NewReader(csv), controller.DNCImport{Scrub: true})
	require.NoError(t, err)
	require.True(t, rep.Header)
	require.EqualValues(t, 1, rep.Accepted)
	require.EqualValues(t, 1, rep.Duplicates)
	require.EqualValues(t, 1, rep.Rejected)
	require.Len(t, rep.RejectedRows, 1)
	require.EqualValues(t, 3, rep.RejectedRows[0].Line)
	require.EqualValues(t, 1, rep.Entries)
	require.False(t, rep.LastScrubAt.IsZero())

	c, _, err := b.svc.CreateCall(ctx, controller.CreateCallRequest{To: "+12125551001", From: "+12125550100"})
	require.NoError(t, err)
	require.Equal(t, controller.CallBlocked, c.State)
	a, err := b.svc.GetAttempt(ctx, "", c.ID)
	require.NoError(t, err)
	require.Equal(t, []string{controller.ReasonDNCInternal}, a.BlockedReasons)

	lists, err := adm.ListDNCLists(ctx, "")
	require.NoError(t, err)
	require.Len(t, lists, 1)
	require.EqualValues(t, 1, lists[0].Entries)

	// Taken off the list, the number is allowed again; a second removal is 404.
	require.NoError(t, adm.RemoveDNCNumber(ctx, "", l.ID, "+12125551001"))
	err = adm.RemoveDNCNumber(ctx, "", l.ID, "+12125551001")
	require.Equal(t, controller.ENOTFOUND, controller.ErrorCode(err))
	d, err := b.svc.CheckCompliance(ctx, controller.CheckRequest{To: "+12125551001", From: "+12125550100"})
	require.NoError(t, err)
	require.True(t, d.Allow, "%v", d.Reasons)

	_, _, err = adm.AddDNCNumber(ctx, "", l.ID, "12")
	require.Equal(t, "number", controller.ErrorField(err))
	_, _, err = adm.AddDNCNumber(ctx, "", "nope", "+12125551001")
	require.Equal(t, controller.ENOTFOUND, controller.ErrorCode(err))
}

// TestAdminPolicies: a policy is validated before it is stored, versioned,
// and unknown fields are rejected by name.
func TestAdminPolicies(t *testing.T) {
	t.Parallel()
	b := setup(t, dialer.SwitchLimits{})
	ctx := context.Background()
	adm := b.svc.Admin()

	body := `{"name":"strict","refusal_lock_days":90,"daily_cap":3,"hours":[{"days":["mon","tue","wed","thu","fri"],"start":"09:00","end":"17:00"}],"evidence_retention_days":730,"caller_id_owned_only":false}`
	p1, err := adm.PutPolicy(ctx, "", "strict", []byte(body))
	require.NoError(t, err)
	require.Equal(t, 1, p1.Version)
	require.Equal(t, "strict", p1.Name)
	p2, err := adm.PutPolicy(ctx, "", "strict", []byte(body))
	require.NoError(t, err)
	require.Equal(t, 2, p2.Version)
	got, err := adm.GetPolicy(ctx, "", "strict", 1)
	require.NoError(t, err)
	require.Equal(t, 1, got.Version)

	_, err = adm.PutPolicy(ctx, "", "strict", []byte(`{"refusal_lock_days":90,"bogus":1}`))
	require.Equal(t, "bogus", controller.ErrorField(err))
	_, err = adm.PutPolicy(ctx, "", "strict", []byte(`{"refusal_lock_days":0,"hours":[]}`))
	require.Equal(t, controller.EINVALID, controller.ErrorCode(err))
	_, err = adm.PutPolicy(ctx, "", "strict", []byte(`{"id":"other"}`))
	require.Equal(t, "id", controller.ErrorField(err))

	require.NoError(t, adm.AssignPolicy(ctx, "", controller.PolicyAssignment{PolicyID: "strict", CampaignID: "spring"}))
	err = adm.AssignPolicy(ctx, "", controller.PolicyAssignment{PolicyID: "missing"})
	require.Equal(t, controller.ENOTFOUND, controller.ErrorCode(err))

	// Owned caller IDs.
	n, err := adm.AddCallerID(ctx, "", "+1 212 555 0100")
	require.NoError(t, err)
	require.Equal(t, "+12125550100", n)
	ids, err := adm.ListCallerIDs(ctx, "")
	require.NoError(t, err)
	require.Equal(t, []string{"+12125550100"}, ids)
	require.NoError(t, adm.RemoveCallerID(ctx, "", n))
	require.Equal(t, controller.ENOTFOUND, controller.ErrorCode(adm.RemoveCallerID(ctx, "", n)))

	// Consents.
	cons, err := adm.CreateConsent(ctx, "", controller.Consent{Number: "+12125551001", Purpose: controller.PurposeMarketing, Source: "agent"})
	require.NoError(t, err)
	require.NotEmpty(t, cons.ID)
	list, err := adm.ListConsents(ctx, "", "+12125551001")
	require.NoError(t, err)
	require.Len(t, list, 1)
	rev, err := adm.RevokeConsent(ctx, "", cons.ID)
	require.NoError(t, err)
	require.NotNil(t, rev.RevokedAt)
	_, err = adm.CreateConsent(ctx, "", controller.Consent{Number: "x", Purpose: controller.PurposeMarketing, Source: "agent"})
	require.Equal(t, "number", controller.ErrorField(err))
}

func TestAssignedPolicyGovernsTheGate(t *testing.T) {
	t.Parallel()
	b := setup(t, dialer.SwitchLimits{})
	ctx := context.Background()
	adm := b.svc.Admin()
	// Under the configured (lab) policy a number gets 15 calls a day; the
	// tenant's assigned policy allows only one.
	body := `{"name":"one a day","refusal_lock_days":90,"daily_cap":1,"hours":[{"days":["mon","tue","wed","thu","fri","sat","sun"],"start":"00:00","end":"24:00"}]}`
	_, err := adm.PutPolicy(ctx, "", "one-a-day", []byte(body))
	require.NoError(t, err)
	require.NoError(t, adm.AssignPolicy(ctx, "", controller.PolicyAssignment{PolicyID: "one-a-day"}))

	first, _, err := b.svc.CreateCall(ctx, controller.CreateCallRequest{To: "+12125551003", From: "+12125550100"})
	require.NoError(t, err)
	require.Equal(t, controller.CallQueued, first.State)
	require.Equal(t, "one-a-day", first.Decision.PolicyID)
	second, _, err := b.svc.CreateCall(ctx, controller.CreateCallRequest{To: "+12125551003", From: "+12125550100"})
	require.NoError(t, err)
	require.Equal(t, controller.CallBlocked, second.State)
	require.Equal(t, []string{controller.ReasonCapDaily}, second.Decision.Reasons)

	d, err := b.svc.CheckCompliance(ctx, controller.CheckRequest{To: "+12125551003"})
	require.NoError(t, err)
	require.Equal(t, "one-a-day", d.PolicyID)
	require.False(t, d.Allow)

	// An assigned policy cannot be deleted; once another governs, it can.
	require.Equal(t, controller.ECONFLICT, controller.ErrorCode(adm.DeletePolicy(ctx, "", "one-a-day")))
	_, err = adm.PutPolicy(ctx, "", "two-a-day", []byte(strings.Replace(body, `"daily_cap":1`, `"daily_cap":2`, 1)))
	require.NoError(t, err)
	require.NoError(t, adm.AssignPolicy(ctx, "", controller.PolicyAssignment{PolicyID: "two-a-day"}))
	require.NoError(t, adm.DeletePolicy(ctx, "", "one-a-day"))
	_, err = adm.GetPolicy(ctx, "", "one-a-day", 0)
	require.Equal(t, controller.ENOTFOUND, controller.ErrorCode(err))
	require.Equal(t, controller.ENOTFOUND, controller.ErrorCode(adm.DeletePolicy(ctx, "", "one-a-day")))
	third, _, err := b.svc.CreateCall(ctx, controller.CreateCallRequest{To: "+12125551003", From: "+12125550100"})
	require.NoError(t, err)
	require.Equal(t, controller.CallQueued, third.State, "the new policy allows a second call")
	require.Equal(t, "two-a-day", third.Decision.PolicyID)
}

func TestConcurrentCapExactAcrossControllers(t *testing.T) {
	t.Parallel()
	store := pgtest.New(t)
	ctx := context.Background()
	// A second controller process: its own pool on the same schema.
	db2, err := postgres.OpenConfig(ctx, store.DB().Pool().Config().Copy())
	require.NoError(t, err)
	t.Cleanup(db2.Close)
	other := pgtest.StoreOn(db2)
	mk := func(st controller.CallStore, owner string) *dialer.Service {
		svc, err := dialer.New(dialer.Config{Owner: owner, Gate: labGate(t)}, st)
		require.NoError(t, err)
		return svc
	}
	services := []*dialer.Service{mk(store, "a"), mk(other, "b")}
	var wg sync.WaitGroup
	var mu sync.Mutex
	states := map[controller.CallState]int{}
	reasons := map[string]int{}
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := services[i%2].CreateCall(ctx, controller.CreateCallRequest{To: "+12125551004", From: "+12125550100"})
			require.NoError(t, err)
			mu.Lock()
			defer mu.Unlock()
			states[c.State]++
			for _, r := range c.Decision.Reasons {
				reasons[r]++
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 15, states[controller.CallQueued])
	require.Equal(t, 85, states[controller.CallBlocked])
	require.Equal(t, map[string]int{controller.ReasonCapDaily: 85}, reasons)
}

// TestAdminTenantBoundaries: global do-not-call lists are read-only for
// tenants, a refusal listed for another tenant hides the call it was heard
// on, and an agent's call keeps its agent (another agent replaying the
// Idempotency-Key gets a conflict, never the call).
func TestAdminTenantBoundaries(t *testing.T) {
	t.Parallel()
	b := setup(t, dialer.SwitchLimits{})
	ctx := context.Background()
	adm := b.svc.Admin()
	pg := b.store.(*postgres.Store)

	national, err := pg.CreateDNCList(ctx, controller.DNCList{Name: "national", Kind: "national"})
	require.NoError(t, err)
	lists, err := adm.ListDNCLists(ctx, "")
	require.NoError(t, err)
	require.Len(t, lists, 1, "a tenant reads the global list")
	_, _, err = adm.AddDNCNumber(ctx, "", national.ID, "+12125551001")
	require.Equal(t, controller.EFORBIDDEN, controller.ErrorCode(err))
	require.Equal(t, controller.EFORBIDDEN, controller.ErrorCode(adm.RemoveDNCNumber(ctx, "", national.ID, "+12125551001")))
	_, err = adm.ImportDNC(ctx, "", national.ID, strings.NewReader("+12125551001\n"), controller.DNCImport{})
	require.Equal(t, controller.EFORBIDDEN, controller.ErrorCode(err))
	_, err = adm.MarkDNCScrubbed(ctx, "", national.ID)
	require.Equal(t, controller.EFORBIDDEN, controller.ErrorCode(err))

	req := controller.CreateCallRequest{To: "+12125551006", From: "+12125550100", AgentID: "a1", IdempotencyKey: "k"}
	c, created, err := b.svc.CreateCall(ctx, req)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, "a1", c.AgentID)
	got, err := b.svc.GetCall(ctx, "", c.ID)
	require.NoError(t, err)
	require.Equal(t, "a1", got.AgentID)
	req.AgentID = "a2"
	_, _, err = b.svc.CreateCall(ctx, req)
	require.Equal(t, controller.ECONFLICT, controller.ErrorCode(err))

	_, err = pg.DB().Pool().Exec(ctx, `INSERT INTO tenants (id) VALUES ('other')`)
	require.NoError(t, err)
	_, err = adm.LockNumber(ctx, "", controller.RefusalRequest{Number: "+12125551007", CallID: c.ID, Source: "agent"})
	require.NoError(t, err)
	mine, err := adm.ListRefusals(controller.WithPrincipal(ctx, controller.Principal{TenantID: controller.DefaultTenant}), "+12125551007")
	require.NoError(t, err)
	require.Equal(t, c.ID, mine[0].CallID)
	theirs, err := adm.ListRefusals(controller.WithPrincipal(ctx, controller.Principal{TenantID: "other"}), "+12125551007")
	require.NoError(t, err)
	require.Len(t, theirs, 1, "a refusal holds for every tenant")
	require.Empty(t, theirs[0].CallID, "but the call it was heard on is not theirs")
}
