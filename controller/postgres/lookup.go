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
	// One probe per list the tenant sees (dnc_index is list first), by
	// blind index and, for entries not yet moved from dnc_entries, by digits.
	dncHitsSQL = `SELECT l.id, l.kind FROM dnc_lists l
		WHERE (l.tenant_id = $2 OR l.tenant_id IS NULL) AND (
			EXISTS (SELECT 1 FROM dnc_index e WHERE e.list_ref = l.ref AND e.number_key = $3)
			OR EXISTS (SELECT 1 FROM dnc_entries e WHERE e.number = $1 AND e.list_ref = l.ref))
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
	exclude int64  // an attempt CountAttempts leaves out: the one being rechecked
	from    string // a caller ID whose ownership lock prefetches, if any
	hint    controller.LookupHint
	pd      controller.PersonalData // opens and indexes the numbers read
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
	ok         bool // lock ran: everything below was read, the optional parts as flagged
	consentsOK bool // consents was read (the hint did not skip it)
	consents   map[controller.Purpose]controller.Consent
	refusal    *controller.Refusal // the unlifted one lasting longest
	hitsOK     bool                // hits was read (the number is E.164)
	hits       []controller.DNCHit
	lists      []controller.DNCList
	horizon    time.Time
	allowed    []time.Time // allowed_at of the counted attempts since horizon
	allOK      bool        // allowed holds all of them
	from       string      // a caller ID whose ownership was read, if any
	owned      bool
}

// lock begins the transaction with begin (beginReadWrite or beginReadOnly;
// none if empty), takes the number's lock and reads what the rules ask
// about it, all in one round trip: see lockAll.
func (l *txLookup) lock(ctx context.Context, begin string) error {
	return lockAll(ctx, l.tx, begin, []*txLookup{l})
}

// lockAll begins the transaction tx with begin (none if empty), takes the
// locks of the numbers of ls — which must all be different and share tx — in
// the order of their lock keys, so that two batches never wait for each
// other in a cycle, and reads for each what the rules ask about it: the
// newest consent per purpose, the longest refusal, the do-not-call hits and
// lists, the recent attempts, and whether the tenant owns the caller ID
// from (if set). One round trip whatever the size of ls; each read is one
// statement for all of ls and runs after every lock is granted, on a fresh
// snapshot.
func lockAll(ctx context.Context, tx *numberTx, begin string, ls []*txLookup) error {
	n := len(ls)
	var (
		tenants, numbers = make([]string, n), make([]string, n)
		excludes         = make([]int64, n)
		digits           []int64
		digitPos         []int // position in ls of each of digits
		fromTenants      []string
		froms            []string
		consentTenants   []string
		consentNumbers   []string
		consentPos       []int // position in ls of each of consentNumbers
		byNumber         = make(map[string]*txLookup, n)
		byDigits         = make(map[int64]*txLookup, n)
		horizon          = time.Now().Add(-prefetchHorizon)
	)
	for i, l := range ls {
		if _, dup := byNumber[l.number]; dup {
			return controller.Errorf(controller.EINTERNAL, "one batch locks %s twice", controller.MaskNumber(l.number))
		}
		byNumber[l.number] = l
		tenants[i], numbers[i], excludes[i] = l.tenant, l.number, l.exclude
		l.pre = prefetched{consents: map[controller.Purpose]controller.Consent{}, horizon: horizon,
			lists: []controller.DNCList{}}
		if d, ok := e164Digits(l.number); ok {
			digits, digitPos = append(digits, d), append(digitPos, i)
			byDigits[d] = l
			l.pre.hitsOK, l.pre.hits = true, []controller.DNCHit{}
		}
		if l.from != "" && !l.hint.NoCallerID {
			fromTenants, froms = append(fromTenants, l.tenant), append(froms, l.from)
			l.pre.from = l.from
		}
		if !l.hint.NoConsents {
			consentTenants, consentNumbers = append(consentTenants, l.tenant), append(consentNumbers, l.number)
			consentPos = append(consentPos, i)
			l.pre.consentsOK = true
		}
	}
	pd := ls[0].pd
	indexes, err := numberIndexes(pd, numbers)
	if err != nil {
		return fmt.Errorf("locking %d numbers: %w", n, err)
	}
	consentIndexes := make([][]byte, len(consentPos))
	for k, i := range consentPos {
		consentIndexes[k] = indexes[i]
	}
	b := &pgx.Batch{}
	if begin != "" {
		b.Queue(begin)
		b.Queue(genericPlans)
	}
	b.Queue(lockNumbersSQL, numbers)
	if len(consentNumbers) > 0 {
		// Sealed rows by their index; rows from before numbers were sealed
		// (until a controller seals them at start) by their clear number.
		// Two index probes each, not an OR the planner cannot index.
		b.Queue(`SELECT DISTINCT ON (u.tenant, u.number, k.purpose) `+consentColumnsOf("k")+`
			FROM unnest($1::text[], $2::text[], $3::bytea[]) AS u(tenant, number, idx)
			CROSS JOIN LATERAL (
				SELECT * FROM consents c WHERE c.tenant_id = u.tenant AND c.number_index = u.idx
				UNION ALL
				SELECT * FROM consents c WHERE c.tenant_id = u.tenant AND c.number = u.number) k
			ORDER BY u.tenant, u.number, k.purpose, k.given_at DESC`, consentTenants, consentNumbers, consentIndexes,
		).Query(func(rows pgx.Rows) error {
			_, err := collectEach(rows, func(r pgx.Row) (controller.Consent, error) { return scanConsent(pd, r) }, func(c controller.Consent) {
				if l := byNumber[c.Number]; l != nil && l.tenant == c.TenantID {
					l.pre.consents[c.Purpose] = c
				}
			})
			return err
		})
	}
	b.Queue(`SELECT DISTINCT ON (u.number) `+refusalColumnsOf("r")+`
		FROM unnest($1::text[], $2::bytea[]) AS u(number, idx)
		CROSS JOIN LATERAL (
			SELECT * FROM refusals x WHERE x.number_index = u.idx AND x.lifted_at IS NULL
			UNION ALL
			SELECT * FROM refusals x WHERE x.number = u.number AND x.lifted_at IS NULL) r
		ORDER BY u.number, r.until DESC NULLS FIRST`, numbers, indexes).Query(func(rows pgx.Rows) error {
		_, err := collectEach(rows, func(r pgx.Row) (controller.Refusal, error) { return scanRefusal(pd, r) }, func(r controller.Refusal) {
			if l := byNumber[r.Number]; l != nil {
				l.pre.refusal = &r
			}
		})
		return err
	})
	if len(digits) > 0 {
		// By index, one probe per list; entries from before (until a
		// controller moves them at start) by their digits. In list order.
		keys := make([]int64, len(digits))
		byKey := make(map[int64]*txLookup, len(digits))
		for k, i := range digitPos {
			keys[k] = dncKey(indexes[i])
			byKey[keys[k]] = ls[i]
		}
		b.Queue(`SELECT e.key, e.digits, coalesce(l.tenant_id, ''), l.id, l.kind
			FROM dnc_lists l CROSS JOIN LATERAL (
				SELECT number_key AS key, NULL::bigint AS digits FROM dnc_index
				WHERE list_ref = l.ref AND number_key = ANY($1::bigint[])
				UNION ALL
				SELECT NULL, number FROM dnc_entries
				WHERE list_ref = l.ref AND number = ANY($3::bigint[])) e
			WHERE l.tenant_id = ANY($2::text[]) OR l.tenant_id IS NULL
			ORDER BY l.id`, keys, tenants, digits).Query(func(rows pgx.Rows) error {
			var (
				key, number *int64
				tenant      string
				h           controller.DNCHit
			)
			_, err := pgx.ForEachRow(rows, []any{&key, &number, &tenant, &h.ListID, &h.ListKind}, func() error {
				var l *txLookup
				switch {
				case key != nil:
					l = byKey[*key]
				case number != nil:
					l = byDigits[*number]
				}
				if l == nil || (tenant != "" && tenant != l.tenant) {
					return nil
				}
				// Found both ways (an older controller added the digits
				// again): one hit.
				if n := len(l.pre.hits); n == 0 || l.pre.hits[n-1].ListID != h.ListID {
					l.pre.hits = append(l.pre.hits, h)
				}
				return nil
			})
			return err
		})
	}
	b.Queue(`SELECT `+dncListColumns+` FROM dnc_lists
		WHERE tenant_id = ANY($1::text[]) OR tenant_id IS NULL ORDER BY id`, tenants,
	).Query(func(rows pgx.Rows) error {
		_, err := collectEach(rows, scanDNCList, func(d controller.DNCList) {
			for _, l := range ls {
				if d.TenantID == "" || d.TenantID == l.tenant {
					l.pre.lists = append(l.pre.lists, d)
				}
			}
		})
		return err
	})
	// By index; attempts from before numbers were sealed by their clear
	// number (until a controller seals them at start).
	b.Queue(`SELECT u.number, x.allowed_at FROM unnest($1::text[], $2::bigint[], $5::bytea[]) AS u(number, exclude, idx)
		CROSS JOIN LATERAL (
			(SELECT allowed_at FROM attempts
			WHERE to_index = u.idx AND allowed_at >= $3
				AND status IN ('queued', 'claimed', 'sent', 'done') AND id <> u.exclude
			LIMIT $4)
			UNION ALL
			(SELECT allowed_at FROM attempts
			WHERE to_number = u.number AND allowed_at >= $3
				AND status IN ('queued', 'claimed', 'sent', 'done') AND id <> u.exclude
			LIMIT $4)) x`, numbers, excludes, horizon, prefetchAttempts+1, indexes,
	).Query(func(rows pgx.Rows) error {
		var (
			number string
			at     time.Time
		)
		_, err := pgx.ForEachRow(rows, []any{&number, &at}, func() error {
			if l := byNumber[number]; l != nil {
				l.pre.allowed = append(l.pre.allowed, at)
			}
			return nil
		})
		return err
	})
	if len(froms) > 0 {
		b.Queue(`SELECT u.tenant, u.number FROM unnest($1::text[], $2::text[]) AS u(tenant, number)
			WHERE EXISTS (SELECT 1 FROM owned_numbers o WHERE o.tenant_id = u.tenant AND o.number = u.number)`,
			fromTenants, froms).Query(func(rows pgx.Rows) error {
			var tenant, from string
			_, err := pgx.ForEachRow(rows, []any{&tenant, &from}, func() error {
				for _, l := range ls {
					if l.tenant == tenant && l.from == from {
						l.pre.owned = true
					}
				}
				return nil
			})
			return err
		})
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		for _, l := range ls {
			l.pre = prefetched{}
		}
		return fmt.Errorf("locking %d numbers: %w", n, translate(err))
	}
	for _, l := range ls {
		l.pre.allOK = len(l.pre.allowed) <= prefetchAttempts
		l.pre.ok = true
	}
	return nil
}

// lockNumbersSQL takes the locks of the numbers $1 in lock-key order (the
// subquery's order is the order the locks are taken in). See lockNumberSQL.
const lockNumbersSQL = `SELECT pg_advisory_xact_lock(k) FROM (
	SELECT DISTINCT hashtextextended('callgate number ' || current_schema() || ' ' || n, 0) AS k
	FROM unnest($1::text[]) AS n ORDER BY k) keys`

// collectEach scans every row of rows with scan and hands it to fn.
func collectEach[T any](rows pgx.Rows, scan func(pgx.Row) (T, error), fn func(T)) (int, error) {
	defer rows.Close()
	n := 0
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return n, err
		}
		fn(v)
		n++
	}
	return n, rows.Err()
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
	if number == l.number && l.pre.consentsOK {
		if c, ok := l.pre.consents[purpose]; ok {
			return &c, nil
		}
		return nil, nil
	}
	index, err := numberIndexOf(l.pd, number)
	if err != nil {
		return nil, fmt.Errorf("looking up consent: %w", err)
	}
	c, err := scanConsent(l.pd, l.tx.QueryRow(ctx, `SELECT `+consentColumnsOf("k")+` FROM (
			SELECT * FROM consents WHERE tenant_id = $1 AND number_index = $4 AND purpose = $3
			UNION ALL
			SELECT * FROM consents WHERE tenant_id = $1 AND number = $2 AND purpose = $3) k
		ORDER BY k.given_at DESC LIMIT 1`, tenant, number, string(purpose), index))
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
	if l.pd == nil {
		return nil, fmt.Errorf("looking up do-not-call lists: %w", errNoPersonalData)
	}
	index, err := l.pd.NumberIndex(number)
	if err != nil {
		return nil, fmt.Errorf("looking up do-not-call lists: %w", err)
	}
	rows, err := l.tx.Query(ctx, dncHitsSQL, digits, tenant, dncKey(index))
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
	index, err := numberIndexOf(l.pd, number)
	if err != nil {
		return 0, fmt.Errorf("counting attempts: %w", err)
	}
	var n int
	err = l.tx.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM attempts
			WHERE to_index = $4 AND allowed_at >= $2 AND status IN ('queued', 'claimed', 'sent', 'done') AND id <> $3)
		+ (SELECT count(*) FROM attempts
			WHERE to_number = $1 AND allowed_at >= $2 AND status IN ('queued', 'claimed', 'sent', 'done') AND id <> $3)`, number, since, l.exclude, index).Scan(&n)
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
