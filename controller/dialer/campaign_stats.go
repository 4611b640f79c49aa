package dialer

import (
	"context"
	"math"

	"github.com/callgate/callgate/controller"
)

// z95 is the standard normal quantile of 0.975: a two-sided 95 % interval
// spans z95 standard errors either side.
const z95 = 1.959963984540054

// minSignificantAttempts is the attempts each group of an A/B comparison
// needs before a difference may be called significant: below it the
// normal approximation behind the z-test is not trusted.
const minSignificantAttempts = 30

// CampaignStats returns a campaign's results, overall and per variant, and
// its call metrics, counted from its calls now. Returns ENOTFOUND.
func (cs *Campaigns) CampaignStats(ctx context.Context, tenant, id string) (controller.CampaignStats, error) {
	c, err := cs.store.GetCampaign(ctx, tenantOr(tenant), id)
	if err != nil {
		return controller.CampaignStats{}, err
	}
	conv := conversionDispositions(c)
	k, err := cs.store.CampaignCallCounts(ctx, c.ID, conv)
	if err != nil {
		return controller.CampaignStats{}, err
	}
	st := ComputeStats(c, conv, k)
	if st.Metrics.AgentUtilisation, err = cs.agentUtilisation(ctx, c); err != nil {
		return controller.CampaignStats{}, err
	}
	return st, nil
}

// agentUtilisation is the busy share of the logged-in time of the agents
// taking an agent-mode campaign's calls; nil for other campaigns and
// before any agent logged in.
func (cs *Campaigns) agentUtilisation(ctx context.Context, c controller.Campaign) (*float64, error) {
	if !agentMode(c.Mode) {
		return nil, nil
	}
	busy, in, err := cs.store.CampaignAgentTime(ctx, c.TenantID, c.ID)
	if err != nil || in <= 0 {
		return nil, err
	}
	u := min(1, busy/in)
	return &u, nil
}

// ComputeStats turns a campaign's call counts into its statistics: each
// variant in the campaign's order (counts of a variant the campaign does
// not name, such as calls placed before it had variants, count only
// overall), each compared with the first, the control; rates with their
// 95 % Wilson intervals; and the call metrics. conversions are the
// dispositions that were counted as conversions.
func ComputeStats(c controller.Campaign, conversions []string, k controller.CampaignCallCounts) controller.CampaignStats {
	st := controller.CampaignStats{CampaignID: c.ID, ConversionDispositions: conversions,
		Variants: []controller.VariantStats{}}
	var all controller.VariantCallCounts
	byName := map[string]controller.VariantCallCounts{}
	for _, v := range k.Variants {
		byName[v.Variant] = v
		all.Leads += v.Leads
		all.Originated += v.Originated
		all.Reached += v.Reached
		all.Answered += v.Answered
		all.TalkSeconds += v.TalkSeconds
		all.Conversions += v.Conversions
		all.Abandoned += v.Abandoned
	}
	st.Overall = variantStats(all)
	for i, v := range c.Variants {
		vs := variantStats(byName[v.Name])
		vs.Name, vs.FlowID, vs.Weight = v.Name, v.FlowID, v.Weight
		if i > 0 {
			vs.VsControl = compare(st.Variants[0], vs)
		}
		st.Variants = append(st.Variants, vs)
	}
	blocked := make(map[string]int, len(k.BlockedReasons))
	for r, n := range k.BlockedReasons {
		blocked[r] = n
	}
	st.Metrics = controller.CampaignMetrics{
		Originated:           all.Originated,
		CallSetupSuccessRate: ratio(int64(all.Reached), all.Originated),
		AnswerSeizureRatio:   ratio(int64(all.Answered), all.Originated),
		AverageCallDuration:  ratio(all.TalkSeconds, all.Answered),
		AbandonRate:          ratio(int64(all.Abandoned), all.Answered),
		BlockedAttempts:      k.Blocked,
		BlockedByReason:      blocked,
		// AgentUtilisation stays nil: it comes from the agents' time, not
		// from the calls (campaigns that dial for agents).
	}
	return st
}

// variantStats are the results of one group of calls.
func variantStats(k controller.VariantCallCounts) controller.VariantStats {
	return controller.VariantStats{
		Leads: k.Leads, Attempts: k.Originated, Connected: k.Answered,
		ConnectRate: ratio(int64(k.Answered), k.Originated), ConnectInterval: Wilson(k.Answered, k.Originated),
		AvgTalkSeconds: ratio(k.TalkSeconds, k.Answered),
		Conversions:    k.Conversions, ConversionRate: ratio(int64(k.Conversions), k.Originated),
		ConversionInterval: Wilson(k.Conversions, k.Originated),
	}
}

// compare compares a variant's conversion rate with the control's; nil
// when either has no attempts.
func compare(control, v controller.VariantStats) *controller.Comparison {
	if control.Attempts == 0 || v.Attempts == 0 {
		return nil
	}
	diff, p := TwoProportionZTest(control.Conversions, control.Attempts, v.Conversions, v.Attempts)
	return &controller.Comparison{Control: control.Name, Difference: diff, PValue: p,
		Significant: p < 0.05 && control.Attempts >= minSignificantAttempts && v.Attempts >= minSignificantAttempts}
}

// ratio is x/n, 0 when n is.
func ratio(x int64, n int) float64 {
	if n <= 0 {
		return 0
	}
	return float64(x) / float64(n)
}

// Wilson returns the 95 % Wilson score interval of x successes in n
// trials, nil when n is 0. With p = x/n and z = z95:
//
//	centre = (p + z²/2n) / (1 + z²/n)
//	half   = z·√(p(1−p)/n + z²/4n²) / (1 + z²/n)
//
// and the interval is centre ± half, within [0, 1]. Unlike p ± z·√(p(1−p)/n)
// it stays inside [0, 1] and does not collapse to a point at 0 or n
// successes.
func Wilson(x, n int) *controller.Interval {
	if n <= 0 {
		return nil
	}
	nf, z2 := float64(n), z95*z95
	p := float64(x) / nf
	den := 1 + z2/nf
	centre := (p + z2/(2*nf)) / den
	half := z95 * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf)) / den
	return &controller.Interval{Low: max(0, centre-half), High: min(1, centre+half)}
}

// TwoProportionZTest compares x2 successes in n2 trials with x1 in n1 (the
// control): it returns the difference p2 − p1 and the two-sided p-value of
// the pooled two-proportion z-test,
//
//	p̂ = (x1+x2)/(n1+n2),  se = √(p̂(1−p̂)(1/n1 + 1/n2)),  z = (p2−p1)/se,
//	p-value = 2(1 − Φ(|z|)) = erfc(|z|/√2).
//
// The p-value is 1 when se is 0 (both groups all successes or all
// failures: no evidence of a difference) or a group is empty.
func TwoProportionZTest(x1, n1, x2, n2 int) (diff, pValue float64) {
	if n1 <= 0 || n2 <= 0 {
		return 0, 1
	}
	p1, p2 := float64(x1)/float64(n1), float64(x2)/float64(n2)
	diff = p2 - p1
	pooled := float64(x1+x2) / float64(n1+n2)
	se := math.Sqrt(pooled * (1 - pooled) * (1/float64(n1) + 1/float64(n2)))
	if se == 0 {
		return diff, 1
	}
	return diff, math.Erfc(math.Abs(diff/se) / math.Sqrt2)
}
