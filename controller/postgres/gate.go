package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/callgate/callgate/controller"
)

// DecideFunc runs the compliance gate on one attempt, reading what it needs
// through l. The store calls it inside the transaction that holds the
// number's lock, so it must be quick and must not use the store or its pool
// itself: every pooled connection may be held by a decision waiting for the
// same lock. Slow outside lookups (an HLR query) belong before the call. l
// fails once the function has returned.
type DecideFunc = func(ctx context.Context, l controller.Lookup) (controller.Decision, error)

// Synthetic call event kinds written by the gate and the refusal lock.
const (
	eventComplianceBlocked controller.EventKind = "compliance_blocked"
	eventRefusalCanceled   controller.EventKind = "refusal_canceled"
)

// lockNumberSQL takes the transaction-scoped advisory lock of an E.164
// number in the current schema. Every decision about a number, every attempt
// it allows and every refusal of it happen under this lock, so they are
// serialised across all controller processes sharing the database. A hash
// collision between two numbers only makes them wait for each other.
const lockNumberSQL = `SELECT pg_advisory_xact_lock(hashtextextended('callgate number ' || current_schema() || ' ' || $1::text, 0))`

// Gate runs fn for number, a dry run: in a read-only transaction holding the
// number's lock, with a Lookup bound to that transaction and to tenant
// (default if empty), and returns its decision. Nothing is written. Returns
// EINVALID if number is not E.164, and fn's error (wrapped) if it fails.
func (s *Store) Gate(ctx context.Context, tenant, number string, fn DecideFunc) (controller.Decision, error) {
	if err := checkE164("number", number); err != nil {
		return controller.Decision{}, fmt.Errorf("checking number: %w", err)
	}
	if tenant == "" {
		tenant = controller.DefaultTenant
	}
	tx, err := s.acquireTx(ctx)
	if err != nil {
		return controller.Decision{}, fmt.Errorf("checking %s: %w", controller.MaskNumber(number), err)
	}
	defer tx.release()
	l := &txLookup{tx: tx, tenant: tenant, number: number, hint: controller.LookupHintFrom(ctx), pd: s.pd}
	if err := l.lock(ctx, beginReadOnly); err != nil {
		return controller.Decision{}, fmt.Errorf("checking %s: %w", controller.MaskNumber(number), err)
	}
	d, err := runDecide(ctx, fn, l)
	if err != nil {
		return controller.Decision{}, fmt.Errorf("checking %s: deciding: %w", controller.MaskNumber(number), err)
	}
	if err := tx.commit(ctx, nil); err != nil {
		return controller.Decision{}, fmt.Errorf("checking %s: %w", controller.MaskNumber(number), translate(err))
	}
	return d, nil
}

// CreateCallGated is CreateCall with the compliance gate in the same
// transaction. It takes the lock of c.To (which must be E.164), runs decide
// with a Lookup bound to the transaction and to c's tenant, and writes the
// call with its attempt and decision: queued if allowed — the attempt then
// holds a frequency-cap slot, so the count decide saw and the new attempt are
// atomic — or, if blocked, in the terminal state "blocked" with the reasons
// stored on the attempt and no notification to the dialers. created is true
// whenever a new call was written, blocked or not.
//
// Idempotency is CreateCall's: a key used before with the same requestHash
// returns the first call, the decision stored with it and created=false
// without running decide; with another hash it returns ECONFLICT. Returns
// EINVALID for a malformed ID or a c.To that is not E.164, EINVALID naming
// tenant_id for an unknown tenant, and decide's error (wrapped) if it fails,
// in which case nothing is written.
//
// Concurrent creations share transactions (create_group.go): decide then
// runs in a writer goroutine, with ctx's values but not its cancellation
// once the group has started, and the call returns when its group has
// committed.
func (s *Store) CreateCallGated(ctx context.Context, c controller.Call, requestHash string, decide DecideFunc) (controller.Call, bool, controller.Decision, error) {
	c, vars, err := prepareCall(c)
	if err != nil {
		return c, false, controller.Decision{}, fmt.Errorf("creating call: %w", err)
	}
	if err := checkE164("to", c.To); err != nil {
		return c, false, controller.Decision{}, fmt.Errorf("creating call %s: %w", c.ID, err)
	}
	for range 3 { // a key can vanish between the insert and the lookup only if deleted
		if c.IdempotencyKey != "" {
			existing, d, found, err := s.idempotentCall(ctx, c.TenantID, c.IdempotencyKey, requestHash)
			if err != nil || found {
				return existing, false, d, err
			}
		}
		created, d, err := s.createGatedGrouped(ctx, &c, vars, requestHash, decide)
		if err != nil || created {
			return c, created, d, err
		}
	}
	return c, false, controller.Decision{}, fmt.Errorf("creating call: %w",
		controller.Errorf(controller.ECONFLICT, "Idempotency-Key is being reused concurrently, try again"))
}

// encodeStoredDecision encodes d as stored with its attempt: without the
// callee's number — not even its key — which the call holds sealed (readers
// put it back). (With an empty "number" every stored decision looked like
// one from before sealing, and every start rewrote them all.)
func encodeStoredDecision(d controller.Decision) ([]byte, error) {
	return json.Marshal(struct {
		controller.Decision
		Number string `json:"number,omitempty"` // hides the Decision's
	}{Decision: d})
}

// blockReasons returns the reason codes to store for a blocking decision:
// its Reasons, or those of its blocking verdicts if it names none.
func blockReasons(d controller.Decision) []string {
	if len(d.Reasons) > 0 {
		return d.Reasons
	}
	reasons := []string{}
	for _, v := range d.Verdicts {
		if (!v.Allow || v.Review) && v.Reason != "" {
			reasons = append(reasons, v.Reason)
		}
	}
	return reasons
}

// prepareCall fills in a new call's ID and tenant and encodes its variables,
// as CreateCall does.
func prepareCall(c controller.Call) (controller.Call, []byte, error) {
	if c.ID == "" {
		c.ID = controller.CallID(uuid.NewString())
	} else if _, err := uuid.Parse(string(c.ID)); err != nil {
		return c, nil, controller.FieldError("id", "not a UUID: %q", c.ID)
	}
	if c.TenantID == "" {
		c.TenantID = controller.DefaultTenant
	}
	if len(c.Variables) == 0 {
		return c, nil, nil
	}
	vars, err := json.Marshal(c.Variables)
	if err != nil {
		return c, nil, fmt.Errorf("encoding variables of call %s: %w", c.ID, err)
	}
	return c, vars, nil
}

// idempotentCall looks up the call created with an idempotency key and the
// decision stored with it. found is false if the key is unused; ECONFLICT if
// it was used with another request hash.
func (s *Store) idempotentCall(ctx context.Context, tenant, key, requestHash string) (controller.Call, controller.Decision, bool, error) {
	var (
		hash string
		raw  []byte
		d    controller.Decision
	)
	existing, err := s.scanCall(s.db.pool.QueryRow(ctx, `
		SELECT `+callColumns+`, k.request_hash, a.decision
		FROM idempotency_keys k JOIN calls c ON c.id = k.call_id
		LEFT JOIN attempts a ON a.call_id = c.id
		WHERE k.tenant_id = $1 AND k.key = $2`, tenant, key), &hash, &raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return existing, d, false, nil
	}
	if err != nil {
		return existing, d, false, fmt.Errorf("creating call: looking up idempotency key: %w", translate(err))
	}
	if hash != requestHash {
		return existing, d, false, fmt.Errorf("creating call: %w",
			controller.Errorf(controller.ECONFLICT, "Idempotency-Key was used with a different request"))
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &d); err != nil {
			return existing, d, false, fmt.Errorf("decoding decision of call %s: %w", existing.ID, err)
		}
		if d.Number == "" {
			d.Number = existing.To // stored without it (encodeStoredDecision)
		}
	}
	return existing, d, true, nil
}

// RecheckAttempt runs the gate again on one queued call just before it is
// originated: RecheckAttempts for a call read by ID. Returns ENOTFOUND if
// the call does not exist, ECONFLICT if it is no longer queued.
func (s *Store) RecheckAttempt(ctx context.Context, id controller.CallID, decide DecideFunc) (controller.Decision, error) {
	if _, err := uuid.Parse(string(id)); err != nil {
		return controller.Decision{}, notFound(id)
	}
	c, err := s.scanCall(s.db.pool.QueryRow(ctx, `SELECT `+callColumns+` FROM calls c WHERE c.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return controller.Decision{}, fmt.Errorf("rechecking call: %w", notFound(id))
	}
	if err != nil {
		return controller.Decision{}, fmt.Errorf("rechecking call %s: %w", id, translate(err))
	}
	if c.State != controller.CallQueued {
		return controller.Decision{}, fmt.Errorf("rechecking call %s: %w", id,
			controller.Errorf(controller.ECONFLICT, "call is %s, not queued", c.State))
	}
	r := s.RecheckAttempts(ctx, []controller.Recheck{{Call: c, Decide: decide}})[0]
	return r.Decision, r.Err
}

// RecheckAttempts runs the gate again on claimed calls just before they are
// originated (the dial-time check), a batch at a time: one transaction
// takes the locks of all their numbers, reads what the rules ask about each
// in one round trip, runs each call's Decide with a Lookup bound to that
// transaction, its number and its tenant — whose CountAttempts leaves the
// call's own attempt out, so a cap rule reads the same at both stages — and
// stores every decision in one more round trip with the COMMIT. A call to a
// number already in the batch waits for the next transaction, so each
// decision sees what the one before it about the same number wrote.
//
// A block makes the call blocked, its attempt blocked with the reasons, and
// a call event records it; an allow moves the attempt's cap slot to now.
// Both happen only while the call is still queued (its attempt queued or
// claimed). The results follow the batch's order. A result's error means
// its call must not be originated: ECONFLICT (with the decision, if one was
// taken) if the call left the queue meanwhile, Decide's error (wrapped) if
// it failed, in which case nothing was written for that call, and any
// database error, in which case nothing was written for the calls of that
// transaction.
func (s *Store) RecheckAttempts(ctx context.Context, batch []controller.Recheck) []controller.RecheckResult {
	res := make([]controller.RecheckResult, len(batch))
	todo := make([]int, 0, len(batch))
	for i, r := range batch {
		if err := checkE164("to", r.Call.To); err != nil {
			res[i].Err = fmt.Errorf("rechecking call %s: %w", r.Call.ID, err)
			continue
		}
		todo = append(todo, i)
	}
	for len(todo) > 0 {
		var round, later []int
		seen := make(map[string]bool, len(todo))
		for _, i := range todo {
			if n := batch[i].Call.To; seen[n] {
				later = append(later, i)
			} else {
				seen[n] = true
				round = append(round, i)
			}
		}
		s.recheckRound(ctx, batch, round, res)
		todo = later
	}
	return res
}

// recheckRound is one transaction of RecheckAttempts, for the calls idx of
// batch, whose numbers are all different.
func (s *Store) recheckRound(ctx context.Context, batch []controller.Recheck, idx []int, res []controller.RecheckResult) {
	fail := func(err error) {
		for _, i := range idx {
			if res[i].Err == nil {
				res[i].Err = fmt.Errorf("rechecking call %s: %w", batch[i].Call.ID, err)
			}
		}
	}
	tx, err := s.acquireTx(ctx)
	if err != nil {
		fail(err)
		return
	}
	defer tx.release()
	ls := make([]*txLookup, len(idx))
	for k, i := range idx {
		c := batch[i].Call
		if c.TenantID == "" {
			c.TenantID = controller.DefaultTenant
		}
		ls[k] = &txLookup{tx: tx, tenant: c.TenantID, number: c.To, exclude: c.AttemptID, from: c.From, hint: batch[i].Hint, pd: s.pd}
	}
	if err := lockAll(ctx, tx, beginReadWrite, ls); err != nil {
		fail(err)
		return
	}
	var allowIDs, allowRaw, blockIDs, blockRaw, blockReasonsRaw, blockEvents []string
	for k, i := range idx {
		id := batch[i].Call.ID
		d, err := runDecide(ctx, batch[i].Decide, ls[k])
		res[i].Decision = d
		if err == nil && d.Number != "" && d.Number != batch[i].Call.To {
			err = controller.Errorf(controller.EINTERNAL, "the decision is about %s, the call is to %s",
				controller.MaskNumber(d.Number), controller.MaskNumber(batch[i].Call.To))
		}
		if err != nil {
			res[i].Err = fmt.Errorf("rechecking call %s: deciding: %w", id, err)
			continue
		}
		raw, err := encodeStoredDecision(d)
		if err != nil {
			res[i].Err = fmt.Errorf("rechecking call %s: encoding decision: %w", id, err)
			continue
		}
		if d.Allow {
			allowIDs, allowRaw = append(allowIDs, string(id)), append(allowRaw, string(raw))
			continue
		}
		reasons, err := json.Marshal(blockReasons(d))
		if err != nil {
			res[i].Err = fmt.Errorf("rechecking call %s: encoding reasons: %w", id, err)
			continue
		}
		ev, err := json.Marshal(controller.ChannelEvent{CallID: id, Kind: eventComplianceBlocked,
			At: time.Now(), Detail: joinReasons(blockReasons(d))})
		if err != nil {
			res[i].Err = fmt.Errorf("rechecking call %s: encoding event: %w", id, err)
			continue
		}
		blockIDs, blockRaw = append(blockIDs, string(id)), append(blockRaw, string(raw))
		blockReasonsRaw, blockEvents = append(blockReasonsRaw, string(reasons)), append(blockEvents, string(ev))
	}
	stored := map[string]bool{}
	collect := func(rows pgx.Rows) error {
		var id string
		_, err := pgx.ForEachRow(rows, []any{&id}, func() error { stored[id] = true; return nil })
		return err
	}
	b := &pgx.Batch{}
	if len(blockIDs) == 0 {
		// No need to wait for this commit's flush: the durable
		// MarkOriginating that must precede any originate comes later in
		// the WAL, so flushing it flushes this too; a crash before then
		// loses only decisions that are taken again. A block is final and
		// is flushed at once.
		b.Queue(`SET LOCAL synchronous_commit = off`)
	}
	if len(allowIDs) > 0 {
		b.Queue(`
			WITH u AS (SELECT * FROM unnest($1::uuid[], $2::jsonb[]) AS u(id, decision)),
			a AS (
				UPDATE attempts a SET dial_decision = u.decision, to_index = c.to_index, to_number = c.to_number,
					allowed_at = statement_timestamp()
				FROM u, calls c
				WHERE a.call_id = u.id AND c.id = u.id AND c.state = 'queued' AND a.status IN ('queued', 'claimed')
				RETURNING a.call_id
			)
			SELECT call_id::text FROM a`, allowIDs, allowRaw).Query(collect)
	}
	if len(blockIDs) > 0 {
		b.Queue(`
			WITH u AS (SELECT * FROM unnest($1::uuid[], $2::jsonb[], $3::jsonb[], $4::jsonb[]) AS u(id, decision, reasons, event)),
			c AS (
				UPDATE calls SET state = 'blocked', updated_at = statement_timestamp(), ended_at = statement_timestamp()
				FROM u WHERE calls.id = u.id AND calls.state = 'queued'
				RETURNING calls.id, calls.tenant_id
			), a AS (
				UPDATE attempts SET status = 'blocked', dial_decision = u.decision,
					blocked_reasons = ARRAY(SELECT jsonb_array_elements_text(u.reasons))
				FROM c JOIN u ON u.id = c.id
				WHERE attempts.call_id = c.id AND attempts.status IN ('queued', 'claimed')
			), e AS (
				INSERT INTO call_events (tenant_id, call_id, from_state, to_state, kind, at, event)
				SELECT c.tenant_id, c.id, 'queued', 'blocked', $5, statement_timestamp(), u.event
				FROM c JOIN u ON u.id = c.id
			)
			SELECT id::text FROM c`, blockIDs, blockRaw, blockReasonsRaw, blockEvents,
			string(eventComplianceBlocked)).Query(collect)
	}
	if err := tx.commit(ctx, b); err != nil {
		fail(fmt.Errorf("saving decisions: %w", translate(err)))
		return
	}
	for _, i := range idx {
		if res[i].Err == nil && !stored[string(batch[i].Call.ID)] {
			res[i].Err = fmt.Errorf("rechecking call %s: %w", batch[i].Call.ID,
				controller.Errorf(controller.ECONFLICT, "call left the queue while it was rechecked"))
		}
	}
}

func joinReasons(reasons []string) string {
	return "blocked: " + strings.Join(reasons, ", ")
}

// AttemptRecord is the domain's attempt with its decisions.
type AttemptRecord = controller.Attempt

// GetAttempt returns the attempt of a call with its decisions. Returns
// ENOTFOUND if the call does not exist for the tenant.
func (s *Store) GetAttempt(ctx context.Context, tenant string, id controller.CallID) (AttemptRecord, error) {
	a := AttemptRecord{CallID: id}
	if _, err := uuid.Parse(string(id)); err != nil {
		return a, notFound(id)
	}
	var (
		decision, dial, sealed []byte
		clear                  string
		counted                bool
	)
	err := s.db.pool.QueryRow(ctx, `
		SELECT a.id, a.tenant_id, a.status, coalesce(c.to_number, ''), c.to_sealed,
			a.to_index IS NOT NULL OR a.to_number IS NOT NULL, a.allowed_at, a.decision, a.dial_decision,
			a.blocked_reasons, a.created_at
		FROM attempts a JOIN calls c ON c.id = a.call_id WHERE a.call_id = $1 AND a.tenant_id = $2`, id, tenant,
	).Scan(&a.ID, &a.TenantID, &a.Status, &clear, &sealed, &counted, &a.AllowedAt, &decision, &dial,
		&a.BlockedReasons, &a.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, notFound(id)
	}
	if err != nil {
		return a, fmt.Errorf("getting attempt of call %s: %w", id, translate(err))
	}
	number, err := openNumber(s.pd, clear, sealed)
	if err != nil {
		return a, fmt.Errorf("getting attempt of call %s: %w", id, err)
	}
	if counted { // the number the caps counted, once the attempt was allowed
		a.ToNumber = number
	}
	for _, d := range []struct {
		raw []byte
		dst **controller.Decision
	}{{decision, &a.Decision}, {dial, &a.DialDecision}} {
		if len(d.raw) == 0 {
			continue
		}
		*d.dst = new(controller.Decision)
		if err := json.Unmarshal(d.raw, *d.dst); err != nil {
			return a, fmt.Errorf("decoding decision of call %s: %w", id, err)
		}
		if (*d.dst).Number == "" {
			(*d.dst).Number = number // stored without it (encodeStoredDecision)
		}
	}
	return a, nil
}
