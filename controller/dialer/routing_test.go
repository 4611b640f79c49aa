package dialer_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/calltest"
	"github.com/callgate/callgate/controller/dialer"
	"github.com/callgate/callgate/controller/postgres/pgtest"
)

// trunkSwitch is the fake switch that also records, per trunk, the calls
// it was asked to place and how many of them were live when each came in.
type trunkSwitch struct {
	*fakeSwitch
	tmu     sync.Mutex
	trunkOf map[controller.CallID]string
	busiest map[string]int         // most live calls on a trunk when an originate for it came in
	sentAt  map[string][]time.Time // originates per trunk
}

func newTrunkSwitch(name string) *trunkSwitch {
	return &trunkSwitch{fakeSwitch: newFakeSwitch(name), trunkOf: map[controller.CallID]string{},
		busiest: map[string]int{}, sentAt: map[string][]time.Time{}}
}

func (s *trunkSwitch) Originate(ctx context.Context, req controller.OriginateRequest) error {
	s.fakeSwitch.mu.Lock()
	live := make([]controller.CallID, 0, len(s.live))
	for id := range s.live {
		live = append(live, id)
	}
	s.fakeSwitch.mu.Unlock()
	s.tmu.Lock()
	n := 0
	for _, id := range live {
		if s.trunkOf[id] == req.Trunk {
			n++
		}
	}
	s.busiest[req.Trunk] = max(s.busiest[req.Trunk], n)
	s.trunkOf[req.CallID] = req.Trunk
	s.sentAt[req.Trunk] = append(s.sentAt[req.Trunk], time.Now())
	s.tmu.Unlock()
	return s.fakeSwitch.Originate(ctx, req)
}

// rig is the dialer over fake switches.
type rig struct {
	svc *dialer.Service
	w   *calltest.Watcher
}

type fakeWithLimits struct {
	sw     controller.Switch
	fake   *fakeSwitch
	limits dialer.SwitchLimits
}

func newRig(t *testing.T, switches ...fakeWithLimits) *rig {
	t.Helper()
	store := pgtest.New(t)
	w := calltest.New(10 * time.Second)
	svc, err := dialer.New(dialer.Config{Owner: "test-" + t.Name(), PollInterval: 20 * time.Millisecond,
		RefusalDelay: time.Millisecond, TrunkBusyDelay: 20 * time.Millisecond, OnCallUpdate: w.Observe, Gate: labGate(t)}, store)
	require.NoError(t, err)
	for _, s := range switches {
		s.fake.sink = svc
		svc.AddSwitch(s.sw, s.limits)
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc.Start(ctx)
	t.Cleanup(func() { cancel(); svc.Stop() })
	return &rig{svc: svc, w: w}
}

func (r *rig) call(t *testing.T, to string) controller.Call {
	t.Helper()
	c, created, err := r.svc.CreateCall(context.Background(), controller.CreateCallRequest{To: to, From: "+12125550100"})
	require.NoError(t, err)
	require.True(t, created)
	return c
}

// nextSent returns the next call the switch was asked to place.
func nextSent(t *testing.T, f *fakeSwitch) controller.CallID {
	t.Helper()
	select {
	case id := <-f.sent:
		return id
	case <-time.After(10 * time.Second):
		t.Fatal("no originate came")
		return ""
	}
}

// requireNoneSent fails if the switch is asked to place a call within d.
func requireNoneSent(t *testing.T, f *fakeSwitch, d time.Duration, why string) {
	t.Helper()
	select {
	case id := <-f.sent:
		t.Fatalf("%s: call %s was originated", why, id)
	case <-time.After(d):
	}
}

// mobileRules send New York numbers through the mobile trunk of any switch.
var mobileRules = []controller.RouteRule{
	{Name: "ny mobile", Match: controller.RouteMatch{Prefixes: []string{"+1212"}}, Trunk: "mobile", Log: "NY via mobile"},
}

// TestTrunkSessionLimit: calls routed to a trunk with MaxSessions 2 never
// have more than 2 in flight there, wait in the queue meanwhile without
// holding back the switch's other trunk, and all complete.
func TestTrunkSessionLimit(t *testing.T) {
	t.Parallel()
	sw := newTrunkSwitch("fs1")
	r := newRig(t, fakeWithLimits{sw: sw, fake: sw.fakeSwitch, limits: dialer.SwitchLimits{MaxSessions: 10, DefaultTrunk: "carrier",
		Trunks: []dialer.TrunkLimits{{Name: "mobile", MaxSessions: 2}}}})
	_, err := r.svc.PutRouting(context.Background(), "", mobileRules, -1)
	require.NoError(t, err)

	const n = 7
	calls := make([]controller.Call, n)
	for i := range calls {
		calls[i] = r.call(t, "+12125551005") // answers and stays up
		require.Equal(t, "mobile", calls[i].Trunk)
	}
	up := []controller.CallID{nextSent(t, sw.fakeSwitch), nextSent(t, sw.fakeSwitch)}
	requireNoneSent(t, sw.fakeSwitch, 300*time.Millisecond, "the mobile trunk is full")

	// The default trunk is not held back by the full one.
	other := r.call(t, "+13125551005")
	require.Empty(t, other.Trunk)
	require.Equal(t, other.ID, nextSent(t, sw.fakeSwitch))

	for done := 0; done < n; done++ {
		r.w.WaitState(t, up[0], controller.CallAnswered)
		sw.end(up[0], true)
		r.w.WaitState(t, up[0], controller.CallCompleted)
		up = up[1:]
		if done+len(up) < n-1 {
			up = append(up, nextSent(t, sw.fakeSwitch))
		}
	}
	for _, c := range calls {
		got := r.w.WaitState(t, c.ID, controller.CallCompleted)
		require.Equal(t, "mobile", got.Trunk)
		require.Equal(t, 1, sw.originateCount(c.ID), "each call originated once")
	}
	sw.tmu.Lock()
	defer sw.tmu.Unlock()
	require.LessOrEqual(t, sw.busiest["mobile"], 1, "an originate came while the trunk's 2 slots were taken")
	require.Len(t, sw.sentAt["mobile"], n)
}

// TestTrunkRate: a trunk's calls are paced to its MaxCPS.
func TestTrunkRate(t *testing.T) {
	t.Parallel()
	sw := newTrunkSwitch("fs1")
	r := newRig(t, fakeWithLimits{sw: sw, fake: sw.fakeSwitch, limits: dialer.SwitchLimits{DefaultTrunk: "carrier",
		Trunks: []dialer.TrunkLimits{{Name: "mobile", MaxCPS: 10}}}})
	_, err := r.svc.PutRouting(context.Background(), "", mobileRules, -1)
	require.NoError(t, err)
	const n = 15 // more than a batch may take at once: some are held and come back
	var calls []controller.Call
	for range n {
		calls = append(calls, r.call(t, "+12125551001"))
	}
	for _, c := range calls {
		r.w.WaitState(t, c.ID, controller.CallCompleted)
	}
	sw.tmu.Lock()
	defer sw.tmu.Unlock()
	at := sw.sentAt["mobile"]
	require.Len(t, at, n)
	require.GreaterOrEqual(t, at[n-1].Sub(at[0]), time.Duration(n-1)*100*time.Millisecond-20*time.Millisecond,
		"15 calls at 10 a second take 1.4 s at least")
}

// TestSwitchesShareQueueByCapacity: owners claim from one queue up to their
// free capacity, so calls spread over switches by it, and a switch that is
// down takes none.
func TestSwitchesShareQueueByCapacity(t *testing.T) {
	t.Parallel()
	small, big := newFakeSwitch("fs1"), newFakeSwitch("fs2")
	r := newRig(t, fakeWithLimits{sw: small, fake: small, limits: dialer.SwitchLimits{MaxSessions: 1}},
		fakeWithLimits{sw: big, fake: big, limits: dialer.SwitchLimits{MaxSessions: 3}})
	var calls []controller.Call
	for range 4 {
		calls = append(calls, r.call(t, "+12125551005")) // stay up
	}
	for _, c := range calls {
		r.w.WaitState(t, c.ID, controller.CallAnswered)
	}
	live := func(f *fakeSwitch) int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.live)
	}
	require.Equal(t, 1, live(small))
	require.Equal(t, 3, live(big))
	for _, f := range []*fakeSwitch{small, big} {
		f.mu.Lock()
		busiest := f.busiest
		f.mu.Unlock()
		require.Less(t, busiest, map[*fakeSwitch]int{small: 1, big: 3}[f], f.name)
	}

	// fs2 goes down: its calls end, and new calls all go to fs1.
	big.mu.Lock()
	big.connected = false
	big.mu.Unlock()
	for _, c := range calls {
		f := small
		if small.originateCount(c.ID) == 0 {
			f = big
		}
		f.end(c.ID, true)
		r.w.WaitState(t, c.ID, controller.CallCompleted)
	}
	for range 3 {
		c := r.call(t, "+12125551001")
		r.w.WaitState(t, c.ID, controller.CallCompleted)
		require.Equal(t, 1, small.originateCount(c.ID))
		require.Zero(t, big.originateCount(c.ID))
	}
}

// TestRoutingRules: validation names the field, API calls are routed by the
// first rule that matches (a request naming its switch keeps it), and the
// dry run explains the choice.
func TestRoutingRules(t *testing.T) {
	t.Parallel()
	fs1, fs2 := newFakeSwitch("fs1"), newFakeSwitch("fs2")
	r := newRig(t,
		fakeWithLimits{sw: fs1, fake: fs1, limits: dialer.SwitchLimits{DefaultTrunk: "carrier", Trunks: []dialer.TrunkLimits{{Name: "mobile"}}}},
		fakeWithLimits{sw: fs2, fake: fs2, limits: dialer.SwitchLimits{DefaultTrunk: "carrier", Trunks: []dialer.TrunkLimits{{Name: "intl"}}}})
	ctx := context.Background()

	bad := []struct {
		rule  controller.RouteRule
		field string
	}{
		{controller.RouteRule{Match: controller.RouteMatch{Prefixes: []string{"1212"}}}, "rules[1].match.prefixes[0]"},
		{controller.RouteRule{Match: controller.RouteMatch{Prefixes: []string{"+1", "+12a"}}}, "rules[1].match.prefixes[1]"},
		{controller.RouteRule{Match: controller.RouteMatch{Countries: []string{"XX"}}}, "rules[1].match.countries[0]"},
		{controller.RouteRule{Match: controller.RouteMatch{Types: []string{"cell"}}}, "rules[1].match.types[0]"},
		{controller.RouteRule{Switch: "fs9"}, "rules[1].switch"},
		{controller.RouteRule{Switch: "fs2", Trunk: "mobile"}, "rules[1].trunk"},
		{controller.RouteRule{Trunk: "mobile"}, "rules[1].trunk"}, // fs2 has no mobile trunk
		{controller.RouteRule{Trunk: "a b"}, "rules[1].trunk"},
		{controller.RouteRule{Log: "x\ny"}, "rules[1].log"},
		{controller.RouteRule{Name: string(make([]byte, 300))}, "rules[1].name"},
	}
	for _, tc := range bad {
		_, err := r.svc.PutRouting(ctx, "", []controller.RouteRule{{}, tc.rule}, -1)
		require.Equal(t, controller.EINVALID, controller.ErrorCode(err), tc.field)
		require.Equal(t, tc.field, controller.ErrorField(err), "%v", err)
	}
	table, err := r.svc.Routing(ctx, "")
	require.NoError(t, err)
	require.Zero(t, table.Version, "refused documents store nothing")

	rules := []controller.RouteRule{
		{Name: "uk mobiles", Match: controller.RouteMatch{Countries: []string{"gb"}, Types: []string{"mobile"}}, Switch: "fs2", Trunk: "intl"},
		{Name: "ny", Match: controller.RouteMatch{Prefixes: []string{"+1212", "+1646"}}, Switch: "fs1", Trunk: "mobile", Log: "NY line"},
		{Name: "rest of the US", Match: controller.RouteMatch{Countries: []string{"US"}}, Switch: "fs2"},
	}
	table, err = r.svc.PutRouting(ctx, "", rules, 0)
	require.NoError(t, err)
	require.EqualValues(t, 1, table.Version)
	require.Equal(t, []string{"GB"}, table.Rules[0].Match.Countries, "stored in upper case")
	_, err = r.svc.PutRouting(ctx, "", rules, 0)
	require.Equal(t, controller.ECONFLICT, controller.ErrorCode(err), "If-Match: version 1 is stored now")

	for _, tc := range []struct {
		to, sw, trunk string
		rule          int // -1: none
		kind, country string
	}{
		{"+447400123456", "fs2", "intl", 0, "mobile", "GB"},
		{"+442071838750", "", "", -1, "fixed_line", "GB"},
		{"+12125551001", "fs1", "mobile", 1, "fixed_line_or_mobile", "US"},
		{"+13125551001", "fs2", "carrier", 2, "fixed_line_or_mobile", "US"}, // the switch's default trunk
	} {
		d, err := r.svc.DryRunRoute(ctx, "", tc.to)
		require.NoError(t, err, tc.to)
		require.Equal(t, tc.sw, d.Switch, tc.to)
		require.Equal(t, tc.trunk, d.Trunk, tc.to)
		require.Equal(t, tc.kind, d.NumberType, tc.to)
		require.Equal(t, tc.country, d.Country, tc.to)
		if tc.rule < 0 {
			require.Nil(t, d.Rule, tc.to)
		} else {
			require.Equal(t, &controller.RouteRef{Index: tc.rule, Name: rules[tc.rule].Name}, d.Rule, tc.to)
		}
	}
	_, err = r.svc.DryRunRoute(ctx, "", "+1212555")
	require.Equal(t, "to", controller.ErrorField(err))

	ny := r.call(t, "+12125551001")
	require.Equal(t, "fs1", ny.Switch)
	require.Equal(t, "mobile", ny.Trunk)
	got := r.w.WaitState(t, ny.ID, controller.CallCompleted)
	require.Equal(t, "mobile", got.Trunk)
	require.Equal(t, 1, fs1.originateCount(ny.ID))

	// A request that names its switch keeps it, on the default trunk.
	c, _, err := r.svc.CreateCall(ctx, controller.CreateCallRequest{To: "+12125551001", From: "+12125550100", Switch: "fs2"})
	require.NoError(t, err)
	require.Equal(t, "fs2", c.Switch)
	require.Empty(t, c.Trunk)
	r.w.WaitState(t, c.ID, controller.CallCompleted)
	require.Equal(t, 1, fs2.originateCount(c.ID))

	// No rule matches: any switch, default trunk.
	c = r.call(t, "+442071838750")
	require.Empty(t, c.Switch)
	require.Empty(t, c.Trunk)
}
