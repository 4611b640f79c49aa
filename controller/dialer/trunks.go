package dialer

import (
	"context"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/driverkit"
)

// Per-trunk limits (DESIGN 1.3). A switch's calls leave through its trunks:
// the default one (SwitchLimits.DefaultTrunk, for calls that name none) and
// those routing rules name. Each trunk may cap its concurrent calls and its
// originations per second, within the switch's own limits. The owner
// enforces them where it enforces the switch's:
//
//   - a trunk at its concurrent limit is left out of the claim
//     (ClaimAttemptsExcept), so its calls stay queued, untouched and in
//     order, until a hangup frees a slot and pokes the owner;
//   - a claimed batch may still hold more calls for a trunk than it has
//     free slots or than its rate allows in one batch: those go back to the
//     queue (ReleaseAttempt), due again after TrunkBusyDelay, before
//     anything is marked or sent — never originated over the limit, never
//     lost;
//   - the calls admitted are paced, per trunk, 1/MaxCPS apart, after the
//     switch's own pacing.

// TrunkLimits are callgate's own limits for one trunk of a switch.
type TrunkLimits struct {
	Name        string // the trunk, as it fills {trunk} in the switch's dial template
	MaxSessions int    // concurrent calls on the trunk (0: unlimited)
	MaxCPS      int    // originations per second on the trunk (0: unlimited)
}

// trunkState is one limited trunk of an owner's switch.
type trunkState struct {
	limits TrunkLimits
	pace   *driverkit.Pacer // only the owner's goroutine sends, but Pacer is safe anyway
}

// newTrunks returns the limited trunks of a switch by name.
func newTrunks(l SwitchLimits) map[string]*trunkState {
	out := map[string]*trunkState{}
	for _, t := range l.Trunks {
		if t.MaxSessions <= 0 && t.MaxCPS <= 0 {
			continue
		}
		ts := &trunkState{limits: t, pace: &driverkit.Pacer{}}
		if t.MaxCPS > 0 {
			ts.pace.Interval = time.Second / time.Duration(t.MaxCPS)
		}
		out[t.Name] = ts
	}
	return out
}

// trunkOf names the trunk a call leaves through.
func (o *owner) trunkOf(c controller.Call) string {
	if c.Trunk != "" {
		return c.Trunk
	}
	return o.limits.DefaultTrunk
}

// claim claims up to n due attempts for the switch, leaving those of busy
// trunks in the queue and giving back what a batch holds over a trunk's
// limits.
func (o *owner) claim(ctx context.Context, n int) ([]controller.Call, error) {
	if len(o.trunks) == 0 {
		return o.svc.store.ClaimAttempts(ctx, o.name, o.svc.claimer, n)
	}
	inflight := o.tracker.countBy(o.trunkOf)
	var busy []string
	for name, t := range o.trunks {
		if t.limits.MaxSessions > 0 && inflight[name] >= t.limits.MaxSessions {
			busy = append(busy, name)
			if name == o.limits.DefaultTrunk {
				busy = append(busy, "") // calls that name no trunk use it
			}
		}
	}
	claimed, err := o.svc.store.ClaimAttemptsExcept(ctx, o.name, o.svc.claimer, n, busy)
	if err != nil || len(claimed) == 0 {
		return claimed, err
	}
	return o.admit(ctx, claimed, inflight), nil
}

// admit returns the claimed calls their trunks can take now, given the
// calls in flight on each, and gives the others back to the queue.
func (o *owner) admit(ctx context.Context, claimed []controller.Call, inflight map[string]int) []controller.Call {
	taken := map[string]int{}
	out := claimed[:0:0]
	for _, c := range claimed {
		name := o.trunkOf(c)
		if t, ok := o.trunks[name]; ok {
			full := t.limits.MaxSessions > 0 && inflight[name]+taken[name] >= t.limits.MaxSessions
			fast := t.limits.MaxCPS > 0 && taken[name] >= t.limits.MaxCPS
			if full || fast {
				o.holdForTrunk(ctx, c, name)
				continue
			}
		}
		taken[name]++
		out = append(out, c)
	}
	return out
}

// holdForTrunk gives a claimed call back to the queue, due again shortly.
func (o *owner) holdForTrunk(ctx context.Context, c controller.Call, trunk string) {
	o.svc.metrics.trunkHeld.WithLabelValues(o.name, trunk).Inc()
	at := o.svc.cfg.Now().Add(o.svc.cfg.TrunkBusyDelay)
	if err := o.svc.store.ReleaseAttempt(context.WithoutCancel(ctx), c.ID, at, "trunk "+trunk+" at its limit"); err != nil {
		o.log.Warn("releasing attempt", "call_id", c.ID, "err", err)
	}
}

// paceTrunk keeps originations within the call's trunk's calls-per-second
// limit. A context ending while it waits lets the originate go ahead: the
// driver then refuses it as not sent.
func (o *owner) paceTrunk(ctx context.Context, c controller.Call) {
	if t, ok := o.trunks[o.trunkOf(c)]; ok {
		_ = t.pace.Wait(ctx)
	}
}
