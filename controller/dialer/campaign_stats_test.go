package dialer

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

// The expected figures below were computed apart from this code (Python's
// math module, the formulas as written in the comments).

func TestWilson(t *testing.T) {
	t.Parallel()
	cases := []struct {
		x, n      int
		low, high float64
	}{
		// p = .5, z² = 3.841459: centre (.5 + .019207) / 1.038415 = .5,
		// half 1.959964 · √(.0025 + .000096) / 1.038415 = .096169.
		{50, 100, 0.4038315303659956, 0.5961684696340044},
		// p = 0: centre = half = (z²/20) / (1 + z²/10) = .138766; the
		// interval does not collapse to 0 as p ± z·se would.
		{0, 10, 0, 0.2775327998628892},
		{10, 10, 0.7224672001371107, 1},
		{1, 20, 0.008881448800795402, 0.23613119344674205},
		{81, 263, 0.2552885198782742, 0.36620957698280004},
	}
	for _, tc := range cases {
		got := Wilson(tc.x, tc.n)
		require.NotNil(t, got)
		require.InDelta(t, tc.low, got.Low, 1e-9, "%d/%d", tc.x, tc.n)
		require.InDelta(t, tc.high, got.High, 1e-9, "%d/%d", tc.x, tc.n)
	}
	require.Nil(t, Wilson(0, 0), "no trials: no interval")
}

func TestTwoProportionZTest(t *testing.T) {
	t.Parallel()
	cases := []struct {
		x1, n1, x2, n2 int
		diff, p        float64
	}{
		// pooled .375, se = √(.375 · .625 · .02) = .068465, z = .15 / se
		// = 2.190890, p = erfc(z/√2) = .028460.
		{30, 100, 45, 100, 0.15, 0.02845973691631057},
		{120, 1000, 150, 1000, 0.03, 0.04964038686536881}, // z = 1.963050
		{5, 20, 12, 20, 0.35, 0.0251607592004088},         // z = 2.238926
		{10, 50, 10, 50, 0, 1},                            // z = 0
		{0, 40, 0, 40, 0, 1},                              // se = 0: no evidence either way
		{4, 40, 0, 0, 0, 1},                               // an empty group
	}
	for _, tc := range cases {
		diff, p := TwoProportionZTest(tc.x1, tc.n1, tc.x2, tc.n2)
		require.InDelta(t, tc.diff, diff, 1e-12, "%+v", tc)
		require.InDelta(t, tc.p, p, 1e-12, "%+v", tc)
	}
}

// statsCampaign is a campaign with two variants and a third one that has
// not been called yet.
var statsCampaign = controller.Campaign{ID: "c1", Variants: []controller.Variant{
	{Name: "control", FlowID: "pitch-a", Weight: 1}, {Name: "bold", FlowID: "pitch-b", Weight: 1},
	{Name: "late", FlowID: "pitch-c", Weight: 1}}}

// statsCounts are the counts of statsCampaign's calls, with 10 calls of no
// variant (placed before it had variants: they count only overall).
var statsCounts = controller.CampaignCallCounts{
	Variants: []controller.VariantCallCounts{
		{Variant: "", Originated: 10, Reached: 5, Answered: 5, TalkSeconds: 50},
		{Variant: "bold", Leads: 105, Originated: 100, Reached: 85, Answered: 60, TalkSeconds: 2400, Conversions: 45, Abandoned: 3},
		{Variant: "control", Leads: 110, Originated: 100, Reached: 80, Answered: 50, TalkSeconds: 1500, Conversions: 30, Abandoned: 2},
	},
	Blocked: 4, BlockedReasons: map[string]int{"dnc_list": 3, "outside_hours": 2},
}

func TestComputeStats(t *testing.T) {
	t.Parallel()
	conv := []string{"sale"}
	st := ComputeStats(statsCampaign, conv, statsCounts)
	require.Equal(t, "c1", st.CampaignID)
	require.Equal(t, conv, st.ConversionDispositions)
	require.Len(t, st.Variants, 3, "in the campaign's order")

	control := st.Variants[0]
	require.Equal(t, "control", control.Name)
	require.Equal(t, "pitch-a", control.FlowID)
	require.Equal(t, 110, control.Leads)
	require.Equal(t, 100, control.Attempts)
	require.Equal(t, 50, control.Connected)
	require.InDelta(t, 0.5, control.ConnectRate, 1e-12)
	require.InDelta(t, 0.4038315303659956, control.ConnectInterval.Low, 1e-9)
	require.InDelta(t, 30.0, control.AvgTalkSeconds, 1e-12, "1500 s over 50 answered")
	require.InDelta(t, 0.3, control.ConversionRate, 1e-12)
	require.Equal(t, *Wilson(30, 100), *control.ConversionInterval)
	require.Nil(t, control.VsControl, "the control is not compared with itself")

	bold := st.Variants[1]
	require.InDelta(t, 40.0, bold.AvgTalkSeconds, 1e-12)
	require.InDelta(t, 0.45, bold.ConversionRate, 1e-12)
	require.NotNil(t, bold.VsControl)
	require.Equal(t, "control", bold.VsControl.Control)
	require.InDelta(t, 0.15, bold.VsControl.Difference, 1e-12)
	require.InDelta(t, 0.02845973691631057, bold.VsControl.PValue, 1e-12)
	require.True(t, bold.VsControl.Significant, "p < .05 with 100 attempts each")

	late := st.Variants[2]
	require.Zero(t, late.Attempts)
	require.Nil(t, late.ConnectInterval)
	require.Nil(t, late.VsControl, "nothing to compare yet")

	// Overall: 210 originated, 170 reached, 115 answered, 3950 s talked,
	// 75 conversions, 5 abandoned.
	o := st.Overall
	require.Empty(t, o.Name)
	require.Equal(t, 215, o.Leads)
	require.Equal(t, 210, o.Attempts)
	require.Equal(t, 115, o.Connected)
	require.InDelta(t, 3950.0/115, o.AvgTalkSeconds, 1e-12)
	require.InDelta(t, 75.0/210, o.ConversionRate, 1e-12)
	m := st.Metrics
	require.Equal(t, 210, m.Originated)
	require.InDelta(t, 170.0/210, m.CallSetupSuccessRate, 1e-12)
	require.InDelta(t, 115.0/210, m.AnswerSeizureRatio, 1e-12)
	require.InDelta(t, 3950.0/115, m.AverageCallDuration, 1e-12)
	require.InDelta(t, 5.0/115, m.AbandonRate, 1e-12)
	require.Equal(t, 4, m.BlockedAttempts)
	require.Equal(t, statsCounts.BlockedReasons, m.BlockedByReason)
	require.Nil(t, m.AgentUtilisation)

	// Significance needs 30 attempts in each group, whatever the p-value.
	small := controller.CampaignCallCounts{Variants: []controller.VariantCallCounts{
		{Variant: "control", Originated: 20, Conversions: 5}, {Variant: "bold", Originated: 20, Conversions: 12}}}
	st = ComputeStats(statsCampaign, conv, small)
	require.InDelta(t, 0.0251607592004088, st.Variants[1].VsControl.PValue, 1e-12)
	require.False(t, st.Variants[1].VsControl.Significant)
	big := controller.CampaignCallCounts{Variants: []controller.VariantCallCounts{
		{Variant: "control", Originated: 1000, Conversions: 120}, {Variant: "bold", Originated: 1000, Conversions: 150}}}
	require.True(t, ComputeStats(statsCampaign, conv, big).Variants[1].VsControl.Significant, "p = .0496")

	// Nothing placed: zeros, no intervals, an empty list of variants.
	none := ComputeStats(controller.Campaign{ID: "c2"}, conv, controller.CampaignCallCounts{})
	require.NotNil(t, none.Variants)
	require.Empty(t, none.Variants)
	require.Zero(t, none.Metrics.AnswerSeizureRatio)
	require.Nil(t, none.Overall.ConversionInterval)
	require.NotNil(t, none.Metrics.BlockedByReason)
}

func TestVariantOfIsDeterministicAndProportional(t *testing.T) {
	t.Parallel()
	variants := []controller.Variant{{Name: "a", Weight: 1}, {Name: "b", Weight: 2}, {Name: "c", Weight: 7}}
	const campaign, n = "6f1c9d2e-8a4b-4c1d-9e0f-123456789abc", 100_000
	split := map[string]int{}
	for lead := int64(1); lead <= n; lead++ {
		v := controller.VariantOf(campaign, lead, variants)
		require.Equal(t, v, controller.VariantOf(campaign, lead, variants), "the same lead, the same variant")
		split[v]++
	}
	// Shares of 10 %, 20 % and 70 %; a binomial's standard deviation over
	// 100 000 leads is at most 158 (0.16 %).
	require.InDelta(t, 0.1, float64(split["a"])/n, 0.01, "%v", split)
	require.InDelta(t, 0.2, float64(split["b"])/n, 0.01, "%v", split)
	require.InDelta(t, 0.7, float64(split["c"])/n, 0.01, "%v", split)

	// Another campaign splits the same leads differently.
	moved := 0
	for lead := int64(1); lead <= 1000; lead++ {
		if controller.VariantOf(campaign, lead, variants) != controller.VariantOf("another", lead, variants) {
			moved++
		}
	}
	require.Greater(t, moved, 300)
	require.Empty(t, controller.VariantOf(campaign, 1, nil), "no variants")
}

func TestValidateVariants(t *testing.T) {
	t.Parallel()
	two := func() []controller.Variant {
		return []controller.Variant{{Name: "control", FlowID: "pitch-a"}, {Name: "bold", FlowID: "pitch-b", Weight: 3}}
	}
	c := controller.Campaign{Variants: two(), ConversionDispositions: []string{"Sale", "won", "sale"}}
	require.NoError(t, validateVariants(&c))
	require.Equal(t, 1, c.Variants[0].Weight, "equal shares by default")
	require.Equal(t, 3, c.Variants[1].Weight)
	require.Equal(t, []string{"sale", "won"}, c.ConversionDispositions)
	require.NoError(t, validateVariants(&controller.Campaign{FlowID: "plain"}), "no variants: unchanged")

	many := make([]controller.Variant, 11)
	for i := range many {
		many[i] = controller.Variant{Name: fmt.Sprintf("v%d", i), FlowID: "f"}
	}
	cases := []struct {
		edit  func(*controller.Campaign)
		field string
	}{
		{func(c *controller.Campaign) { c.Variants = c.Variants[:1] }, "variants"},
		{func(c *controller.Campaign) { c.Variants = many }, "variants"},
		{func(c *controller.Campaign) { c.FlowID = "plain" }, "flow_id"},
		{func(c *controller.Campaign) { c.Variants[1].Name = "Bold One" }, "variants[1].name"},
		{func(c *controller.Campaign) { c.Variants[1].Name = "" }, "variants[1].name"},
		{func(c *controller.Campaign) { c.Variants[1].Name = "control" }, "variants[1].name"},
		{func(c *controller.Campaign) { c.Variants[0].FlowID = "" }, "variants[0].flow_id"},
		{func(c *controller.Campaign) { c.Variants[0].FlowID = "../x" }, "variants[0].flow_id"},
		{func(c *controller.Campaign) { c.Variants[1].Weight = -1 }, "variants[1].weight"},
		{func(c *controller.Campaign) { c.Variants[1].Weight = 1001 }, "variants[1].weight"},
		{func(c *controller.Campaign) { c.ConversionDispositions = []string{"sale", "no sale"} }, "conversion_dispositions[1]"},
		{func(c *controller.Campaign) { c.ConversionDispositions = []string{""} }, "conversion_dispositions[0]"},
		{func(c *controller.Campaign) { c.ConversionDispositions = strings.Fields(strings.Repeat("sale ", 21)) }, "conversion_dispositions"},
	}
	for _, tc := range cases {
		c := controller.Campaign{Variants: two()}
		tc.edit(&c)
		err := validateVariants(&c)
		require.Equal(t, controller.EINVALID, controller.ErrorCode(err), tc.field)
		require.Equal(t, tc.field, controller.ErrorField(err))
	}
}

// statsStore is a campaign store holding one running campaign and its
// counts; it counts the readings.
type statsStore struct {
	campaignStore
	c     controller.Campaign
	k     controller.CampaignCallCounts
	reads atomic.Int32
	fail  error
}

func (s *statsStore) GetCampaign(_ context.Context, tenant, id string) (controller.Campaign, error) {
	if id != s.c.ID || tenant != controller.DefaultTenant {
		return controller.Campaign{}, controller.Errorf(controller.ENOTFOUND, "campaign %s not found", id)
	}
	return s.c, nil
}

func (s *statsStore) SettlingCampaigns(context.Context) ([]controller.Campaign, error) {
	return nil, nil
}

func (s *statsStore) RunningCampaigns(context.Context) ([]controller.Campaign, error) {
	return []controller.Campaign{s.c}, nil
}

func (s *statsStore) CampaignCallCounts(_ context.Context, id string, conv []string) (controller.CampaignCallCounts, error) {
	s.reads.Add(1)
	if s.fail != nil {
		return controller.CampaignCallCounts{}, s.fail
	}
	if id != s.c.ID || strings.Join(conv, ",") != "sale,consented,converted" {
		return controller.CampaignCallCounts{}, fmt.Errorf("unexpected request %s %v", id, conv)
	}
	return s.k, nil
}

func TestCampaignStatsService(t *testing.T) {
	t.Parallel()
	store := &statsStore{c: statsCampaign, k: statsCounts}
	cs := NewCampaigns(CampaignConfig{Logger: slog.New(slog.DiscardHandler)}, store, nil)
	st, err := cs.CampaignStats(context.Background(), "", "c1")
	require.NoError(t, err)
	require.Equal(t, controller.DefaultConversionDispositions, st.ConversionDispositions, "the defaults")
	require.Equal(t, ComputeStats(statsCampaign, st.ConversionDispositions, statsCounts), st)
	_, err = cs.CampaignStats(context.Background(), "other", "c1")
	require.Equal(t, controller.ENOTFOUND, controller.ErrorCode(err))
}

// gauges gathers reg's gauges as name{label values} → value.
func gauges(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			v := m.GetGauge().GetValue()
			if m.GetCounter() != nil {
				v = m.GetCounter().GetValue()
			}
			out[f.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return out
}

func TestCampaignCollector(t *testing.T) {
	t.Parallel()
	store := &statsStore{c: statsCampaign, k: statsCounts}
	reg := prometheus.NewRegistry()
	NewCampaigns(CampaignConfig{Logger: slog.New(slog.DiscardHandler), Registerer: reg}, store, nil)
	got := gauges(t, reg)
	require.Equal(t, 210.0, got["callgate_campaign_calls_originated{c1}"])
	require.InDelta(t, 170.0/210, got["callgate_campaign_call_setup_success_ratio{c1}"], 1e-12)
	require.InDelta(t, 115.0/210, got["callgate_campaign_answer_seizure_ratio{c1}"], 1e-12)
	require.InDelta(t, 3950.0/115, got["callgate_campaign_average_call_duration_seconds{c1}"], 1e-12)
	require.InDelta(t, 5.0/115, got["callgate_campaign_abandon_ratio{c1}"], 1e-12)
	require.Equal(t, 3.0, got["callgate_campaign_blocked_attempts{c1,dnc_list}"])
	require.Equal(t, 2.0, got["callgate_campaign_blocked_attempts{c1,outside_hours}"])
	require.Zero(t, got["callgate_campaign_stats_errors_total{}"])
	require.Len(t, got, 8)

	// A scrape within the reading's age reuses it.
	gauges(t, reg)
	require.Equal(t, int32(1), store.reads.Load())

	// A failed reading leaves the campaign out and is counted; nothing
	// placed yet leaves the ratios out rather than reporting 0.
	fresh := &statsStore{c: controller.Campaign{ID: "c2"}, fail: fmt.Errorf("boom")}
	cs := NewCampaigns(CampaignConfig{Logger: slog.New(slog.DiscardHandler)}, fresh, nil)
	cc := newCampaignCollector(cs)
	cc.maxAge = 0
	reg = prometheus.NewRegistry()
	reg.MustRegister(cc)
	require.Equal(t, map[string]float64{"callgate_campaign_stats_errors_total{}": 1}, gauges(t, reg))
	fresh.fail = nil
	fresh.k = controller.CampaignCallCounts{}
	require.Equal(t, map[string]float64{"callgate_campaign_calls_originated{c2}": 0,
		"callgate_campaign_stats_errors_total{}": 1}, gauges(t, reg))
}
