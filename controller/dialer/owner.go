package dialer

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/callgate/callgate/controller"
)

// owner runs one switch: it holds the switch's lease, claims due attempts
// within the switch's limits, originates them and reconciles in-flight calls
// after every (re)connect. Originations and reconciliation happen only on the
// owner's goroutine, so a reconciliation never races a fresh originate.
type owner struct {
	svc     *Service
	sw      controller.Switch
	name    string
	limits  SwitchLimits
	trunks  map[string]*trunkState // the trunks with limits (trunks.go)
	tracker *tracker
	log     *slog.Logger

	wake      chan struct{} // an attempt may be due, a slot freed, or a reconcile asked
	mu        sync.Mutex
	reconcile bool // a (re)connect asked for reconciliation
	isOwner   bool
	nextSend  time.Time // CPS pacing

	cancel context.CancelFunc
	done   chan struct{}
}

func newOwner(s *Service, sw controller.Switch, limits SwitchLimits) *owner {
	o := &owner{
		svc:    s,
		sw:     sw,
		name:   sw.Name(),
		limits: limits,
		trunks: newTrunks(limits),
		log:    s.log.With("switch", sw.Name()),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	o.tracker = newTracker(o)
	return o
}

func (o *owner) poke() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *owner) requestReconcile() {
	o.mu.Lock()
	o.reconcile = true
	o.mu.Unlock()
	o.poke()
}

func (o *owner) start(ctx context.Context) {
	ctx, o.cancel = context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); o.tracker.run(ctx) }()
	go func() { defer wg.Done(); o.listen(ctx) }()
	go func() { defer wg.Done(); o.run(ctx) }()
	go func() { wg.Wait(); close(o.done) }()
}

func (o *owner) stop() {
	if o.cancel == nil {
		return
	}
	o.cancel()
	<-o.done
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := o.svc.store.ReleaseSwitchLease(ctx, o.name, o.svc.cfg.Owner); err != nil {
		o.log.Warn("releasing switch lease", "err", err)
	}
}

// listen pokes the owner whenever an attempt is queued anywhere.
func (o *owner) listen(ctx context.Context) {
	for ctx.Err() == nil {
		if err := o.svc.store.WaitForAttempts(ctx, o.svc.cfg.PollInterval); err != nil && ctx.Err() == nil {
			o.log.Warn("waiting for attempts", "err", err)
			o.sleep(ctx, o.svc.cfg.PollInterval)
			continue
		}
		o.poke()
	}
}

// sleep waits d or until ctx ends. It paces retries; it never stands in for
// waiting on an event.
func (o *owner) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// idle waits for a poke, the poll interval or ctx.
func (o *owner) idle(ctx context.Context) {
	t := time.NewTimer(o.svc.cfg.PollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-o.wake:
	case <-t.C:
	}
}

func (o *owner) run(ctx context.Context) {
	var leaseAt time.Time
	for ctx.Err() == nil {
		now := o.svc.cfg.Now()
		if now.Sub(leaseAt) >= o.svc.cfg.LeaseTTL/3 {
			if !o.renewLease(ctx) {
				o.idle(ctx)
				continue
			}
			leaseAt = now
		}
		if !o.sw.Status().Connected {
			o.idle(ctx)
			continue
		}
		o.mu.Lock()
		pending := o.reconcile
		o.reconcile = false
		o.mu.Unlock()
		if pending {
			if err := o.reconcileNow(ctx, true); err != nil {
				o.log.Warn("reconciling in-flight calls", "err", err)
				o.requestReconcile()
				o.sleep(ctx, o.svc.cfg.PollInterval)
				continue
			}
		}
		if o.tracker.dueForCheck(now) {
			if err := o.reconcileNow(ctx, false); err != nil {
				o.log.Warn("checking in-flight calls", "err", err)
			}
		}
		n := o.svc.cfg.ClaimBatch
		if o.limits.MaxSessions > 0 {
			n = min(n, o.limits.MaxSessions-o.tracker.count())
		}
		if o.limits.MaxCPS > 0 {
			n = min(n, o.limits.MaxCPS)
		}
		if n <= 0 {
			o.idle(ctx) // at the session limit: a hangup pokes us
			continue
		}
		sent, err := o.dialBatch(ctx, n)
		if err != nil {
			if ctx.Err() == nil {
				o.log.Warn("dialing", "err", err)
				o.sleep(ctx, o.svc.cfg.PollInterval)
			}
			continue
		}
		if sent == 0 {
			o.idle(ctx)
		}
	}
}

// renewLease takes or keeps the switch's lease; on taking it, it adopts the
// calls a previous owner left in flight and frees attempts a dead owner
// claimed but never sent.
func (o *owner) renewLease(ctx context.Context) bool {
	ok, err := o.svc.store.AcquireSwitchLease(ctx, o.name, o.svc.cfg.Owner, o.svc.cfg.LeaseTTL)
	if err != nil {
		o.log.Warn("renewing switch lease", "err", err)
		ok = false
	}
	o.mu.Lock()
	was := o.isOwner
	o.isOwner = ok
	o.mu.Unlock()
	if ok && !was {
		o.log.Info("took switch lease")
		if n, err := o.svc.store.RecoverClaims(ctx, o.svc.claimer, o.svc.cfg.LeaseTTL); err != nil {
			o.log.Warn("recovering stale claims", "err", err)
		} else if n > 0 {
			o.log.Info("requeued attempts claimed by a lost instance", "count", n)
		}
		o.requestReconcile()
	}
	return ok
}

// dialBatch claims up to n due attempts (within their trunks' limits),
// marks them originating (durably, before anything is sent) and originates
// them one by one.
func (o *owner) dialBatch(ctx context.Context, n int) (int, error) {
	claimed, err := o.claim(ctx, n)
	if err != nil || len(claimed) == 0 {
		return 0, err
	}
	calls, media := o.recheck(ctx, claimed)
	if len(calls) == 0 {
		return len(claimed), nil
	}
	ids := make([]controller.CallID, len(calls))
	for i, c := range calls {
		ids[i] = c.ID
	}
	now := o.svc.cfg.Now()
	if err := o.svc.store.MarkOriginating(ctx, ids, o.name, now); err != nil {
		// Nothing was sent: give the attempts back.
		for _, id := range ids {
			if rerr := o.svc.store.ReleaseAttempt(context.WithoutCancel(ctx), id, now, "marking originating failed"); rerr != nil {
				o.log.Warn("releasing attempt", "call_id", id, "err", rerr)
			}
		}
		return 0, err
	}
	for i := range calls {
		c := calls[i]
		c.State, c.Switch = controller.CallOriginating, o.name
		o.pace(ctx)
		o.paceTrunk(ctx, c)
		o.originate(ctx, c, media[c.ID])
	}
	return len(calls), nil
}

// recheck runs the compliance gate again on claimed calls, as one batch
// (one transaction locks all their numbers), and returns those it allows
// with the media requirement of each (from the policy in force for its
// tenant). A blocked call is stored blocked by the store; a call whose check
// failed goes back to the queue: nothing is dialled without an allowing
// decision. A call that requires TLS/SRTP this switch cannot confirm goes
// back to the queue before it is checked (media_security.go).
func (o *owner) recheck(ctx context.Context, calls []controller.Call) ([]controller.Call, map[controller.CallID]controller.MediaRequirement) {
	batch := make([]controller.Recheck, 0, len(calls))
	pending := make([]controller.Call, 0, len(calls))
	media := make(map[controller.CallID]controller.MediaRequirement, len(calls))
	for _, c := range calls {
		pctx, err := o.svc.withPolicy(ctx, c.TenantID, c.CampaignID)
		if err != nil {
			o.recheckFailed(ctx, c, err)
			continue
		}
		m := o.svc.policyIn(pctx).MediaSecurity.Requirement()
		if ok, why := o.mediaFit(m); !ok {
			o.holdInsecure(ctx, c, why)
			continue
		}
		media[c.ID] = m
		decide := o.svc.decider(c, controller.StageDial)
		batch = append(batch, controller.Recheck{Call: c, Hint: lookupHint(o.svc.policyIn(pctx), c),
			Decide: func(_ context.Context, l controller.Lookup) (controller.Decision, error) {
				return decide(pctx, l)
			}})
		pending = append(pending, c)
	}
	if len(batch) == 0 {
		return nil, nil
	}
	out := calls[:0:0]
	for i, r := range o.svc.store.RecheckAttempts(ctx, batch) {
		c := pending[i]
		switch {
		case r.Err != nil && controller.ErrorCode(r.Err) == controller.ECONFLICT:
			// Left the queue meanwhile (canceled, refused): not ours to dial.
		case r.Err != nil:
			o.recheckFailed(ctx, c, r.Err)
		case !r.Decision.Allow:
			o.svc.metrics.blockedAtDial.Inc()
			o.log.Info("blocked at dial time", "call_id", c.ID, "reasons", r.Decision.Reasons)
			if f := o.svc.cfg.OnCallUpdate; f != nil {
				c.State, c.Decision = controller.CallBlocked, &r.Decision
				f(c)
			}
		default:
			out = append(out, c)
		}
	}
	return out, media
}

// recheckFailed gives back to the queue a claimed call whose dial-time
// check could not be made.
func (o *owner) recheckFailed(ctx context.Context, c controller.Call, err error) {
	o.log.Warn("dial-time compliance check failed; not dialling", "call_id", c.ID, "err", err)
	if rerr := o.svc.store.ReleaseAttempt(context.WithoutCancel(ctx), c.ID, o.svc.cfg.Now().Add(o.svc.cfg.RefusalDelay), "compliance check failed"); rerr != nil {
		o.log.Warn("releasing attempt", "call_id", c.ID, "err", rerr)
	}
}

// pace keeps originations within the switch's calls-per-second limit.
func (o *owner) pace(ctx context.Context) {
	if o.limits.MaxCPS <= 0 {
		return
	}
	now := o.svc.cfg.Now()
	if wait := o.nextSend.Sub(now); wait > 0 {
		o.sleep(ctx, wait)
		now = now.Add(wait)
	}
	o.nextSend = now.Add(time.Second / time.Duration(o.limits.MaxCPS))
}

// originate sends c with media, the requirement of the policy in force for
// its tenant (the driver refuses, not sent, what it cannot guarantee).
func (o *owner) originate(ctx context.Context, c controller.Call, media controller.MediaRequirement) {
	log := o.log.With("call_id", c.ID, "to", controller.MaskNumber(c.To))
	o.tracker.add(c, o.svc.cfg.Now())
	err := o.sw.Originate(ctx, controller.OriginateRequest{
		CallID:         c.ID,
		To:             c.To,
		CallerIDNumber: c.From,
		CallerIDName:   c.CallerIDName,
		Trunk:          c.Trunk,
		Timeout:        c.Timeout,
		Variables:      c.Variables,
		Media:          media,
	})
	switch {
	case err == nil:
		o.svc.metrics.originations.WithLabelValues(o.name, "sent").Inc()
	case errors.Is(err, controller.ErrNotSent) || controller.ErrorCode(err) == controller.EINVALID:
		// Certainly never reached the switch: back to the queue (or failed
		// for input the driver cannot carry).
		o.svc.metrics.originations.WithLabelValues(o.name, "not_sent").Inc()
		log.Warn("originate not sent", "err", err)
		o.tracker.notSent(ctx, c.ID, err)
	default:
		// The switch may have accepted it: never send it again. Its events
		// or the next reconciliation decide its fate.
		o.svc.metrics.originations.WithLabelValues(o.name, "ambiguous").Inc()
		log.Error("originate outcome unknown; not retrying", "err", err)
	}
}

// reconcileNow compares the calls callgate believes are on the switch with the
// switch's channel list. afterConnect: the link was (re)established, so every
// call sent before it that the switch no longer lists ended while callgate was
// not listening. Otherwise (a periodic check) a call must be missing from two
// consecutive lists before it is declared gone.
func (o *owner) reconcileNow(ctx context.Context, afterConnect bool) error {
	if afterConnect {
		inflight, err := o.svc.store.InFlightCalls(ctx, o.name)
		if err != nil {
			return err
		}
		for _, c := range inflight {
			if o.tracker.adopt(c) {
				o.sw.Track(c.ID)
			}
		}
	}
	chans, err := o.sw.Channels(ctx)
	if err != nil {
		return err
	}
	live := make(map[controller.CallID]controller.Channel, len(chans))
	for _, ch := range chans {
		live[controller.CallID(ch.UUID)] = ch
	}
	connectedAt := o.sw.Status().ConnectedAt
	gone, answered := o.tracker.compare(live, connectedAt, afterConnect, o.svc.cfg.Now())
	for _, id := range answered {
		o.tracker.push(controller.ChannelEvent{Switch: o.name, CallID: id, Kind: controller.EventAnswer, Name: "RECONCILE", At: o.svc.cfg.Now()})
	}
	for _, e := range gone {
		o.svc.metrics.reconciled.WithLabelValues(o.name).Inc()
		o.log.Info("call ended while not tracked; reconciled", "call_id", e.id, "answered", e.answered)
		o.tracker.push(controller.ChannelEvent{
			Switch: o.name, CallID: e.id, Kind: controller.EventReconciledGone, Name: "RECONCILE",
			At: o.svc.cfg.Now(), Answered: e.answered,
			Detail: "the switch no longer has this channel and its hangup event was not received",
		})
	}
	return nil
}
