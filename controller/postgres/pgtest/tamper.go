package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/callgate/callgate/controller/postgres"
)

// The Tamper functions play an attacker with direct database access to the
// audit log (its append-only trigger switched off), for tests of
// `callgate audit verify`. Each fails the test if its statements fail.

// EditAudit rewrites the detail of entry seq.
func EditAudit(t testing.TB, db *postgres.DB, seq int64) {
	t.Helper()
	tamper(t, db, [][]any{{`UPDATE audit_log SET detail = 'to ****0000' WHERE seq = $1`, seq}})
}

// DeleteAudit removes entry seq.
func DeleteAudit(t testing.TB, db *postgres.DB, seq int64) {
	t.Helper()
	tamper(t, db, [][]any{{`DELETE FROM audit_log WHERE seq = $1`, seq}})
}

// SwapAudit exchanges the positions of entries a and b.
func SwapAudit(t testing.TB, db *postgres.DB, a, b int64) {
	t.Helper()
	const aside = 1_000_000_000
	tamper(t, db, [][]any{
		{`UPDATE audit_log SET seq = seq + $2 WHERE seq = $1`, a, aside},
		{`UPDATE audit_log SET seq = $1 WHERE seq = $2`, a, b},
		{`UPDATE audit_log SET seq = $1 WHERE seq = $2::bigint + $3`, b, a, aside},
	})
}

// DeleteAuditHead removes entries 1 to upTo.
func DeleteAuditHead(t testing.TB, db *postgres.DB, upTo int64) {
	t.Helper()
	tamper(t, db, [][]any{{`DELETE FROM audit_log WHERE seq <= $1`, upTo}})
}

func tamper(t testing.TB, db *postgres.DB, stmts [][]any) {
	t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, db.Pool(), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL callgate.audit_maintenance = 'on'`); err != nil {
			return err
		}
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s[0].(string), s[1:]...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("pgtest: tampering with the audit log: %v", err)
	}
}
