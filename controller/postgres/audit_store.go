package postgres

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"

	"github.com/callgate/callgate/controller"
)

var _ controller.AuditLog = (*Store)(nil)

// auditColumns are the columns scanAudit reads, in its order.
const auditColumns = `seq, at, tenant_id, token_id, role, action, target, outcome, status,
	request_id, detail, prev_hash, hash`

func scanAudit(row pgx.Row) (controller.AuditEntry, error) {
	var e controller.AuditEntry
	err := row.Scan(&e.Seq, &e.At, &e.TenantID, &e.TokenID, &e.Role, &e.Action, &e.Target, &e.Outcome,
		&e.Status, &e.RequestID, &e.Detail, &e.PrevHash, &e.Hash)
	e.At = e.At.UTC()
	return e, err
}

// auditLockSQL takes the transaction-scoped advisory lock that serialises
// appends to the audit log of the current schema.
const auditLockSQL = `SELECT pg_advisory_xact_lock(hashtextextended('callgate audit ' || current_schema(), 0))`

// auditZeroHash is the PrevHash of the first entry.
var auditZeroHash = make([]byte, 32)

// AppendAudit adds e at the end of the audit log and returns it as stored:
// Seq the last one plus one (1 for the first entry), At the database's clock
// at the append (microseconds, as timestamptz keeps them; a caller's At is
// ignored), PrevHash the last entry's hash (32 zero bytes for the first) and
// Hash controller.AuditHash of the result. Appends take turns on an advisory
// lock, so seqs are gapless and the chain never forks. Returns EINVALID naming
// the field for a missing action or outcome, an unknown role, a status
// outside 0..999, text that cannot be stored, or an action, target or detail
// that holds a phone number (see ContainsPhoneNumber).
func (s *Store) AppendAudit(ctx context.Context, e controller.AuditEntry) (controller.AuditEntry, error) {
	if err := checkAuditEntry(e); err != nil {
		return controller.AuditEntry{}, fmt.Errorf("appending audit entry: %w", err)
	}
	// Group commit: the entry joins whatever is waiting, one writer appends
	// the lot in one transaction and commits once, and every caller returns
	// only when its own entry is durable. Appends stay serialised (one
	// chain) without one commit per request.
	r := &auditReq{e: e, done: make(chan auditResult, 1)}
	g := &s.audit
	g.mu.Lock()
	g.pending = append(g.pending, r)
	start := !g.running
	g.running = true
	g.mu.Unlock()
	if start {
		go s.writeAudit()
	}
	select {
	case res := <-r.done:
		if res.err != nil {
			return controller.AuditEntry{}, fmt.Errorf("appending audit entry: %w", res.err)
		}
		return res.e, nil
	case <-ctx.Done():
		// The entry may still be written: it is in the queue.
		return controller.AuditEntry{}, fmt.Errorf("appending audit entry: %w", ctx.Err())
	}
}

// auditGroup queues audit appends for the writer.
type auditGroup struct {
	mu      sync.Mutex
	pending []*auditReq
	running bool // a writer goroutine is draining pending
}

type auditReq struct {
	e    controller.AuditEntry
	done chan auditResult
}

type auditResult struct {
	e   controller.AuditEntry
	err error
}

// auditBatchTimeout bounds one group's transaction.
const auditBatchTimeout = 30 * time.Second

// writeAudit appends queued entries, a group at a time, until none is
// left.
func (s *Store) writeAudit() {
	g := &s.audit
	for {
		g.mu.Lock()
		batch := g.pending
		g.pending = nil
		if len(batch) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), auditBatchTimeout)
		out, err := s.appendAuditGroup(ctx, batch)
		cancel()
		for i, r := range batch {
			if err != nil {
				r.done <- auditResult{err: translate(err)}
			} else {
				r.done <- auditResult{e: out[i]}
			}
		}
	}
}

// appendAuditGroup appends batch's entries, in order, in one transaction
// holding the log's lock.
func (s *Store) appendAuditGroup(ctx context.Context, batch []*auditReq) ([]controller.AuditEntry, error) {
	out := make([]controller.AuditEntry, len(batch))
	err := pgx.BeginTxFunc(ctx, s.db.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, auditLockSQL); err != nil {
			return err
		}
		// READ COMMITTED: this statement's snapshot is taken after the lock
		// was granted, so it sees the entry the previous holder committed.
		var (
			lastSeq  *int64
			lastHash []byte
			at       time.Time
		)
		err := tx.QueryRow(ctx, `
			SELECT l.seq, l.hash, clock_timestamp()
			FROM (SELECT 1) AS one
			LEFT JOIN LATERAL (SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1) AS l ON true`,
		).Scan(&lastSeq, &lastHash, &at)
		if err != nil {
			return err
		}
		seq, prev := int64(1), auditZeroHash
		if lastSeq != nil {
			seq, prev = *lastSeq+1, lastHash
		}
		b := &pgx.Batch{}
		for i, r := range batch {
			e := r.e
			e.At, e.Seq, e.PrevHash = at.UTC(), seq+int64(i), prev
			e.Hash = controller.AuditHash(e)
			prev = e.Hash
			out[i] = e
			b.Queue(`INSERT INTO audit_log (`+auditColumns+`)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
				e.Seq, e.At, e.TenantID, e.TokenID, string(e.Role), e.Action, e.Target, e.Outcome,
				e.Status, e.RequestID, e.Detail, e.PrevHash, e.Hash)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	return out, err
}

// checkAuditEntry returns an EINVALID error naming the field of e that
// cannot be appended. Messages never repeat the offending value.
func checkAuditEntry(e controller.AuditEntry) error {
	if e.Action == "" {
		return controller.FieldError("action", "is required")
	}
	if e.Outcome == "" {
		return controller.FieldError("outcome", "is required")
	}
	if e.Role != "" && !oneOf(e.Role, controller.Roles()) {
		return controller.FieldError("role", "must be one of %v", controller.Roles())
	}
	if e.Status < 0 || e.Status > 999 {
		return controller.FieldError("status", "must be an HTTP status or 0")
	}
	for _, f := range []struct{ name, v string }{{"tenant_id", e.TenantID}, {"token_id", e.TokenID},
		{"action", e.Action}, {"target", e.Target}, {"outcome", e.Outcome}, {"request_id", e.RequestID},
		{"detail", e.Detail}} {
		if err := checkStoredText(f.name, f.v); err != nil {
			return err
		}
	}
	for _, f := range []struct{ name, v string }{{"action", e.Action}, {"target", e.Target}, {"detail", e.Detail}} {
		if ContainsPhoneNumber(f.v) {
			return controller.FieldError(f.name, "must not hold a phone number: mask it (controller.MaskNumber)")
		}
	}
	return nil
}

// notPhone matches what looks like a long digit run but is not a phone
// number: UUIDs, RFC 3339 dates and times (with their offsets) and IPv4
// addresses. ContainsPhoneNumber blanks them out first.
var notPhone = regexp.MustCompile(`[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}` +
	`|\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:\d{2})?)?` +
	`|\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b`)

// phoneSeparators may stand between the digits of a written phone number.
const phoneSeparators = " -.()"

// ContainsPhoneNumber reports whether s holds what may be a full phone
// number: 7 or more digits in a row, or a '+' followed by 4 or more, once
// spaces, dashes, dots and parentheses between them are ignored
// ("+1 (555) 123-4567", "555.123.4567", "+4420"). It is the audit log's last
// line of defence; callers mask numbers before (controller.MaskNumber:
// "****4567" passes). Not numbers: UUIDs, RFC 3339 dates and times, IPv4
// addresses, and digits glued to a letter or '_' (parts of an identifier
// such as a hex token ID: "tok_3f81234567ab"). A count of a million or more
// is refused: write it with a unit ("1048576B") or thousands commas.
func ContainsPhoneNumber(s string) bool {
	r := []rune(notPhone.ReplaceAllString(s, "#"))
	isSep := func(c rune) bool { return strings.ContainsRune(phoneSeparators, c) }
	for i := 0; i < len(r); {
		if !unicode.IsDigit(r[i]) {
			i++
			continue
		}
		// r[i:j] is a maximal run of digits and separators starting with a
		// digit: its digit groups are the digits between separators.
		var digits, groups, first, last, cur int
		j := i
		for ; j < len(r) && (unicode.IsDigit(r[j]) || isSep(r[j])); j++ {
			switch {
			case unicode.IsDigit(r[j]):
				if cur == 0 {
					groups++
				}
				digits, cur = digits+1, cur+1
				last = cur
				if groups == 1 {
					first = cur
				}
			default:
				cur = 0
			}
		}
		lastDigit := j - 1
		for !unicode.IsDigit(r[lastDigit]) {
			lastDigit--
		}
		k := i - 1 // a '+' right before the run, or before its '('
		if k >= 0 && r[k] == '(' {
			k--
		}
		if k >= 0 && r[k] == '+' && digits >= 4 {
			return true
		}
		// A group glued to a letter is part of a word, not of a number.
		counted := digits
		if i > 0 && isWordRune(r[i-1]) {
			counted -= first
		}
		if lastDigit+1 < len(r) && isWordRune(r[lastDigit+1]) && (groups > 1 || counted == digits) {
			counted -= last
		}
		if counted >= 7 {
			return true
		}
		i = j
	}
	return false
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || r == '_' }

// ListAudit returns up to limit entries with a seq after afterSeq, oldest
// first, of a tenant ("" for every tenant, system entries included). Returns
// EINVALID naming the field for a limit outside 1..1000 or a negative
// afterSeq.
func (s *Store) ListAudit(ctx context.Context, tenant string, afterSeq int64, limit int) ([]controller.AuditEntry, error) {
	if limit < 1 || limit > 1000 {
		return nil, fmt.Errorf("listing audit entries: %w", controller.FieldError("limit", "must be 1 to 1000"))
	}
	if afterSeq < 0 {
		return nil, fmt.Errorf("listing audit entries: %w", controller.FieldError("after", "must not be negative"))
	}
	var (
		rows pgx.Rows
		err  error
	)
	if tenant == "" {
		rows, err = s.db.pool.Query(ctx, `SELECT `+auditColumns+` FROM audit_log
			WHERE seq > $1 ORDER BY seq LIMIT $2`, afterSeq, limit)
	} else {
		rows, err = s.db.pool.Query(ctx, `SELECT `+auditColumns+` FROM audit_log
			WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, tenant, afterSeq, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("listing audit entries: %w", translate(err))
	}
	entries, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (controller.AuditEntry, error) {
		return scanAudit(row)
	})
	if err != nil {
		return nil, fmt.Errorf("listing audit entries: %w", translate(err))
	}
	if entries == nil {
		entries = []controller.AuditEntry{}
	}
	return entries, nil
}

// auditWalkBatch is how many entries WalkAudit reads per query.
const auditWalkBatch = 1000

// WalkAudit calls fn with every entry of the audit log (every tenant) with a
// seq after afterSeq, in seq order, reading them in batches of 1000 by seq
// (one short query per batch: no long transaction, and fn may use the
// database). Entries appended during the walk are included. It stops at, and
// returns unwrapped, the first error of fn; returns a database error wrapped.
func (s *Store) WalkAudit(ctx context.Context, afterSeq int64, fn func(controller.AuditEntry) error) error {
	for {
		rows, err := s.db.pool.Query(ctx, `SELECT `+auditColumns+` FROM audit_log
			WHERE seq > $1 ORDER BY seq LIMIT $2`, afterSeq, auditWalkBatch)
		if err != nil {
			return fmt.Errorf("reading the audit log after seq %d: %w", afterSeq, translate(err))
		}
		batch, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (controller.AuditEntry, error) {
			return scanAudit(row)
		})
		if err != nil {
			return fmt.Errorf("reading the audit log after seq %d: %w", afterSeq, translate(err))
		}
		for _, e := range batch {
			if err := fn(e); err != nil {
				return err
			}
			afterSeq = e.Seq
		}
		if len(batch) < auditWalkBatch {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}
