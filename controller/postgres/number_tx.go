package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// numberTx is the transaction of one decision about a number, on one pooled
// connection, opened and closed by hand so that round trips are shared: BEGIN
// travels with the number's lock and the prefetch (txLookup.lock), and COMMIT
// with the decision's write (commit). A decision thus costs two round trips
// plus whatever the rules query beyond the prefetch.
type numberTx struct {
	conn *pgxpool.Conn
}

// Every transaction here is READ COMMITTED whatever the database's default:
// each statement after a lock must see what the previous holder committed
// (under REPEATABLE READ the snapshot would date from before the lock).
const (
	beginReadWrite = "BEGIN ISOLATION LEVEL READ COMMITTED"
	beginReadOnly  = "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY"
)

// genericPlans makes the rest of a decision's transaction use generic plans
// for its prepared statements. The array-valued lookups would otherwise be
// planned afresh on every execution (PostgreSQL keeps custom plans when a
// generic plan's row estimate for an array looks worse), which costs more
// than running them; their generic plans are the same index scans.
const genericPlans = "SET LOCAL plan_cache_mode = force_generic_plan"

var readCommitted = pgx.TxOptions{IsoLevel: pgx.ReadCommitted}

// rollbackTimeout bounds the ROLLBACK of an abandoned decision.
const rollbackTimeout = 5 * time.Second

func (s *Store) acquireTx(ctx context.Context) (*numberTx, error) {
	conn, err := s.db.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquiring a connection: %w", translate(err))
	}
	return &numberTx{conn: conn}, nil
}

func (t *numberTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return t.conn.Query(ctx, sql, args...)
}

func (t *numberTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return t.conn.QueryRow(ctx, sql, args...)
}

func (t *numberTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return t.conn.Exec(ctx, sql, args...)
}

func (t *numberTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return t.conn.SendBatch(ctx, b)
}

// commit sends b's statements, then COMMIT, in one round trip. If a
// statement fails the server skips the rest: nothing is committed, and
// release rolls back.
func (t *numberTx) commit(ctx context.Context, b *pgx.Batch) error {
	if b == nil {
		b = &pgx.Batch{}
	}
	b.Queue("COMMIT")
	return t.conn.SendBatch(ctx, b).Close()
}

// release rolls back whatever is still open and returns the connection to
// the pool. (The pool would also destroy a connection left in a transaction.)
func (t *numberTx) release() {
	if t.conn.Conn().PgConn().TxStatus() != 'I' && !t.conn.Conn().IsClosed() {
		ctx, cancel := context.WithTimeout(context.Background(), rollbackTimeout)
		defer cancel()
		if _, err := t.conn.Exec(ctx, "ROLLBACK"); err != nil {
			_ = t.conn.Conn().Close(ctx) // the pool drops a closed connection
		}
	}
	t.conn.Release()
}
