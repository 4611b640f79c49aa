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

// ClaimAttempts claims up to n due, queued attempts that may run on
// switchName (those naming it or no switch) for owner, oldest due first,
// skipping rows other claimers hold. It returns their calls, still queued,
// with Switch set to switchName. Returns EINVALID if n < 1.
func (s *Store) ClaimAttempts(ctx context.Context, switchName, owner string, n int) ([]controller.Call, error) {
	return s.ClaimAttemptsExcept(ctx, switchName, owner, n, nil)
}

// claimSQL claims attempts; picked is the CTE that chooses them.
const claimSQL = `
	WITH picked AS (%s), a AS (
		UPDATE attempts SET status = 'claimed', claimed_by = $2, claimed_at = now()
		FROM picked WHERE attempts.id = picked.id
		RETURNING attempts.id, attempts.call_id
	)
	SELECT ` + callColumns + ` FROM a JOIN calls c ON c.id = a.call_id ORDER BY a.id`

var (
	claimAnySQL = fmt.Sprintf(claimSQL, `
		SELECT id FROM attempts
		WHERE status = 'queued' AND not_before <= now() AND (switch IS NULL OR switch = $1)
		ORDER BY not_before, id
		LIMIT $3
		FOR UPDATE SKIP LOCKED`)
	// claimExceptSQL leaves in the queue the attempts whose calls use a
	// trunk in $4 (by name; '' is the switch's default trunk).
	claimExceptSQL = fmt.Sprintf(claimSQL, `
		SELECT q.id FROM attempts q
		WHERE q.status = 'queued' AND q.not_before <= now() AND (q.switch IS NULL OR q.switch = $1)
			AND NOT EXISTS (SELECT 1 FROM calls t WHERE t.id = q.call_id AND t.trunk = ANY($4::text[]))
		ORDER BY q.not_before, q.id
		LIMIT $3
		FOR UPDATE OF q SKIP LOCKED`)
)

// ClaimAttemptsExcept is ClaimAttempts that leaves in the queue, untouched,
// the attempts whose calls use one of busyTrunks ("" names the switch's
// default trunk): those the owner could not originate now. Returns
// EINVALID if n < 1.
func (s *Store) ClaimAttemptsExcept(ctx context.Context, switchName, owner string, n int, busyTrunks []string) ([]controller.Call, error) {
	if n < 1 {
		return nil, controller.FieldError("n", "must be at least 1")
	}
	q, args := claimAnySQL, []any{switchName, owner, n}
	if len(busyTrunks) > 0 {
		q, args = claimExceptSQL, append(args, busyTrunks)
	}
	rows, err := s.db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("claiming attempts on %s: %w", switchName, translate(err))
	}
	calls, err := s.collectCalls(rows)
	if err != nil {
		return nil, fmt.Errorf("claiming attempts on %s: %w", switchName, translate(err))
	}
	for i := range calls {
		calls[i].Switch = switchName
	}
	return calls, nil
}

// MarkOriginating moves the claimed calls ids to originating on switchName,
// marks their attempts sent and records an originate_sent event for each, in
// one statement, before anything is sent to the switch. It is all or
// nothing: if any call is no longer queued (canceled, or recovered and sent
// by another owner meanwhile) or does not exist, it changes nothing and
// returns ECONFLICT naming those calls; none of ids may then be originated.
// Returns EINVALID for an ID that is not a UUID.
func (s *Store) MarkOriginating(ctx context.Context, ids []controller.CallID, switchName string, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	idArg := make([]string, len(ids))
	events := make([]string, len(ids))
	for i, id := range ids {
		if _, err := uuid.Parse(string(id)); err != nil {
			return fmt.Errorf("marking calls originating: %w", controller.FieldError("id", "not a UUID: %q", id))
		}
		b, err := json.Marshal(controller.ChannelEvent{Switch: switchName, CallID: id,
			Kind: controller.EventOriginateSent, At: at})
		if err != nil {
			return fmt.Errorf("marking call %s originating: %w", id, err)
		}
		idArg[i], events[i] = string(id), string(b)
	}
	// locked reads each call's latest state under a row lock (in id order, so
	// concurrent markers cannot deadlock); the updates run only if all are
	// queued.
	rows, err := s.db.pool.Query(ctx, `
		WITH u AS (
			SELECT DISTINCT ON (id) id, event FROM unnest($1::uuid[], $4::text[]) AS u(id, event)
		), locked AS MATERIALIZED (
			SELECT calls.id, calls.tenant_id, calls.state FROM calls JOIN u ON u.id = calls.id
			ORDER BY calls.id FOR UPDATE OF calls
		), ok AS (
			SELECT count(*) = (SELECT count(*) FROM u) AND bool_and(state = 'queued') AS ok FROM locked
		), c AS (
			UPDATE calls SET state = 'originating', switch = $2, updated_at = $3
			FROM u, ok WHERE ok.ok AND calls.id = u.id
			RETURNING calls.id, calls.tenant_id, u.event
		), a AS (
			UPDATE attempts SET status = 'sent', sent_at = $3
			FROM c WHERE attempts.call_id = c.id
		), e AS (
			INSERT INTO call_events (tenant_id, call_id, from_state, to_state, kind, at, event)
			SELECT tenant_id, id, 'queued', 'originating', 'originate_sent', $3, event::jsonb FROM c
		)
		SELECT id::text, state FROM locked`, idArg, switchName, at, events)
	if err != nil {
		return fmt.Errorf("marking %d calls originating on %s: %w", len(ids), switchName, translate(err))
	}
	states := map[string]string{}
	var id, state string
	_, err = pgx.ForEachRow(rows, []any{&id, &state}, func() error {
		states[id] = state
		return nil
	})
	if err != nil {
		return fmt.Errorf("marking %d calls originating on %s: %w", len(ids), switchName, translate(err))
	}
	var bad []string
	for _, id := range idArg {
		switch st, ok := states[id]; {
		case !ok:
			bad = append(bad, id+" (not found)")
		case st != string(controller.CallQueued):
			bad = append(bad, id+" ("+st+")")
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("marking %d calls originating on %s: %w", len(ids), switchName,
		controller.Errorf(controller.ECONFLICT, "calls no longer queued, none marked: %s", strings.Join(bad, ", ")))
}

// ReleaseAttempt returns the attempt of a call that is still queued to the
// queue, due at notBefore, recording reason. Returns ENOTFOUND if the call
// does not exist, ECONFLICT if it has left the queued state.
func (s *Store) ReleaseAttempt(ctx context.Context, id controller.CallID, notBefore time.Time, reason string) error {
	if _, err := uuid.Parse(string(id)); err != nil {
		return notFound(id)
	}
	tag, err := s.db.pool.Exec(ctx, `
		UPDATE attempts a
		SET status = 'queued', not_before = $2, release_reason = $3, claimed_by = NULL, claimed_at = NULL
		FROM calls c
		WHERE a.call_id = $1 AND c.id = a.call_id AND c.state = 'queued' AND a.status IN ('queued', 'claimed')`,
		id, notBefore, reason)
	if err != nil {
		return fmt.Errorf("releasing attempt of call %s: %w", id, translate(err))
	}
	if tag.RowsAffected() == 0 {
		return s.stateConflict(ctx, id, "releasing attempt", "queued")
	}
	return nil
}

// RequeueRefused puts a call the switch refused before creating any channel
// back in the queue (originating → queued, on the switch originally asked
// for), due at notBefore, and records ev. Returns ENOTFOUND if the call does
// not exist, ECONFLICT if it is no longer originating.
func (s *Store) RequeueRefused(ctx context.Context, id controller.CallID, notBefore time.Time, ev controller.ChannelEvent) error {
	if _, err := uuid.Parse(string(id)); err != nil {
		return notFound(id)
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("requeueing call %s: encoding event: %w", id, err)
	}
	reason := ev.HangupCause
	if ev.Detail != "" {
		reason = ev.Detail
	}
	rows, err := s.db.pool.Query(ctx, `
		WITH c AS (
			UPDATE calls SET state = 'queued', switch = coalesce(a.switch, ''), updated_at = now()
			FROM attempts a
			WHERE calls.id = $1 AND calls.state = 'originating' AND a.call_id = calls.id
			RETURNING calls.id, calls.tenant_id
		), a AS (
			UPDATE attempts SET status = 'queued', not_before = $2, release_reason = $3,
				claimed_by = NULL, claimed_at = NULL, sent_at = NULL
			FROM c WHERE attempts.call_id = c.id
		), e AS (
			INSERT INTO call_events (tenant_id, call_id, from_state, to_state, kind, name, sequence, at, event)
			SELECT tenant_id, id, 'originating', 'queued', $4, $5, nullif($6::bigint, 0), $7, $8::jsonb FROM c
		)
		SELECT count(*) FROM c`, id, notBefore, reason, string(ev.Kind), ev.Name, int64(ev.Sequence), nullTime(ev.At), raw)
	if err != nil {
		return fmt.Errorf("requeueing call %s: %w", id, translate(err))
	}
	n, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("requeueing call %s: %w", id, translate(err))
	}
	if n == 0 {
		return s.stateConflict(ctx, id, "requeueing call", "originating")
	}
	return nil
}

// nullTime returns nil for the zero time, to store NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// stateConflict explains why a statement conditioned on a call's state
// changed nothing: ENOTFOUND or ECONFLICT.
func (s *Store) stateConflict(ctx context.Context, id controller.CallID, doing string, want controller.CallState) error {
	var state string
	err := s.db.pool.QueryRow(ctx, `SELECT state FROM calls WHERE id = $1`, id).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", doing, notFound(id))
	}
	if err != nil {
		return fmt.Errorf("%s of call %s: %w", doing, id, translate(err))
	}
	return fmt.Errorf("%s of call %s: %w", doing, id,
		controller.Errorf(controller.ECONFLICT, "call is %s, not %s", state, want))
}

// RecoverClaims returns to the queue the attempts claimed by owners other
// than owner whose calls were never sent (still queued) and whose claim is
// older than staleAfter. An owner "instance#life" names one life of an
// instance: claims of its other lives (a process that died and was
// restarted under the same instance ID) are recovered at once. Returns how
// many.
func (s *Store) RecoverClaims(ctx context.Context, owner string, staleAfter time.Duration) (int, error) {
	tag, err := s.db.pool.Exec(ctx, `
		UPDATE attempts a
		SET status = 'queued', release_reason = 'claim by ' || a.claimed_by || ' expired',
			claimed_by = NULL, claimed_at = NULL
		FROM calls c
		WHERE a.status = 'claimed' AND a.claimed_by <> $1
			AND (a.claimed_at < now() - $2 * interval '1 microsecond'
				OR (strpos($1, '#') > 0 AND split_part(a.claimed_by, '#', 1) = split_part($1, '#', 1)))
			AND c.id = a.call_id AND c.state = 'queued'`, owner, staleAfter.Microseconds())
	if err != nil {
		return 0, fmt.Errorf("recovering stale claims: %w", translate(err))
	}
	return int(tag.RowsAffected()), nil
}

// SaveCallUpdates persists each update's call (state, cause, SIP status,
// billsec, duration, reconciled, answered and ended times) and inserts its
// event, in one statement. An attempt whose call became terminal is marked
// done. Several updates of one call are stored in order, the last one's call
// row winning. Returns ENOTFOUND (and saves nothing) if a call does not
// exist.
func (s *Store) SaveCallUpdates(ctx context.Context, ups []controller.CallUpdate) error {
	if len(ups) == 0 {
		return nil
	}
	// The call row of the last update of each call wins.
	last := make([]bool, len(ups))
	seen := make(map[controller.CallID]bool, len(ups))
	for i := len(ups) - 1; i >= 0; i-- {
		last[i] = !seen[ups[i].Call.ID]
		seen[ups[i].Call.ID] = true
	}
	var a updateArgs
	for i, u := range ups {
		if _, err := uuid.Parse(string(u.Call.ID)); err != nil {
			return fmt.Errorf("saving call updates: %w", notFound(u.Call.ID))
		}
		if err := a.add(u, last[i]); err != nil {
			return fmt.Errorf("saving call %s: %w", u.Call.ID, err)
		}
	}
	_, err := s.db.pool.Exec(ctx, `
		WITH u AS (
			SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
				$6::bigint[], $7::timestamptz[], $8::text[], $9::text[], $10::int[], $11::int[], $12::int[],
				$13::bool[], $14::timestamptz[], $15::timestamptz[], $16::bool[]) WITH ORDINALITY
				AS u(id, from_state, state, kind, name, seq, at, event, cause, sip, billsec,
					duration, reconciled, answered_at, ended_at, last, ord)
		), c AS (
			UPDATE calls SET state = u.state, hangup_cause = u.cause, sip_status = u.sip,
				billsec = u.billsec, duration = u.duration, reconciled = u.reconciled,
				answered_at = u.answered_at, ended_at = u.ended_at, updated_at = now()
			FROM u WHERE u.last AND calls.id = u.id
			RETURNING calls.id, calls.state
		), a AS (
			UPDATE attempts SET status = 'done'
			FROM c WHERE attempts.call_id = c.id AND c.state IN ('completed', 'failed', 'canceled')
				AND attempts.status <> 'done'
		)
		INSERT INTO call_events (tenant_id, call_id, from_state, to_state, kind, name, sequence, at, event)
		SELECT coalesce((SELECT tenant_id FROM calls WHERE calls.id = u.id), ''), id, from_state, state,
			kind, name, nullif(seq, 0), at, event::jsonb
		FROM u ORDER BY ord`,
		a.ids, a.froms, a.states, a.kinds, a.names, a.seqs, a.ats, a.events, a.causes,
		a.sips, a.billsecs, a.durations, a.reconciled, a.answeredAts, a.endedAts, a.last)
	if err != nil {
		err = translate(err)
		if controller.ErrorCode(err) == controller.ENOTFOUND {
			return fmt.Errorf("saving %d call updates: %w", len(ups),
				controller.Errorf(controller.ENOTFOUND, "a call does not exist"))
		}
		return fmt.Errorf("saving %d call updates: %w", len(ups), err)
	}
	return nil
}

// updateArgs holds SaveCallUpdates' parameters: one array per column, one
// element per update.
type updateArgs struct {
	ids, froms, states, kinds, names, events, causes []string
	seqs                                             []int64
	ats                                              []*time.Time
	sips, billsecs, durations                        []int32
	reconciled, last                                 []bool
	answeredAts, endedAts                            []*time.Time
}

func (a *updateArgs) add(u controller.CallUpdate, last bool) error {
	raw, err := json.Marshal(u.Event)
	if err != nil {
		return fmt.Errorf("encoding event: %w", err)
	}
	c := u.Call
	a.ids = append(a.ids, string(c.ID))
	a.froms = append(a.froms, string(u.From))
	a.states = append(a.states, string(c.State))
	a.kinds = append(a.kinds, string(u.Event.Kind))
	a.names = append(a.names, u.Event.Name)
	a.events = append(a.events, string(raw))
	a.causes = append(a.causes, c.HangupCause)
	a.seqs = append(a.seqs, int64(u.Event.Sequence))
	a.ats = append(a.ats, nullTime(u.Event.At))
	a.sips = append(a.sips, int32(c.SIPStatus))
	a.billsecs = append(a.billsecs, int32(c.Billsec))
	a.durations = append(a.durations, int32(c.Duration))
	a.reconciled = append(a.reconciled, c.Reconciled)
	a.last = append(a.last, last)
	a.answeredAts = append(a.answeredAts, c.AnsweredAt)
	a.endedAts = append(a.endedAts, c.EndedAt)
	return nil
}

// InFlightCalls returns the calls sent to switchName that have not ended,
// oldest first.
func (s *Store) InFlightCalls(ctx context.Context, switchName string) ([]controller.Call, error) {
	rows, err := s.db.pool.Query(ctx, `
		SELECT `+callColumns+` FROM calls c
		WHERE c.switch = $1 AND c.state IN ('originating', 'ringing', 'early', 'answered')
		ORDER BY c.created_at, c.id`, switchName)
	if err != nil {
		return nil, fmt.Errorf("listing in-flight calls on %s: %w", switchName, translate(err))
	}
	calls, err := s.collectCalls(rows)
	if err != nil {
		return nil, fmt.Errorf("listing in-flight calls on %s: %w", switchName, translate(err))
	}
	return calls, nil
}
