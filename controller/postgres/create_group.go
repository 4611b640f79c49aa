package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/callgate/callgate/controller"
)

// Gated creations are group-committed: a creation joins whatever is waiting,
// a writer takes the lot (numbers all different) into one transaction —
// every number's lock in key order and every lookup in one round trip
// (lockAll), each call's decision, every call, attempt and idempotency key
// in one statement with the COMMIT — and each caller returns once its own
// call is durable. What a creation sees and writes is what it would alone:
// its number's lock is held from its lookups to the commit, and a second
// call to a number already in the group waits for a later one.
const (
	createWriters      = 4  // group transactions at once
	createGroupMax     = 64 // creations per group transaction
	createGroupTimeout = 30 * time.Second
)

// createGroup queues gated creations for the writers.
type createGroup struct {
	mu      sync.Mutex
	pending []*createReq
	writers int // writer goroutines draining pending
	metrics *createMetrics
	hooks   createHooks
}

// createMetrics show operators how creations are grouped.
type createMetrics struct {
	size   prometheus.Histogram // creations per group transaction
	failed prometheus.Counter   // groups that failed whole and ran one by one
}

// RegisterMetrics registers the store's metrics with reg. Call it before
// the store is used.
func (s *Store) RegisterMetrics(reg prometheus.Registerer) error {
	m := &createMetrics{
		size: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "callgate_creation_group_size",
			Help:    "Gated call creations decided and written in one transaction (group commit).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64}}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callgate_creation_groups_failed_total",
			Help: "Creation groups that failed whole (an unknown tenant, a call ID taken) and ran again one creation at a time."}),
	}
	for _, c := range []prometheus.Collector{m.size, m.failed} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("registering store metrics: %w", err)
		}
	}
	s.creates.mu.Lock()
	s.creates.metrics = m
	s.creates.mu.Unlock()
	return nil
}

// createHooks are test hooks, set before the store is used.
type createHooks struct {
	enqueued func(pending int) // a creation joined the queue; pending are waiting
	hold     func()            // a writer is about to take a group
	group    func(size int)    // a group transaction starts
}

type createReq struct {
	ctx    context.Context // the caller's: a creation whose caller left is not started
	c      *controller.Call
	vars   []byte
	hash   string
	decide DecideFunc
	hint   controller.LookupHint
	done   chan createResult
}

type createResult struct {
	created bool
	d       controller.Decision
	err     error
}

// createGatedGrouped runs one gated creation through the group commit: it
// waits until the group its creation joined has committed or failed. A
// group that fails as a whole (an unknown tenant, a call ID taken) is run
// again one creation at a time, so each gets its own answer. It reports
// created=false with no error when the idempotency key was taken meanwhile.
func (s *Store) createGatedGrouped(ctx context.Context, c *controller.Call, vars []byte, requestHash string, decide DecideFunc) (bool, controller.Decision, error) {
	r := &createReq{ctx: ctx, c: c, vars: vars, hash: requestHash, decide: decide,
		hint: controller.LookupHintFrom(ctx), done: make(chan createResult, 1)}
	g := &s.creates
	g.mu.Lock()
	g.pending = append(g.pending, r)
	start := g.writers < createWriters
	if start {
		g.writers++
	}
	if g.hooks.enqueued != nil {
		g.hooks.enqueued(len(g.pending))
	}
	g.mu.Unlock()
	if start {
		go s.writeCreations()
	}
	// Wait even if ctx ends: once taken, the creation may commit, and the
	// caller must learn whether it did. A group is bounded by
	// createGroupTimeout.
	res := <-r.done
	return res.created, res.d, res.err
}

// writeCreations runs groups until nothing is waiting.
func (s *Store) writeCreations() {
	g := &s.creates
	var m *createMetrics
	for {
		if g.hooks.hold != nil {
			g.hooks.hold()
		}
		g.mu.Lock()
		group, rest := takeCreations(g.pending)
		g.pending, m = rest, g.metrics
		if len(group) == 0 {
			g.writers--
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		live := group[:0]
		for _, r := range group {
			if err := r.ctx.Err(); err != nil {
				r.done <- createResult{err: fmt.Errorf("creating call %s: %w", r.c.ID, err)}
				continue
			}
			live = append(live, r)
		}
		if len(live) == 0 {
			continue
		}
		if g.hooks.group != nil {
			g.hooks.group(len(live))
		}
		if m != nil {
			m.size.Observe(float64(len(live)))
		}
		if len(live) == 1 {
			s.createAlone(live[0])
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), createGroupTimeout)
		res, err := s.createGroupTx(ctx, live)
		cancel()
		if err != nil {
			// Nothing of the group was written: each alone, with its own
			// answer.
			if m != nil {
				m.failed.Inc()
			}
			for _, r := range live {
				s.createAlone(r)
			}
			continue
		}
		for i, r := range live {
			r.done <- res[i]
		}
	}
}

// createAlone runs r as a group of its own and answers it.
func (s *Store) createAlone(r *createReq) {
	ctx, cancel := context.WithTimeout(context.Background(), createGroupTimeout)
	defer cancel()
	res, err := s.createGroupTx(ctx, []*createReq{r})
	if err != nil {
		res[0].err = fmt.Errorf("creating call %s: %w", r.c.ID, createTxError(r.c, err))
	}
	r.done <- res[0]
}

// takeCreations splits pending into a group — up to createGroupMax, in
// order, no number twice — and what waits for a later group.
func takeCreations(pending []*createReq) (group, rest []*createReq) {
	seen := make(map[string]bool, min(len(pending), createGroupMax))
	for _, r := range pending {
		if len(group) == createGroupMax || seen[r.c.To] {
			rest = append(rest, r)
			continue
		}
		seen[r.c.To] = true
		group = append(group, r)
	}
	return group, rest
}

// createTxError translates the error of a creation transaction.
func createTxError(c *controller.Call, err error) error {
	err = translate(err)
	if controller.ErrorCode(err) == controller.ENOTFOUND {
		return controller.FieldError("tenant_id", "unknown tenant %q", c.TenantID)
	}
	return err
}

// createGroupSQL writes the calls of a group that their idempotency keys
// let through, with their attempts, and returns them. A call whose key was
// taken (by another request, or by one earlier in the group) is not written
// and not returned.
const createGroupSQL = `
WITH u AS (
	SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::text[],
		$7::bigint[], $8::jsonb[], $9::text[], $10::text[], $11::text[], $12::jsonb[], $13::jsonb[],
		$14::text[], $15::text[], $16::text[], $17::text[], $18::bytea[]) WITH ORDINALITY
		AS u(id, tenant_id, switch, to_index, from_number, caller_id_name, timeout_ms, variables,
			key, request_hash, state, decision, reasons, purpose, flow_id, agent_id, trunk, to_sealed, ord)
), key AS (
	INSERT INTO idempotency_keys (tenant_id, key, request_hash, call_id)
	SELECT tenant_id, key, request_hash, id FROM u WHERE key <> '' ORDER BY tenant_id, key, ord
	ON CONFLICT DO NOTHING -- in key order: two groups never wait for each other's keys in a cycle
	RETURNING call_id
), ok AS (
	SELECT * FROM u WHERE key = '' OR id IN (SELECT call_id FROM key)
), c AS (
	INSERT INTO calls (id, tenant_id, attempt_id, switch, to_index, to_sealed, from_number,
		caller_id_name, timeout_ms, variables, state, idempotency_key, ended_at, purpose, flow_id, agent_id, trunk)
	SELECT id, tenant_id, nextval('attempts_id_seq'), switch, to_index, to_sealed, from_number,
		caller_id_name, timeout_ms, variables, state, nullif(key, ''),
		CASE WHEN state = 'blocked' THEN statement_timestamp() END, purpose, nullif(flow_id, ''),
		nullif(agent_id, ''), trunk
	FROM ok ORDER BY ord
	RETURNING id, attempt_id, created_at, updated_at, ended_at
), a AS (
	INSERT INTO attempts (id, tenant_id, call_id, status, switch, not_before, created_at,
		decision, blocked_reasons, to_index, allowed_at)
	SELECT c.attempt_id, ok.tenant_id, c.id, ok.state, nullif(ok.switch, ''), c.created_at, c.created_at,
		ok.decision, CASE WHEN ok.reasons IS NOT NULL THEN ARRAY(SELECT jsonb_array_elements_text(ok.reasons)) END,
		ok.to_index, CASE WHEN ok.state = 'queued' THEN statement_timestamp() END
	FROM c JOIN ok ON ok.id = c.id
)
SELECT id::text, attempt_id, created_at, updated_at, ended_at FROM c`

// decideIn runs r's decision with the values of its caller's context (the
// policy it resolved, say) and the deadline of the group's.
func decideIn(group context.Context, r *createReq, l *txLookup) (controller.Decision, error) {
	ctx := context.WithoutCancel(r.ctx)
	if deadline, ok := group.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	return runDecide(ctx, r.decide, l)
}

// runDecide runs decide on l, then closes l. A decision that panics fails
// its own call (EINTERNAL), not the goroutine deciding for a whole batch or
// group, and not the process.
func runDecide(ctx context.Context, decide DecideFunc, l *txLookup) (d controller.Decision, err error) {
	defer l.close()
	defer func() {
		if p := recover(); p != nil {
			d, err = controller.Decision{}, controller.Errorf(controller.EINTERNAL, "the decision panicked: %v", p)
		}
	}()
	return decide(ctx, l)
}

// createGroupTx runs one group's transaction. The results follow group's
// order; a result's error (its decision failed) means nothing was written
// for it. An error means nothing was written for any of them.
func (s *Store) createGroupTx(ctx context.Context, group []*createReq) ([]createResult, error) {
	res := make([]createResult, len(group))
	tx, err := s.acquireTx(ctx)
	if err != nil {
		return res, err
	}
	defer tx.release()
	ls := make([]*txLookup, len(group))
	for i, r := range group {
		ls[i] = &txLookup{tx: tx, tenant: r.c.TenantID, number: r.c.To, from: r.c.From, hint: r.hint, pd: s.pd}
	}
	if err := lockAll(ctx, tx, beginReadWrite, ls); err != nil {
		return res, err
	}
	n := len(group)
	var (
		ids, tenants, switches, froms, names, keys, hashes = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		states, purposes, flows, agents, trunks            = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		indexes, sealeds                                   = make([][]byte, 0, n), make([][]byte, 0, n)
		timeouts                                           = make([]int64, 0, n)
		vars, decisions, reasons                           = make([]*string, 0, n), make([]string, 0, n), make([]*string, 0, n)
		written                                            = make(map[string]int, n) // call ID → position in group
	)
	for i, r := range group {
		c := r.c
		d, err := decideIn(ctx, r, ls[i])
		res[i].d = d
		if err == nil && d.Number != "" && d.Number != c.To {
			err = controller.Errorf(controller.EINTERNAL, "the decision is about %s, the call is to %s",
				controller.MaskNumber(d.Number), controller.MaskNumber(c.To))
		}
		if err != nil {
			res[i].err = fmt.Errorf("creating call %s: deciding: %w", c.ID, err)
			continue
		}
		raw, err := encodeStoredDecision(d)
		if err != nil {
			res[i].err = fmt.Errorf("creating call %s: encoding decision: %w", c.ID, err)
			continue
		}
		state, why := controller.CallQueued, (*string)(nil)
		if !d.Allow {
			state = controller.CallBlocked
			b, err := json.Marshal(blockReasons(d))
			if err != nil {
				res[i].err = fmt.Errorf("creating call %s: encoding reasons: %w", c.ID, err)
				continue
			}
			why = new(string(b))
		}
		index, sealed, err := sealNumber(s.pd, c.To)
		if err != nil {
			res[i].err = fmt.Errorf("creating call %s: %w", c.ID, err)
			continue
		}
		var v *string
		if r.vars != nil {
			v = new(string(r.vars))
		}
		written[string(c.ID)] = i
		ids, tenants, switches, froms = append(ids, string(c.ID)), append(tenants, c.TenantID), append(switches, c.Switch), append(froms, c.From)
		names, keys, hashes = append(names, c.CallerIDName), append(keys, c.IdempotencyKey), append(hashes, r.hash)
		states, purposes, flows = append(states, string(state)), append(purposes, string(c.Purpose)), append(flows, c.FlowID)
		agents, trunks = append(agents, c.AgentID), append(trunks, c.Trunk)
		indexes, sealeds, timeouts = append(indexes, index), append(sealeds, sealed), append(timeouts, c.Timeout.Milliseconds())
		vars, decisions, reasons = append(vars, v), append(decisions, string(raw)), append(reasons, why)
	}
	got := make([]controller.Call, n) // what the statement returned, applied once committed
	b := &pgx.Batch{}
	if len(ids) > 0 {
		b.Queue(createGroupSQL, ids, tenants, switches, indexes, froms, names, timeouts, vars, keys, hashes,
			states, decisions, reasons, purposes, flows, agents, trunks, sealeds,
		).Query(func(rows pgx.Rows) error {
			var (
				id string
				c  controller.Call
			)
			_, err := pgx.ForEachRow(rows, []any{&id, &c.AttemptID, &c.CreatedAt, &c.UpdatedAt, &c.EndedAt}, func() error {
				i, ok := written[id]
				if !ok {
					return fmt.Errorf("the group wrote call %s, not one of its own", id)
				}
				got[i], res[i].created = c, true
				return nil
			})
			return err
		})
	}
	if err := tx.commit(ctx, b); err != nil {
		for i := range res {
			res[i].created = false
		}
		return res, err
	}
	for i, r := range res {
		if !r.created {
			continue
		}
		c := group[i].c
		c.AttemptID, c.CreatedAt, c.UpdatedAt, c.EndedAt = got[i].AttemptID, got[i].CreatedAt, got[i].UpdatedAt, got[i].EndedAt
		c.State = controller.CallQueued
		if !r.d.Allow {
			c.State = controller.CallBlocked
		}
	}
	return res, nil
}
