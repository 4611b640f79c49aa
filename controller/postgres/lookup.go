package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/callgate/callgate/controller"
)

var _ controller.Lookup = (*txLookup)(nil)

// The Lookup queries shared by the methods and lock.
const (
	dncHitsSQL = `SELECT l.id, l.kind FROM dnc_entries e JOIN dnc_lists l ON l.ref = e.list_ref
		WHERE e.number = $1 AND (l.tenant_id = $2 OR l.tenant_id IS NULL)
		ORDER BY l.id`
	callerIDOwnedSQL = `SELECT EXISTS (SELECT 1 FROM owned_numbers WHERE tenant_id = $1 AND number = $2)`
)

func collectDNCHits(rows pgx.Rows) ([]controller.DNCHit, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (controller.DNCHit, error) {
		var h controller.DNCHit
		err := row.Scan(&h.ListID, &h.ListKind)
		return h, err
	})
}

// txLookup is controller.Lookup inside the transaction of one decision,
// which holds the lock of number. Each method is one indexed query; lock
// reads what the rules will ask about the number in the same round trip
// that takes the lock, and the methods answer from that when they can. It is
// bound to the decision's tenant (an empty tenant argument means that one;
// another is an error) and, for the lock-protected reads — refusals and the
// frequency-cap count — to the locked number, so that a rule can never read
// outside what the lock makes exact.
type txLookup struct {
	tx      *numberTx
	tenant  string
	number  string
	exclude int64 // an attempt CountAttempts leaves out: the one being rechecked
	pre     prefetched
}

// Prefetched attempts: the allowed_at of those since horizon before the
// decision, up to a limit (CountAttempts queries beyond either).
const (
	prefetchHorizon  = 8 * 24 * time.Hour
	prefetchAttempts = 1000
)

// prefetched is what lock read about the decision's number and tenant,
// under the lock: exactly what the methods' own queries would return, since
// every write they could see takes the same lock or does not matter within
// one decision.
type prefetched struct {
	ok       bool // lock ran: everything below was read, the optional parts as flagged
	consents map[controller.Purpose]controller.Consent
	refusal  *controller.Refusal // the unlifted one lasting longest
	hitsOK   bool                // hits was read (the number is E.164)
	hits     []controller.DNCHit
	lists    []controller.DNCList
	horizon  time.Time
	allowed  []time.Time // allowed_at of the counted attempts since horizon
	allOK    bool        // allowed holds all of them
	from     string      // a caller ID whose ownership was read, if any
	owned    bool
}

// lock begins the transaction with begin (beginReadWrite or beginReadOnly;
// none if empty), takes the number's lock and reads what the rules ask
// about it, all in one round trip: the newest consent per purpose, the
// longest refusal, the do-not-call hits and lists, the recent attempts, and
// whether the tenant owns the caller ID from (if not empty). The reads run
// after the lock is granted, each on a fresh snapshot.
func (l *txLookup) lock(ctx context.Context, begin, from string) error {
	pre := prefetched{consents: map[controller.Purpose]controller.Consent{},
		horizon: time.Now().Add(-prefetchHorizon)}
	b := &pgx.Batch{}
	if begin != "" {
		b.Queue(begin)
	}
	b.Queue(lockNumberSQL, l.number)
	b.Queue(`SELECT DISTINCT ON (purpose) `+consentColumns+` FROM consents
		WHERE tenant_id = $1 AND number = $2 ORDER BY purpose, given_at DESC`, l.tenant, l.number,
	).Query(func(rows pgx.Rows) error {
		consents, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (controller.Consent, error) {
			return scanConsent(row)
		})
		for _, c := range consents {
			pre.consents[c.Purpose] = c
		}
		return err
	})
	b.Queue(`SELECT `+refusalColumns+` FROM refusals WHERE number = $1 AND lifted_at IS NULL
		ORDER BY until DESC NULLS FIRST LIMIT 1`, l.number).Query(func(rows pgx.Rows) error {
		r, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (controller.Refusal, error) {
			return scanRefusal(row)
		})
		if len(r) > 0 {
			pre.refusal = &r[0]
		}
		return err
	})
	if digits, ok := e164Digits(l.number); ok {
		b.Queue(dncHitsSQL, digits, l.tenant).Query(func(rows pgx.Rows) error {
			var err error
			pre.hits, err = collectDNCHits(rows)
			pre.hitsOK = err == nil
			return err
		})
	}
	b.Queue(dncListsSQL, l.tenant).Query(func(rows pgx.Rows) error {
		var err error
		pre.lists, err = collectDNCLists(rows)
		return err
	})
	b.Queue(`SELECT allowed_at FROM attempts
		WHERE to_number = $1 AND allowed_at >= $2 AND status IN ('queued', 'claimed', 'sent', 'done')
			AND id <> $3
		LIMIT $4`, l.number, pre.horizon, l.exclude, prefetchAttempts+1).Query(func(rows pgx.Rows) error {
		var err error
		pre.allowed, err = pgx.CollectRows(rows, pgx.RowTo[time.Time])
		pre.allOK = err == nil && len(pre.allowed) <= prefetchAttempts
		return err
	})
	if from != "" {
		b.Queue(callerIDOwnedSQL, l.tenant, from).QueryRow(func(row pgx.Row) error {
			pre.from = from
			return row.Scan(&pre.owned)
		})
	}
	if err := l.tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("locking number: %w", translate(err))
	}
	pre.ok = true
	l.pre = pre
	return nil
}

// errNotLocked is returned by a Lookup used before its number was locked or
// after its decision ended: answering from nothing, or from what the lock no
// longer protects, would fail open.
var errNotLocked = controller.Errorf(controller.EINTERNAL, "lookup used outside the decision holding the number's lock")

// close ends the lookup's use: its methods fail from now on.
func (l *txLookup) close() { l.pre = prefetched{} }

func (l *txLookup) bindTenant(tenant string) (string, error) {
	if !l.pre.ok {
		return "", errNotLocked
	}
	switch tenant {
	case "", l.tenant:
		return l.tenant, nil
	}
	return "", controller.Errorf(controller.EINVALID, "lookup for tenant %q in a decision for tenant %q", tenant, l.tenant)
}

func (l *txLookup) bindNumber(number string) error {
	if !l.pre.ok {
		return errNotLocked
	}
	if number != l.number {
		return controller.Errorf(controller.EINVALID, "lookup for %s in a decision locking %s",
			controller.MaskNumber(number), controller.MaskNumber(l.number))
	}
	return nil
}

// ActiveConsent returns the newest consent (by given_at) of the tenant for
// number and purpose, whatever its expiry or revocation, or nil if there is
// none.
func (l *txLookup) ActiveConsent(ctx context.Context, tenant, number string, purpose controller.Purpose) (*controller.Consent, error) {
	tenant, err := l.bindTenant(tenant)
	if err != nil {
		return nil, fmt.Errorf("looking up consent: %w", err)
	}
	if number == l.number {
		if c, ok := l.pre.consents[purpose]; ok {
			return &c, nil
		}
		return nil, nil
	}
	c, err := scanConsent(l.tx.QueryRow(ctx, `SELECT `+consentColumns+` FROM consents
		WHERE tenant_id = $1 AND number = $2 AND purpose = $3
		ORDER BY given_at DESC LIMIT 1`, tenant, number, string(purpose)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking up consent: %w", translate(err))
	}
	return &c, nil
}

// ActiveRefusal returns the refusal of number in force at at — not lifted,
// and until after at or forever — lasting longest, or nil. A refusal counts
// from the moment it is stored, whatever its own time says, so clock skew
// between controllers can never let a call through after a refusal
// committed.
func (l *txLookup) ActiveRefusal(ctx context.Context, number string, at time.Time) (*controller.Refusal, error) {
	if err := l.bindNumber(number); err != nil {
		return nil, fmt.Errorf("looking up refusal: %w", err)
	}
	// The longest refusal is in force at at if any is.
	if r := l.pre.refusal; r != nil && (r.Until == nil || r.Until.After(at)) {
		c := *r
		return &c, nil
	}
	return nil, nil
}

// DNCHits returns the lists of the tenant, and the global ones, that hold
// number, ordered by list ID. Returns EINVALID if number is not E.164.
func (l *txLookup) DNCHits(ctx context.Context, tenant, number string) ([]controller.DNCHit, error) {
	tenant, err := l.bindTenant(tenant)
	if err != nil {
		return nil, fmt.Errorf("looking up do-not-call lists: %w", err)
	}
	if l.pre.hitsOK && number == l.number {
		return slices.Clone(l.pre.hits), nil
	}
	digits, ok := e164Digits(number)
	if !ok {
		return nil, fmt.Errorf("looking up do-not-call lists: %w", checkE164("number", number))
	}
	rows, err := l.tx.Query(ctx, dncHitsSQL, digits, tenant)
	if err != nil {
		return nil, fmt.Errorf("looking up do-not-call lists: %w", translate(err))
	}
	hits, err := collectDNCHits(rows)
	if err != nil {
		return nil, fmt.Errorf("looking up do-not-call lists: %w", translate(err))
	}
	return hits, nil
}

// DNCLists returns the tenant's lists and the global ones, ordered by ID.
func (l *txLookup) DNCLists(ctx context.Context, tenant string) ([]controller.DNCList, error) {
	tenant, err := l.bindTenant(tenant)
	if err != nil {
		return nil, fmt.Errorf("listing do-not-call lists: %w", err)
	}
	return slices.Clone(l.pre.lists), nil
}

// CountAttempts counts the attempts to number, in any tenant, that the gate
// allowed at or after since (the time each reserved its slot) and that were
// not blocked or canceled since: queued, claimed, sent or done. The attempt
// being rechecked, if any, is left out.
func (l *txLookup) CountAttempts(ctx context.Context, number string, since time.Time) (int, error) {
	if err := l.bindNumber(number); err != nil {
		return 0, fmt.Errorf("counting attempts: %w", err)
	}
	if l.pre.allOK && !since.Before(l.pre.horizon) {
		n := 0
		for _, at := range l.pre.allowed {
			if !at.Before(since) {
				n++
			}
		}
		return n, nil
	}
	var n int
	err := l.tx.QueryRow(ctx, `
		SELECT count(*) FROM attempts
		WHERE to_number = $1 AND allowed_at >= $2 AND status IN ('queued', 'claimed', 'sent', 'done')
			AND id <> $3`, number, since, l.exclude).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting attempts: %w", translate(err))
	}
	return n, nil
}

// CallerIDOwned reports whether the tenant registered number as its own.
func (l *txLookup) CallerIDOwned(ctx context.Context, tenant, number string) (bool, error) {
	tenant, err := l.bindTenant(tenant)
	if err != nil {
		return false, fmt.Errorf("looking up caller ID: %w", err)
	}
	if l.pre.from != "" && number == l.pre.from {
		return l.pre.owned, nil
	}
	var owned bool
	err = l.tx.QueryRow(ctx, callerIDOwnedSQL, tenant, number).Scan(&owned)
	if err != nil {
		return false, fmt.Errorf("looking up caller ID: %w", translate(err))
	}
	return owned, nil
}
