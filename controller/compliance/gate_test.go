package compliance_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// okRule allows; errRule fails; panicRule panics; silentRule blocks
// without a reason; cancelRule cancels the check's context.
type (
	okRule     struct{ n string }
	errRule    struct{ err error }
	panicRule  struct{}
	silentRule struct{}
	cancelRule struct{ cancel context.CancelFunc }
)

func (r okRule) Name() string { return "ok" + r.n }
func (okRule) Check(context.Context, *compliance.Input) (controller.Verdict, error) {
	return controller.Verdict{Allow: true}, nil
}
func (errRule) Name() string { return "broken" }
func (r errRule) Check(context.Context, *compliance.Input) (controller.Verdict, error) {
	return controller.Verdict{Allow: true}, r.err
}
func (panicRule) Name() string { return "panicky" }
func (panicRule) Check(context.Context, *compliance.Input) (controller.Verdict, error) {
	panic("boom")
}
func (silentRule) Name() string { return "silent" }
func (silentRule) Check(context.Context, *compliance.Input) (controller.Verdict, error) {
	return controller.Verdict{}, nil
}
func (cancelRule) Name() string { return "cancel" }
func (r cancelRule) Check(context.Context, *compliance.Input) (controller.Verdict, error) {
	r.cancel()
	return controller.Verdict{Allow: true}, nil
}

func request(to string) controller.CheckRequest {
	return controller.CheckRequest{TenantID: tenant, To: to, From: ownedFrom, Purpose: controller.PurposeMarketing, Stage: controller.StageCreate}
}

func TestGateAllowsAClearCall(t *testing.T) {
	t.Parallel()
	now := utc(2026, 6, 10, 15, 0, 0) // 11:00 EDT, Wednesday
	us, _ := compliance.Preset("us")
	f := newFake()
	f.lists = []controller.DNCList{{ID: "n1", Kind: "national", LastScrubAt: now.AddDate(0, 0, -3)}}
	f.owned[tenant+"|"+ownedFrom] = true
	f.consents[nyNumber+"|marketing"] = &controller.Consent{ID: "c1", Purpose: controller.PurposeMarketing, GivenAt: now.AddDate(0, -1, 0)}
	req := request("(212) 555-1234")
	req.Region = "US"
	d, err := newGate(t, us, now).Check(context.Background(), req, f)
	require.NoError(t, err)
	require.True(t, d.Allow, "%+v", d)
	require.Empty(t, d.Reasons)
	require.Equal(t, "preset-us", d.PolicyID)
	require.Equal(t, 1, d.PolicyVersion)
	require.Equal(t, controller.StageCreate, d.Stage)
	require.Equal(t, nyNumber, d.Number)
	require.Equal(t, now, d.DecidedAt)
	require.Len(t, d.Verdicts, 1+len(compliance.DefaultRules(nil)))
	names := map[string]bool{}
	for _, v := range d.Verdicts {
		require.True(t, v.Allow, "%+v", v)
		names[v.Rule] = true
	}
	require.Len(t, names, len(d.Verdicts), "rule names are unique")
	require.Contains(t, d.Verdicts[len(d.Verdicts)-1].Evidence, "tz:America/New_York")
}

func TestGateListsAllReasons(t *testing.T) {
	t.Parallel()
	now := utc(2026, 12, 25, 11, 0, 0) // 06:00 EST on a holiday
	p := anyTime()
	p.Hours = everyDay("08:00", "21:00")
	p.Holidays = map[string][]string{"US": {"2026-12-25"}}
	p.ConsentRequired = []controller.Purpose{controller.PurposeMarketing}
	p.CallerIDOwnedOnly = true
	p.DailyCap = 2
	p.Windows = []compliance.CapWindow{{Count: 2, Period: compliance.Duration(time.Hour)}}
	p.NationalScrubMaxAgeDays = 31
	p.SuspiciousRanges = []compliance.RangeRule{{Prefix: "+1212", Action: compliance.ActionReview}}
	f := newFake()
	f.refusals[nyNumber] = &controller.Refusal{ID: "r1", At: now.AddDate(0, 0, -1)}
	f.hits[nyNumber] = []controller.DNCHit{{ListID: "i1", ListKind: "internal"}, {ListID: "n1", ListKind: "national"}}
	f.lists = []controller.DNCList{{ID: "n1", Kind: "national"}}
	f.attempts[nyNumber] = []time.Time{now.Add(-time.Minute), now.Add(-2 * time.Minute)}
	g := newGate(t, p, now, compliance.WithNumberLookup(fakeHLR{reassigned: map[string]bool{nyNumber: true}}))

	d, err := g.Check(context.Background(), request(nyNumber), f)
	require.NoError(t, err)
	require.False(t, d.Allow)
	require.Equal(t, []string{
		controller.ReasonCallerIDNotOwned, controller.ReasonCapDaily, controller.ReasonCapWindow,
		controller.ReasonConsentMissing, controller.ReasonDNCInternal, controller.ReasonDNCList,
		controller.ReasonDNCScrubStale, controller.ReasonHoliday, controller.ReasonNumberReassigned,
		controller.ReasonNumberSuspicious, controller.ReasonOutsideHours, controller.ReasonRefused,
	}, d.Reasons)
	for _, v := range d.Verdicts {
		require.NotContains(t, v.Detail, "2125551234", "detail leaks the number: %s", v.Detail)
	}
}

func TestGateFailsClosed(t *testing.T) {
	t.Parallel()
	now := utc(2026, 6, 10, 15, 0, 0)
	leaky := errors.New("query failed for +1 212 555 1234 at 2026")
	tests := []struct {
		name   string
		rules  []compliance.Rule
		errs   map[string]error
		rule   string
		detail string
	}{
		{"rule returns an error", []compliance.Rule{okRule{"1"}, errRule{leaky}, okRule{"2"}}, nil, "broken", "****1234"},
		{"rule panics", []compliance.Rule{panicRule{}, okRule{}}, nil, "panicky", "panic: boom"},
		{"rule blocks without a reason", []compliance.Rule{silentRule{}}, nil, "silent", "without a reason"},
		{"lookup fails", nil, map[string]error{"CountAttempts": leaky}, "cap_daily", "counting today's attempts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake()
			for k, v := range tt.errs {
				f.errs[k] = v
			}
			p := anyTime()
			p.DailyCap = 15
			var opts []compliance.Option
			if tt.rules != nil {
				opts = append(opts, compliance.WithRules(tt.rules...))
			}
			d, err := newGate(t, p, now, opts...).Check(context.Background(), request(nyNumber), f)
			require.NoError(t, err)
			require.False(t, d.Allow)
			require.Equal(t, []string{controller.ReasonRuleError}, d.Reasons)
			var found bool
			for _, v := range d.Verdicts {
				if v.Rule == tt.rule {
					found = true
					require.False(t, v.Allow)
					require.Equal(t, controller.ReasonRuleError, v.Reason)
					require.Contains(t, v.Detail, tt.detail)
					require.NotContains(t, v.Detail, "212 555 1234")
				}
			}
			require.True(t, found, "no verdict for %s: %+v", tt.rule, d.Verdicts)
			if tt.rules != nil {
				require.Len(t, d.Verdicts, 1+len(tt.rules), "every rule ran")
			}
		})
	}
}

func TestGateCheckOutcomes(t *testing.T) {
	t.Parallel()
	now := utc(2026, 6, 10, 15, 0, 0)
	bad := anyTime()
	bad.Hours = nil
	tests := []struct {
		name    string
		src     compliance.PolicySource
		req     controller.CheckRequest
		lookup  controller.Lookup
		reasons []string
		rule    string
		detail  string
	}{
		{"invalid number", compliance.StaticPolicy(anyTime()), request("+1 555 555 1234"), newFake(),
			[]string{controller.ReasonNumberInvalid}, "number", "not a valid number"},
		{"national number without region", compliance.StaticPolicy(anyTime()), request("212 555 1234"), newFake(),
			[]string{controller.ReasonNumberInvalid}, "number", "no country code"},
		{"policy source fails", compliance.PolicySourceFunc(func(context.Context, controller.CheckRequest) (compliance.Policy, error) {
			return compliance.Policy{}, controller.Errorf(controller.ENOTFOUND, "no policy for campaign")
		}), request(nyNumber), newFake(), []string{controller.ReasonRuleError}, "policy", "no policy for campaign"},
		{"invalid policy", compliance.StaticPolicy(bad), request(nyNumber), newFake(),
			[]string{controller.ReasonRuleError}, "policy", "hours"},
		{"no lookup", compliance.StaticPolicy(anyTime()), request(nyNumber), nil,
			[]string{controller.ReasonRuleError}, "lookup", "no lookup"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g, err := compliance.New(tt.src, compliance.WithNow(func() time.Time { return now }))
			require.NoError(t, err)
			d, err := g.Check(context.Background(), tt.req, tt.lookup)
			require.NoError(t, err)
			require.False(t, d.Allow)
			require.Equal(t, tt.reasons, d.Reasons)
			require.Equal(t, tt.rule, d.Verdicts[len(d.Verdicts)-1].Rule)
			require.Contains(t, d.Verdicts[len(d.Verdicts)-1].Detail, tt.detail)
			require.NotContains(t, d.Verdicts[len(d.Verdicts)-1].Detail, "555 1234")
		})
	}
}

func TestGateContextDone(t *testing.T) {
	t.Parallel()
	now := utc(2026, 6, 10, 15, 0, 0)
	t.Run("before", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		d, err := newGate(t, anyTime(), now).Check(ctx, request(nyNumber), newFake())
		require.ErrorIs(t, err, context.Canceled)
		require.False(t, d.Allow)
	})
	t.Run("during", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		g := newGate(t, anyTime(), now, compliance.WithRules(okRule{"1"}, cancelRule{cancel}, okRule{"2"}))
		d, err := g.Check(ctx, request(nyNumber), newFake())
		require.ErrorIs(t, err, context.Canceled)
		require.False(t, d.Allow)
		require.Equal(t, []string{controller.ReasonRuleError}, d.Reasons)
	})
}

func TestGateInstantJudged(t *testing.T) {
	t.Parallel()
	night := utc(2026, 6, 10, 6, 0, 0) // 02:00 EDT
	noon := utc(2026, 6, 10, 16, 0, 0) // 12:00 EDT
	p := anyTime()
	p.Hours = everyDay("08:00", "21:00")
	g := newGate(t, p, night)

	req := request(nyNumber)
	req.At = noon
	d, err := g.Check(context.Background(), req, newFake())
	require.NoError(t, err)
	require.True(t, d.Allow, "a dry run at create may ask about another instant: %v", d.Reasons)
	require.Equal(t, night, d.DecidedAt)

	req.Stage = controller.StageDial
	d, err = g.Check(context.Background(), req, newFake())
	require.NoError(t, err)
	require.False(t, d.Allow, "a dial is judged on the gate's clock, never the caller's")
	require.Equal(t, []string{controller.ReasonOutsideHours}, d.Reasons)
}

func TestGateZoneOverride(t *testing.T) {
	t.Parallel()
	at := utc(2026, 6, 10, 12, 30, 0) // 08:30 EDT, 05:30 PDT
	p := anyTime()
	p.Hours = everyDay("08:00", "21:00")
	d, err := newGate(t, p, at).Check(context.Background(), request(nyNumber), newFake())
	require.NoError(t, err)
	require.True(t, d.Allow)

	p.ZoneOverrides = map[string][]string{"+1212": {"America/Los_Angeles"}, "+1": {"America/New_York"}}
	d, err = newGate(t, p, at).Check(context.Background(), request(nyNumber), newFake())
	require.NoError(t, err)
	require.Equal(t, []string{controller.ReasonOutsideHours}, d.Reasons, "the longest prefix wins")
}

func TestGateMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	now := utc(2026, 6, 10, 15, 0, 0)
	p := anyTime()
	p.DailyCap = 1
	g1 := newGate(t, p, now, compliance.WithRegisterer(reg))
	g2 := newGate(t, p, now, compliance.WithRegisterer(reg)) // shares the collectors
	f := newFake()
	f.attempts[nyNumber] = []time.Time{now.Add(-time.Minute)}
	for _, g := range []*compliance.Gate{g1, g2} {
		_, err := g.Check(context.Background(), request(nyNumber), f)
		require.NoError(t, err)
	}
	_, err := g1.Check(context.Background(), request(miamiNumber), f)
	require.NoError(t, err)

	families, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.GetCounter() != nil:
				got[key] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				got[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	require.Equal(t, map[string]float64{
		"callgate_compliance_blocked_total,reason=cap_daily":             2,
		"callgate_compliance_decision_seconds,result=block,stage=create": 2,
		"callgate_compliance_decision_seconds,result=allow,stage=create": 1,
	}, got)
}

func TestGateConcurrentChecks(t *testing.T) {
	t.Parallel()
	now := utc(2026, 6, 10, 15, 0, 0)
	us, _ := compliance.Preset("us")
	g := newGate(t, us, now, compliance.WithRegisterer(prometheus.NewRegistry()))
	f := newFake()
	f.lists = []controller.DNCList{{ID: "n1", Kind: "national", LastScrubAt: now}}
	f.owned[tenant+"|"+ownedFrom] = true
	numbers := []string{nyNumber, miamiNumber, nevadaNumber, phoenixNumber, satellite}
	var wg sync.WaitGroup
	results := make([]controller.Decision, 50)
	for i := range results {
		wg.Go(func() {
			req := request(numbers[i%len(numbers)])
			req.Purpose = controller.PurposeService
			d, err := g.Check(context.Background(), req, f)
			if err == nil {
				results[i] = d
			}
		})
	}
	wg.Wait()
	for i, d := range results {
		want := numbers[i%len(numbers)] != satellite
		require.Equal(t, want, d.Allow, "%s: %v", numbers[i%len(numbers)], d.Reasons)
	}
}

func TestNewGateRejectsBadConfig(t *testing.T) {
	t.Parallel()
	_, err := compliance.New(nil)
	require.Error(t, err, "no policy source")
	src := compliance.StaticPolicy(anyTime())
	_, err = compliance.New(src, compliance.WithRules([]compliance.Rule{}...))
	require.Error(t, err, "no rules")
	_, err = compliance.New(src, compliance.WithRules(okRule{}, nil))
	require.Error(t, err, "nil rule")
	_, err = compliance.New(src, compliance.WithRules(okRule{}, okRule{}))
	require.Error(t, err, "duplicate names")
	g, err := compliance.New(src, compliance.WithNow(nil))
	require.NoError(t, err, "nil clock means time.Now")
	_, err = g.Check(context.Background(), request(nyNumber), newFake())
	require.NoError(t, err)
}

func TestMaskedDetails(t *testing.T) {
	t.Parallel()
	// Every verdict of a thoroughly blocked call is free of the number.
	now := utc(2026, 6, 10, 15, 0, 0)
	us, _ := compliance.Preset("us")
	f := newFake()
	f.errs["CallerIDOwned"] = errors.New("no row for tenant t1 number +12025550100 / 2125551234")
	d, err := newGate(t, us, now).Check(context.Background(), request(nyNumber), f)
	require.NoError(t, err)
	for _, v := range d.Verdicts {
		require.False(t, strings.Contains(v.Detail, "2125551234") || strings.Contains(v.Detail, "2025550100"), v.Detail)
	}
}
