package postgres_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/postgres"
)

// auditEntry returns an entry to append for tenant, told apart by i.
func auditEntry(tenant string, i int) controller.AuditEntry {
	return controller.AuditEntry{
		TenantID: tenant, TokenID: "tok_1", Role: controller.RoleAdmin, Action: "POST /v1/calls",
		Target: fmt.Sprintf("call-%d", i), Outcome: "ok", Status: 201, RequestID: fmt.Sprintf("req-%d", i),
		Detail: "to ****4567",
	}
}

// requireChain fails unless entries are the whole log 1..n, each linked to
// the one before and carrying its own hash.
func requireChain(t *testing.T, entries []controller.AuditEntry, n int) {
	t.Helper()
	require.Len(t, entries, n)
	prev := make([]byte, 32)
	for i, e := range entries {
		require.Equal(t, int64(i+1), e.Seq)
		require.Equal(t, prev, e.PrevHash, "seq %d", e.Seq)
		require.Equal(t, controller.AuditHash(e), e.Hash, "seq %d", e.Seq)
		prev = e.Hash
	}
}

// walkAll returns every entry of the log in WalkAudit's order.
func (b *bundle) walkAll(t *testing.T) []controller.AuditEntry {
	t.Helper()
	var all []controller.AuditEntry
	require.NoError(t, b.store.WalkAudit(b.ctx, 0, func(e controller.AuditEntry) error {
		all = append(all, e)
		return nil
	}))
	return all
}

// maintenance runs sql with the audit log's maintenance switch on, as the
// retention purge (or an attacker with database access) would.
func (b *bundle) maintenance(t *testing.T, sql string, args ...any) {
	t.Helper()
	require.NoError(t, pgx.BeginFunc(b.ctx, b.store.DB().Pool(), func(tx pgx.Tx) error {
		if _, err := tx.Exec(b.ctx, `SET LOCAL callgate.audit_maintenance = 'on'`); err != nil {
			return err
		}
		_, err := tx.Exec(b.ctx, sql, args...)
		return err
	}))
}

func TestAuditAppendStoresWhatItHashes(t *testing.T) {
	b := setup(t)
	in := auditEntry("acme", 1)
	in.Seq, in.At, in.PrevHash, in.Hash = 42, time.Unix(1, 0), []byte("forged"), []byte("forged")
	before := time.Now()
	first, err := b.store.AppendAudit(b.ctx, in)
	require.NoError(t, err)
	require.Equal(t, int64(1), first.Seq, "the log sets seq")
	require.Equal(t, make([]byte, 32), first.PrevHash)
	require.Equal(t, controller.AuditHash(first), first.Hash)
	require.WithinDuration(t, before, first.At, time.Minute, "the log sets at")
	require.Equal(t, first.At, first.At.Truncate(time.Microsecond), "at has timestamptz's precision")
	require.Equal(t, time.UTC, first.At.Location())

	second, err := b.store.AppendAudit(b.ctx, controller.AuditEntry{Action: "switch.lease", Outcome: "ok"})
	require.NoError(t, err, "a system entry: no tenant, token or role")
	require.Equal(t, int64(2), second.Seq)
	require.Equal(t, first.Hash, second.PrevHash)
	require.False(t, second.At.Before(first.At))

	listed, err := b.store.ListAudit(b.ctx, "", 0, 10)
	require.NoError(t, err)
	require.Equal(t, []controller.AuditEntry{first, second}, listed, "read back exactly as appended")
	requireChain(t, listed, 2)
}

func TestAuditAppendConcurrentIsGapless(t *testing.T) {
	b := setup(t)
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				_, err := b.store.AppendAudit(b.ctx, auditEntry(fmt.Sprintf("t%d", w), w*each+i))
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	all := b.walkAll(t)
	requireChain(t, all, workers*each)
	seen := map[string]bool{}
	for _, e := range all {
		seen[e.RequestID] = true
	}
	require.Len(t, seen, workers*each, "every append is in the log once")

	// ListAudit pages through the same chain.
	var paged []controller.AuditEntry
	for after := int64(0); ; {
		page, err := b.store.ListAudit(b.ctx, "", after, 64)
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		after = page[len(page)-1].Seq
	}
	require.Equal(t, all, paged)
}

func TestAuditListByTenant(t *testing.T) {
	b := setup(t)
	for i := range 9 {
		tenant := []string{"acme", "globex", ""}[i%3]
		_, err := b.store.AppendAudit(b.ctx, auditEntry(tenant, i))
		require.NoError(t, err)
	}
	seqs := func(es []controller.AuditEntry) []int64 {
		out := []int64{}
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return out
	}
	acme, err := b.store.ListAudit(b.ctx, "acme", 0, 1000)
	require.NoError(t, err)
	require.Equal(t, []int64{1, 4, 7}, seqs(acme))
	for _, e := range acme {
		require.Equal(t, "acme", e.TenantID)
	}
	page, err := b.store.ListAudit(b.ctx, "globex", 2, 1)
	require.NoError(t, err)
	require.Equal(t, []int64{5}, seqs(page), "after a seq, up to limit, oldest first")
	all, err := b.store.ListAudit(b.ctx, "", 6, 1000)
	require.NoError(t, err)
	require.Equal(t, []int64{7, 8, 9}, seqs(all), `"" lists every tenant, system entries included`)
	none, err := b.store.ListAudit(b.ctx, "nobody", 0, 10)
	require.NoError(t, err)
	require.Equal(t, []controller.AuditEntry{}, none)

	for _, limit := range []int{0, -1, 1001} {
		_, err := b.store.ListAudit(b.ctx, "", 0, limit)
		requireCode(t, controller.EINVALID, err)
		require.Equal(t, "limit", controller.ErrorField(err))
	}
	_, err = b.store.ListAudit(b.ctx, "", -1, 10)
	requireCode(t, controller.EINVALID, err)
}

func TestAuditAppendRefusesPhoneNumbersAndBadFields(t *testing.T) {
	b := setup(t)
	tests := []struct {
		edit  func(*controller.AuditEntry)
		field string
	}{
		{func(e *controller.AuditEntry) { e.Detail = "to +15551234567" }, "detail"},
		{func(e *controller.AuditEntry) { e.Detail = "callback (555) 123-4567 asked" }, "detail"},
		{func(e *controller.AuditEntry) { e.Target = "555.123.4567" }, "target"},
		{func(e *controller.AuditEntry) { e.Action = "GET /v1/numbers/+447911123456/consents" }, "action"},
		{func(e *controller.AuditEntry) { e.Action = "" }, "action"},
		{func(e *controller.AuditEntry) { e.Outcome = "" }, "outcome"},
		{func(e *controller.AuditEntry) { e.Role = "root" }, "role"},
		{func(e *controller.AuditEntry) { e.Status = -1 }, "status"},
		{func(e *controller.AuditEntry) { e.Detail = "nul\x00" }, "detail"},
		{func(e *controller.AuditEntry) { e.TenantID = "\xff" }, "tenant_id"},
	}
	for _, tt := range tests {
		e := auditEntry("acme", 1)
		tt.edit(&e)
		_, err := b.store.AppendAudit(b.ctx, e)
		requireCode(t, controller.EINVALID, err)
		require.Equal(t, tt.field, controller.ErrorField(err), "%+v", e)
		require.NotContains(t, err.Error(), "5551234567", "the error does not repeat the number")
	}
	masked := auditEntry("acme", 1)
	masked.Detail = "to ****4567, consent 0b6f8a52-1d52-4c1e-9a55-431232847729 at 2026-03-01T10:00:00.123456+01:00"
	masked.Target = "tok_5d41402abc4b2a76b9719d911017c592"
	_, err := b.store.AppendAudit(b.ctx, masked)
	require.NoError(t, err)
	listed, err := b.store.ListAudit(b.ctx, "", 0, 10)
	require.NoError(t, err)
	require.Len(t, listed, 1, "refused entries use no seq")
	require.Equal(t, int64(1), listed[0].Seq)
}

func TestAuditContainsPhoneNumber(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"+15551234567":                           true,
		"to=+15551234567;":                       true,
		"+1 (555) 123-4567":                      true,
		"+44 20 7946 0958":                       true,
		"+4420":                                  true,
		"+(44) 20":                               true,
		"a + 1000 ms":                            false,
		"5551234567":                             true,
		"555-123-4567":                           true,
		"555.123.4567":                           true,
		"(555) 123 4567":                         true,
		"1234567":                                true,
		"tel:5551234567":                         true,
		"abc123 4567890":                         true,
		"bytes=10485760":                         true,
		"":                                       false,
		"****4567":                               false,
		"+1":                                     false,
		"retry +30s":                             false,
		"123456":                                 false,
		"555-1234":                               true,
		"0b6f8a52-1d52-4c1e-9a55-431232847729":   false,
		"12345678-1234-1234-1234-123456789012":   false,
		"2026-03-01T10:00:00.123456+01:00":       false,
		"on 2026-03-01 at 10:00":                 false,
		"from 203.0.113.254:8443":                false,
		"tok_5d41402abc4b2a76b9719d911017c592":   false,
		"3829104756ab":                           false,
		"v1.2.3.4567":                            false,
		"1,048,576 bytes":                        false,
		"POST /v1/calls/{id}/hangup status 201":  false,
		"attempt 42 of call 7f3e, 3 retries, 1s": false,
	} {
		require.Equal(t, want, postgres.ContainsPhoneNumber(s), "%q", s)
	}
}

func TestAuditLogIsAppendOnly(t *testing.T) {
	b := setup(t)
	for i := range 3 {
		_, err := b.store.AppendAudit(b.ctx, auditEntry("acme", i))
		require.NoError(t, err)
	}
	pool := b.store.DB().Pool()
	for _, sql := range []string{
		`UPDATE audit_log SET detail = 'nothing to see' WHERE seq = 2`,
		`DELETE FROM audit_log WHERE seq = 2`,
		`TRUNCATE audit_log`,
	} {
		_, err := pool.Exec(b.ctx, sql)
		require.ErrorContains(t, err, "audit_log is append-only", sql)
	}
	// Switched on for another transaction only: still refused here.
	b.maintenance(t, `SELECT 1`)
	_, err := pool.Exec(b.ctx, `DELETE FROM audit_log`)
	require.ErrorContains(t, err, "append-only")
	requireChain(t, b.walkAll(t), 3)

	b.maintenance(t, `UPDATE audit_log SET detail = 'edited' WHERE seq = 2`)
	b.maintenance(t, `DELETE FROM audit_log WHERE seq = 3`)
	all := b.walkAll(t)
	require.Len(t, all, 2)
	require.Equal(t, "edited", all[1].Detail)
	require.NotEqual(t, controller.AuditHash(all[1]), all[1].Hash, "an edit shows in the hash")
	b.maintenance(t, `TRUNCATE audit_log`)
	require.Empty(t, b.walkAll(t))
}

func TestAuditWalkReadsInBatches(t *testing.T) {
	b := setup(t)
	// 2 500 entries, more than two batches, written directly: appending them
	// one by one would only make the test slower.
	const n = 2500
	rows := make([][]any, n)
	prev := make([]byte, 32)
	at := time.Date(2026, 3, 1, 10, 0, 0, 123456000, time.UTC)
	for i := range n {
		e := auditEntry("acme", i)
		e.Seq, e.At, e.PrevHash = int64(i+1), at.Add(time.Duration(i)*time.Millisecond), prev
		e.Hash = controller.AuditHash(e)
		prev = e.Hash
		rows[i] = []any{e.Seq, e.At, e.TenantID, e.TokenID, string(e.Role), e.Action, e.Target, e.Outcome,
			e.Status, e.RequestID, e.Detail, e.PrevHash, e.Hash}
	}
	_, err := b.store.DB().Pool().CopyFrom(b.ctx, pgx.Identifier{"audit_log"},
		[]string{"seq", "at", "tenant_id", "token_id", "role", "action", "target", "outcome", "status",
			"request_id", "detail", "prev_hash", "hash"}, pgx.CopyFromRows(rows))
	require.NoError(t, err)
	requireChain(t, b.walkAll(t), n)

	next, err := b.store.AppendAudit(b.ctx, auditEntry("acme", n))
	require.NoError(t, err)
	require.Equal(t, int64(n+1), next.Seq, "appends continue the chain")
	require.True(t, bytes.Equal(prev, next.PrevHash))

	var from []int64
	require.NoError(t, b.store.WalkAudit(b.ctx, n-1, func(e controller.AuditEntry) error {
		from = append(from, e.Seq)
		return nil
	}))
	require.Equal(t, []int64{n, n + 1}, from, "after a seq")

	stop := errors.New("stop")
	calls := 0
	err = b.store.WalkAudit(b.ctx, 0, func(controller.AuditEntry) error {
		calls++
		if calls == 1500 {
			return stop
		}
		return nil
	})
	require.Same(t, stop, err, "fn's error comes back as is")
	require.Equal(t, 1500, calls, "and ends the walk")
}
