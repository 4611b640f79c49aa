package compliance

import (
	"errors"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	blocked  *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	disabled bool
}

// newMetrics returns the gate's metrics, registered with reg; a nil reg
// disables them. Collectors already registered by another gate on the same
// registry are shared. Returns any other registration error.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return &metrics{disabled: true}, nil
	}
	blocked := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "callgate_compliance_blocked_total",
		Help: "Blocked gate decisions, once per reason code of each decision.",
	}, []string{"reason"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "callgate_compliance_decision_seconds",
		Help:    "Time to reach a gate decision, by stage and result (allow, block).",
		Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16), // 50 µs .. ~1.6 s
	}, []string{"stage", "result"})
	var err error
	if blocked, err = register(reg, blocked); err != nil {
		return nil, err
	}
	if latency, err = register(reg, latency); err != nil {
		return nil, err
	}
	return &metrics{blocked: blocked, latency: latency}, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	switch {
	case err == nil:
		return c, nil
	case errors.As(err, &are):
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

func (m *metrics) observe(d controller.Decision, took time.Duration) {
	if m.disabled {
		return
	}
	result := "allow"
	if !d.Allow {
		result = "block"
		for _, r := range d.Reasons {
			m.blocked.WithLabelValues(r).Inc()
		}
	}
	stage := d.Stage
	if stage != controller.StageCreate && stage != controller.StageDial {
		stage = "other" // bounded label values whatever callers send
	}
	m.latency.WithLabelValues(stage, result).Observe(took.Seconds())
}
