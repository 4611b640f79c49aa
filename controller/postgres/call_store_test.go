package postgres_test

import (
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

func TestCreateAndGetCall(t *testing.T) {
	b := setup(t)
	req := newCall(1)
	req.Switch = "fs1"
	c, created, err := b.store.CreateCall(b.ctx, req, "")
	require.NoError(t, err)
	require.True(t, created)
	require.NotEmpty(t, c.ID)
	require.NotZero(t, c.AttemptID)
	require.Equal(t, controller.DefaultTenant, c.TenantID)
	require.Equal(t, controller.CallQueued, c.State)
	require.False(t, c.CreatedAt.IsZero())

	got, err := b.store.GetCall(b.ctx, controller.DefaultTenant, c.ID)
	require.NoError(t, err)
	require.Equal(t, c.ID, got.ID)
	require.Equal(t, c.AttemptID, got.AttemptID)
	require.Equal(t, "fs1", got.Switch)
	require.Equal(t, req.To, got.To)
	require.Equal(t, req.From, got.From)
	require.Equal(t, req.CallerIDName, got.CallerIDName)
	require.Equal(t, 30*time.Second, got.Timeout)
	require.Equal(t, map[string]string{"campaign": "c1"}, got.Variables)
	require.Equal(t, controller.CallQueued, got.State)
	require.True(t, c.CreatedAt.Equal(got.CreatedAt))
	require.Nil(t, got.AnsweredAt)
	require.Nil(t, got.EndedAt)
}

func TestCreateCallKeepsGivenID(t *testing.T) {
	b := setup(t)
	req := newCall(1)
	req.ID = controller.CallID(uuid.NewString())
	req.Variables = nil
	c, _, err := b.store.CreateCall(b.ctx, req, "")
	require.NoError(t, err)
	require.Equal(t, req.ID, c.ID)
	got, err := b.store.GetCall(b.ctx, controller.DefaultTenant, req.ID)
	require.NoError(t, err)
	require.Nil(t, got.Variables)

	req.ID = "not-a-uuid"
	_, _, err = b.store.CreateCall(b.ctx, req, "")
	requireCode(t, controller.EINVALID, err)
}

func TestCreateCallUnknownTenant(t *testing.T) {
	b := setup(t)
	req := newCall(1)
	req.TenantID = "nobody"
	_, _, err := b.store.CreateCall(b.ctx, req, "")
	requireCode(t, controller.EINVALID, err)
	require.Equal(t, "tenant_id", controller.ErrorField(err))
}

func TestGetCallNotFound(t *testing.T) {
	b := setup(t)
	c := b.create(t, 1)[0]
	for name, tc := range map[string]struct {
		tenant string
		id     controller.CallID
	}{
		"unknown id":   {controller.DefaultTenant, controller.CallID(uuid.NewString())},
		"malformed id": {controller.DefaultTenant, "nope"},
		"other tenant": {"other", c.ID},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := b.store.GetCall(b.ctx, tc.tenant, tc.id)
			requireCode(t, controller.ENOTFOUND, err)
			_, err = b.store.ListCallEvents(b.ctx, tc.tenant, tc.id)
			requireCode(t, controller.ENOTFOUND, err)
			_, err = b.store.CancelCall(b.ctx, tc.tenant, tc.id)
			requireCode(t, controller.ENOTFOUND, err)
		})
	}
}

func TestIdempotency(t *testing.T) {
	b := setup(t)
	req := newCall(1)
	req.IdempotencyKey = "k1"
	first, created, err := b.store.CreateCall(b.ctx, req, "hash-a")
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, "k1", first.IdempotencyKey)

	again, created, err := b.store.CreateCall(b.ctx, req, "hash-a")
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, first.ID, again.ID)
	require.Equal(t, first.AttemptID, again.AttemptID)
	require.Equal(t, req.To, again.To)

	_, _, err = b.store.CreateCall(b.ctx, req, "hash-b")
	requireCode(t, controller.ECONFLICT, err)
	require.Equal(t, "Idempotency-Key was used with a different request", controller.ErrorMessage(err))

	page, err := b.store.ListCalls(b.ctx, controller.CallFilter{TenantID: controller.DefaultTenant})
	require.NoError(t, err)
	require.Len(t, page.Calls, 1)
}

func TestIdempotencyConcurrent(t *testing.T) {
	b := setup(t)
	req := newCall(1)
	req.IdempotencyKey = "same"
	const n = 20
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		ids     = map[controller.CallID]int{}
		errs    []error
		created int
	)
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			c, ok, err := b.store.CreateCall(b.ctx, req, "h")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			if ok {
				created++
			}
			ids[c.ID]++
		})
	}
	close(start)
	wg.Wait()
	require.Empty(t, errs)
	require.Equal(t, 1, created)
	require.Len(t, ids, 1)
	page, err := b.store.ListCalls(b.ctx, controller.CallFilter{})
	require.NoError(t, err)
	require.Len(t, page.Calls, 1)
	claimed, err := b.store.ClaimAttempts(b.ctx, "fs1", "o", 10)
	require.NoError(t, err)
	require.Len(t, claimed, 1)
}

func TestListCallsPagination(t *testing.T) {
	b := setup(t)
	calls := b.create(t, 7)
	var got []controller.CallID
	f := controller.CallFilter{TenantID: controller.DefaultTenant, Limit: 3}
	pages := 0
	for {
		page, err := b.store.ListCalls(b.ctx, f)
		require.NoError(t, err)
		pages++
		got = append(got, ids(page.Calls)...)
		if page.NextCursor == "" {
			break
		}
		require.Len(t, page.Calls, 3)
		f.Cursor = page.NextCursor
	}
	require.Equal(t, 3, pages)
	// Newest first: created_at descending, then id descending.
	require.Len(t, got, 7)
	require.ElementsMatch(t, ids(calls), got)
	all, err := b.store.ListCalls(b.ctx, controller.CallFilter{})
	require.NoError(t, err)
	require.Equal(t, got, ids(all.Calls))
	for i := 1; i < len(all.Calls); i++ {
		prev, cur := all.Calls[i-1], all.Calls[i]
		require.False(t, cur.CreatedAt.After(prev.CreatedAt))
	}
	require.Empty(t, all.NextCursor)
}

func TestListCallsFilters(t *testing.T) {
	b := setup(t)
	calls := b.create(t, 4)
	other := newCall(9)
	other.Switch = "fs2"
	o, _, err := b.store.CreateCall(b.ctx, other, "")
	require.NoError(t, err)
	_, err = b.store.CancelCall(b.ctx, controller.DefaultTenant, calls[0].ID)
	require.NoError(t, err)

	for name, tc := range map[string]struct {
		f    controller.CallFilter
		want []controller.CallID
	}{
		"state":          {controller.CallFilter{State: controller.CallCanceled}, []controller.CallID{calls[0].ID}},
		"switch":         {controller.CallFilter{Switch: "fs2"}, []controller.CallID{o.ID}},
		"to":             {controller.CallFilter{To: calls[2].To}, []controller.CallID{calls[2].ID}},
		"other tenant":   {controller.CallFilter{TenantID: "other"}, nil},
		"created after":  {controller.CallFilter{CreatedAfter: o.CreatedAt}, []controller.CallID{o.ID}},
		"created before": {controller.CallFilter{CreatedBefore: calls[1].CreatedAt}, []controller.CallID{calls[0].ID}},
	} {
		t.Run(name, func(t *testing.T) {
			page, err := b.store.ListCalls(b.ctx, tc.f)
			require.NoError(t, err)
			require.ElementsMatch(t, tc.want, ids(page.Calls))
			require.NotNil(t, page.Calls)
		})
	}
}

func TestListCallsInvalid(t *testing.T) {
	b := setup(t)
	for name, tc := range map[string]struct {
		f     controller.CallFilter
		field string
	}{
		"not base64":   {controller.CallFilter{Cursor: "%%%"}, "cursor"},
		"wrong length": {controller.CallFilter{Cursor: "AAAA"}, "cursor"},
		"limit 201":    {controller.CallFilter{Limit: 201}, "limit"},
		"limit -1":     {controller.CallFilter{Limit: -1}, "limit"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := b.store.ListCalls(b.ctx, tc.f)
			requireCode(t, controller.EINVALID, err)
			require.Equal(t, tc.field, controller.ErrorField(err))
		})
	}
	page, err := b.store.ListCalls(b.ctx, controller.CallFilter{Limit: 200})
	require.NoError(t, err)
	require.Empty(t, page.Calls)
}

func TestCancelCall(t *testing.T) {
	b := setup(t)
	calls := b.create(t, 2)
	c, err := b.store.CancelCall(b.ctx, controller.DefaultTenant, calls[0].ID)
	require.NoError(t, err)
	require.Equal(t, controller.CallCanceled, c.State)
	require.NotNil(t, c.EndedAt)

	_, err = b.store.CancelCall(b.ctx, controller.DefaultTenant, calls[0].ID)
	requireCode(t, controller.ECONFLICT, err)

	// The canceled call's attempt is never claimed; the other one is.
	claimed := b.claimAndMark(t, "fs1", 10)
	require.Equal(t, []controller.CallID{calls[1].ID}, ids(claimed))
	_, err = b.store.CancelCall(b.ctx, controller.DefaultTenant, calls[1].ID)
	requireCode(t, controller.ECONFLICT, err)
	got, err := b.store.GetCall(b.ctx, controller.DefaultTenant, calls[1].ID)
	require.NoError(t, err)
	require.Equal(t, controller.CallOriginating, got.State)
}

func TestCancelClaimedCallIsNotMarked(t *testing.T) {
	b := setup(t)
	calls := b.create(t, 2)
	claimed, err := b.store.ClaimAttempts(b.ctx, "fs1", "owner-a", 10)
	require.NoError(t, err)
	require.Len(t, claimed, 2)
	_, err = b.store.CancelCall(b.ctx, controller.DefaultTenant, calls[0].ID)
	require.NoError(t, err)

	// All or nothing: nothing is marked, and the caller gives the attempts back.
	err = b.store.MarkOriginating(b.ctx, ids(claimed), "fs1", time.Now())
	requireCode(t, controller.ECONFLICT, err)
	require.Contains(t, err.Error(), string(calls[0].ID)+" (canceled)")
	require.NotContains(t, err.Error(), string(calls[1].ID))
	c1, err := b.store.GetCall(b.ctx, controller.DefaultTenant, calls[1].ID)
	require.NoError(t, err)
	require.Equal(t, controller.CallQueued, c1.State)
	requireCode(t, controller.ECONFLICT, b.store.ReleaseAttempt(b.ctx, calls[0].ID, time.Now(), "mark failed"))
	require.NoError(t, b.store.ReleaseAttempt(b.ctx, calls[1].ID, time.Now(), "mark failed"))

	again := b.claimAndMark(t, "fs1", 10)
	require.Equal(t, []controller.CallID{calls[1].ID}, ids(again))
	c0, err := b.store.GetCall(b.ctx, controller.DefaultTenant, calls[0].ID)
	require.NoError(t, err)
	require.Equal(t, controller.CallCanceled, c0.State)

	err = b.store.MarkOriginating(b.ctx, []controller.CallID{"00000000-0000-0000-0000-000000000001"}, "fs1", time.Now())
	requireCode(t, controller.ECONFLICT, err)
	require.Contains(t, err.Error(), "not found")
}

func TestTagCall(t *testing.T) {
	b := setup(t)
	c, _, err := b.store.CreateCall(b.ctx, newCall(1), "")
	require.NoError(t, err)
	got, err := b.store.TagCall(b.ctx, controller.DefaultTenant, c.ID, map[string]string{"interest": "high", "size": "small"}, "callback")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"interest": "high", "size": "small"}, got.Tags)
	require.Equal(t, "callback", got.Disposition)
	got, err = b.store.TagCall(b.ctx, controller.DefaultTenant, c.ID, map[string]string{"size": ""}, "")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"interest": "high"}, got.Tags, "an empty value removes the tag")
	require.Equal(t, "callback", got.Disposition, "kept when none is given")
	read, err := b.store.GetCall(b.ctx, controller.DefaultTenant, c.ID)
	require.NoError(t, err)
	require.Equal(t, got.Tags, read.Tags)
	_, err = b.store.TagCall(b.ctx, "other", c.ID, map[string]string{"x": "y"}, "")
	require.Equal(t, controller.ENOTFOUND, controller.ErrorCode(err), "another tenant's call")
}
