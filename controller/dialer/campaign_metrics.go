package dialer

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// How often and how long the campaign collector reads the database.
const (
	campaignStatsMaxAge  = 10 * time.Second // a scrape within this of the last reading reuses it
	campaignStatsTimeout = 5 * time.Second  // one reading, every running campaign together
)

// campaignCollector exports the call metrics of every running campaign as
// gauges, read from the database when Prometheus scrapes — at most once
// every campaignStatsMaxAge, however many scrapers, and within
// campaignStatsTimeout — rather than refreshed by the runner: a reading
// costs nothing when nobody scrapes, never delays the runner's passes
// (ticks of 20 ms; the count over a large campaign takes longer), and a
// campaign's series vanish when it stops running instead of lingering as
// stale gauges to delete. Cardinality is bounded: campaign_id by the
// campaigns running at once, reason by the gate's block reasons. Every
// controller exports the same figures (they come from the shared
// database): aggregate with max by (campaign_id).
type campaignCollector struct {
	cs                                        *Campaigns
	maxAge, timeout                           time.Duration
	originated, setup, asr, acd, abandon, blk *prometheus.Desc
	utilisation                               *prometheus.Desc
	errors                                    prometheus.Counter

	mu   sync.Mutex
	at   time.Time
	last []prometheus.Metric
}

func newCampaignCollector(cs *Campaigns) *campaignCollector {
	id := []string{"campaign_id"}
	return &campaignCollector{cs: cs, maxAge: campaignStatsMaxAge, timeout: campaignStatsTimeout,
		originated: prometheus.NewDesc("callgate_campaign_calls_originated",
			"Calls a running campaign sent to a switch.", id, nil),
		setup: prometheus.NewDesc("callgate_campaign_call_setup_success_ratio",
			"Calls of a running campaign that rang or were answered, over the calls originated.", id, nil),
		asr: prometheus.NewDesc("callgate_campaign_answer_seizure_ratio",
			"Answered calls of a running campaign over the calls originated.", id, nil),
		acd: prometheus.NewDesc("callgate_campaign_average_call_duration_seconds",
			"Mean billed seconds of a running campaign's answered calls.", id, nil),
		abandon: prometheus.NewDesc("callgate_campaign_abandon_ratio",
			"Answered calls of a running campaign with the disposition abandoned, over the answered calls.", id, nil),
		utilisation: prometheus.NewDesc("callgate_campaign_agent_utilisation_ratio",
			"Time the agents taking an agent-mode campaign's calls spent on calls or in wrap-up, over their logged-in time.", id, nil),
		blk: prometheus.NewDesc("callgate_campaign_blocked_attempts",
			"Attempts of a running campaign the compliance gate blocked, by reason (an attempt blocked for two reasons counts under both).",
			[]string{"campaign_id", "reason"}, nil),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "callgate_campaign_stats_errors_total",
			Help: "Readings of the running campaigns' call metrics that failed or timed out."}),
	}
}

// Describe sends every metric's description.
func (cc *campaignCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cc.originated, cc.setup, cc.asr, cc.acd, cc.abandon, cc.blk, cc.utilisation} {
		ch <- d
	}
	cc.errors.Describe(ch)
}

// Collect sends the last reading, after taking a new one if it is older
// than maxAge. A ratio whose denominator is 0 is left out, not sent as 0.
func (cc *campaignCollector) Collect(ch chan<- prometheus.Metric) {
	cc.mu.Lock()
	if cc.last == nil || time.Since(cc.at) >= cc.maxAge {
		cc.last, cc.at = cc.read(), time.Now()
	}
	last := cc.last
	cc.mu.Unlock()
	for _, m := range last {
		ch <- m
	}
	cc.errors.Collect(ch)
}

// read counts every running campaign's calls. A campaign whose count fails
// is left out of this reading (and counted in errors).
func (cc *campaignCollector) read() []prometheus.Metric {
	ctx, cancel := context.WithTimeout(cc.cs.bg, cc.timeout)
	defer cancel()
	out := []prometheus.Metric{}
	running, err := cc.cs.store.RunningCampaigns(ctx)
	if err != nil {
		cc.errors.Inc()
		cc.cs.log.Warn("reading campaign metrics", "err", err)
		return out
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		out = append(out, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...))
	}
	for _, c := range running {
		conv := conversionDispositions(c)
		k, err := cc.cs.store.CampaignCallCounts(ctx, c.ID, conv)
		if err != nil {
			cc.errors.Inc()
			cc.cs.log.Warn("reading campaign metrics", "campaign_id", c.ID, "err", err)
			continue
		}
		st := ComputeStats(c, conv, k)
		m := st.Metrics
		gauge(cc.originated, float64(m.Originated), c.ID)
		if m.Originated > 0 {
			gauge(cc.setup, m.CallSetupSuccessRate, c.ID)
			gauge(cc.asr, m.AnswerSeizureRatio, c.ID)
		}
		if st.Overall.Connected > 0 {
			gauge(cc.acd, m.AverageCallDuration, c.ID)
			gauge(cc.abandon, m.AbandonRate, c.ID)
		}
		for reason, n := range m.BlockedByReason {
			gauge(cc.blk, float64(n), c.ID, reason)
		}
		if u, err := cc.cs.agentUtilisation(ctx, c); err != nil {
			cc.errors.Inc()
		} else if u != nil {
			gauge(cc.utilisation, *u, c.ID)
		}
	}
	return out
}
