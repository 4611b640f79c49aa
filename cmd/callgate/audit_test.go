package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/postgres"
	"github.com/callgate/callgate/controller/postgres/pgtest"
)

// auditChain returns a valid chain of n entries, seq 1..n.
func auditChain(n int) []controller.AuditEntry {
	chain := make([]controller.AuditEntry, n)
	prev := make([]byte, 32)
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for i := range chain {
		e := controller.AuditEntry{Seq: int64(i + 1), At: at.Add(time.Duration(i) * time.Second),
			TenantID: "acme", Role: controller.RoleAdmin, Action: "POST /v1/calls", Outcome: "ok", Status: 201,
			Target: fmt.Sprintf("call-%d", i), PrevHash: prev}
		e.Hash = controller.AuditHash(e)
		chain[i], prev = e, e.Hash
	}
	return chain
}

// walkOf is a walk over entries, as WalkAudit would yield them.
func walkOf(entries []controller.AuditEntry) func(func(controller.AuditEntry) error) error {
	return func(yield func(controller.AuditEntry) error) error {
		for _, e := range entries {
			if err := yield(e); err != nil {
				return err
			}
		}
		return nil
	}
}

// requireBreak fails unless err is a *ChainBreak at seq whose problem
// contains want.
func requireBreak(t *testing.T, err error, seq int64, want string) {
	t.Helper()
	var b *ChainBreak
	require.ErrorAs(t, err, &b)
	require.Equal(t, seq, b.Seq, "%v", err)
	require.Contains(t, b.Problem, want)
}

func TestAuditVerifyChain(t *testing.T) {
	t.Parallel()
	n, head, err := verifyChain(walkOf(auditChain(5)))
	require.NoError(t, err)
	require.Equal(t, int64(5), n)
	require.Equal(t, auditChain(5)[4].Hash, head)

	n, head, err = verifyChain(walkOf(nil))
	require.NoError(t, err, "an empty log is intact")
	require.Zero(t, n)
	require.Nil(t, head)

	tests := []struct {
		name    string
		tamper  func(c []controller.AuditEntry) []controller.AuditEntry
		seq     int64
		problem string
	}{
		{"edited", func(c []controller.AuditEntry) []controller.AuditEntry {
			c[2].Detail = "edited"
			return c
		}, 3, "hash mismatch"},
		{"edited and rehashed", func(c []controller.AuditEntry) []controller.AuditEntry {
			c[2].Detail = "edited"
			c[2].Hash = controller.AuditHash(c[2])
			return c
		}, 4, "does not match the hash of seq 3"},
		{"removed", func(c []controller.AuditEntry) []controller.AuditEntry {
			return append(c[:2], c[3:]...)
		}, 3, "seq gap between 2 and 4"},
		{"removed and renumbered", func(c []controller.AuditEntry) []controller.AuditEntry {
			c = append(c[:2], c[3:]...)
			for i := range c {
				c[i].Seq = int64(i + 1)
			}
			return c
		}, 3, "does not match the hash of seq 2"},
		{"swapped seqs", func(c []controller.AuditEntry) []controller.AuditEntry {
			c[2], c[3] = c[3], c[2]
			c[2].Seq, c[3].Seq = 3, 4
			return c
		}, 3, "linkage broken"},
		{"removed twice", func(c []controller.AuditEntry) []controller.AuditEntry {
			return append(c[:1], c[3:]...)
		}, 2, "seq gap between 1 and 4: entries 2 to 3 were removed"},
		{"duplicated", func(c []controller.AuditEntry) []controller.AuditEntry {
			return append(c[:3], c[2:]...)
		}, 3, "it comes after seq 3: entries out of order"},
		{"head removed", func(c []controller.AuditEntry) []controller.AuditEntry {
			return c[2:]
		}, 3, "starts at seq 3, not 1"},
		{"head removed and renumbered", func(c []controller.AuditEntry) []controller.AuditEntry {
			c = c[1:]
			for i := range c {
				c[i].Seq = int64(i + 1)
			}
			return c
		}, 1, "prev_hash is not zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := verifyChain(walkOf(tt.tamper(auditChain(5))))
			requireBreak(t, err, tt.seq, tt.problem)
		})
	}

	boom := errors.New("connection lost")
	_, _, err = verifyChain(func(func(controller.AuditEntry) error) error { return boom })
	require.Same(t, boom, err, "the walk's own error")
}

type auditBundle struct {
	ctx   context.Context
	dsn   string
	store *postgres.Store
}

// setupAudit gives the test a migrated schema with n audit entries appended
// through the store, as the API appends them.
func setupAudit(t *testing.T, n int) *auditBundle {
	t.Helper()
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	dsn := pgtest.DSN(t)
	db, err := postgres.Open(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	b := &auditBundle{ctx: ctx, dsn: dsn, store: postgres.NewStore(db)}
	for i := range n {
		_, err := b.store.AppendAudit(ctx, controller.AuditEntry{TenantID: "acme", TokenID: "tok_1",
			Role: controller.RoleAgent, Action: "POST /v1/calls", Target: fmt.Sprintf("call-%d", i),
			Outcome: "ok", Status: 201, Detail: "to ****4567"})
		require.NoError(t, err)
	}
	return b
}

// verify runs `callgate audit verify` on the bundle's database.
func (b *auditBundle) verify(t *testing.T) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(b.ctx, []string{"audit", "verify", "--database-url", b.dsn}, envOf(nil), &stdout, &stderr)
	return stdout.String(), err
}

func TestAuditVerifyCommandCleanChain(t *testing.T) {
	b := setupAudit(t, 7)
	last, err := b.store.ListAudit(b.ctx, "", 6, 1)
	require.NoError(t, err)
	require.Len(t, last, 1)

	var stdout bytes.Buffer
	err = run(b.ctx, []string{"audit", "verify"}, envOf(map[string]string{"CALLGATE_DATABASE_URL": b.dsn}),
		&stdout, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("audit log intact: 7 entries, head seq 7 hash %s\n", hex.EncodeToString(last[0].Hash)),
		stdout.String(), "the URL from CALLGATE_DATABASE_URL")
}

func TestAuditVerifyCommandEmptyLog(t *testing.T) {
	b := setupAudit(t, 0)
	out, err := b.verify(t)
	require.NoError(t, err)
	require.Equal(t, "audit log intact: 0 entries\n", out)
}

func TestAuditVerifyCommandFindsTampering(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		tamper  func(t testing.TB, db *postgres.DB)
		message string
	}{
		{"edited entry", func(t testing.TB, db *postgres.DB) { pgtest.EditAudit(t, db, 4) },
			"audit chain broken at seq 4: hash mismatch: the entry was edited"},
		{"deleted entry", func(t testing.TB, db *postgres.DB) { pgtest.DeleteAudit(t, db, 4) },
			"audit chain broken at seq 4: seq gap between 3 and 5: entry 4 was removed"},
		{"swapped entries", func(t testing.TB, db *postgres.DB) { pgtest.SwapAudit(t, db, 4, 5) },
			"audit chain broken at seq 4: prev_hash does not match the hash of seq 3: linkage broken"},
		{"deleted head", func(t testing.TB, db *postgres.DB) { pgtest.DeleteAuditHead(t, db, 2) },
			"audit chain broken at seq 3: the log starts at seq 3, not 1: entries 1 to 2 were removed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setupAudit(t, 7)
			out, err := b.verify(t)
			require.NoError(t, err, "intact before: %s", out)
			tt.tamper(t, b.store.DB())
			out, err = b.verify(t)
			require.ErrorContains(t, err, tt.message)
			require.Empty(t, out, "nothing claims the log is intact")
		})
	}
}

func TestAuditVerifyCommandUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"audit"}, {"audit", "check"}, {"audit", "verify", "extra"}} {
		var stdout bytes.Buffer
		err := run(context.Background(), args, envOf(nil), &stdout, &bytes.Buffer{})
		require.Error(t, err, "%v", args)
	}
	var stdout bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"audit", "-h"}, envOf(nil), &stdout, &bytes.Buffer{}))
	require.Contains(t, stdout.String(), "callgate audit verify")
}
