package dialer

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	queued        prometheus.Counter
	originations  *prometheus.CounterVec
	transitions   *prometheus.CounterVec
	refusals      *prometheus.CounterVec
	reconciled    *prometheus.CounterVec
	inflight      *prometheus.GaugeVec
	droppedEvents prometheus.Counter
	illegal       prometheus.Counter
	blockedAtDial prometheus.Counter
	trunkHeld     *prometheus.CounterVec
	routed        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		queued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callgate_calls_queued_total", Help: "Calls accepted and queued as durable attempts."}),
		originations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callgate_originations_total", Help: "Originate commands by switch and result (sent, not_sent, ambiguous)."},
			[]string{"switch", "result"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callgate_call_transitions_total", Help: "Call state transitions by the state entered."},
			[]string{"state"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callgate_switch_refusals_total", Help: "Originates a switch refused before creating a channel, requeued."},
			[]string{"switch", "cause"}),
		reconciled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callgate_calls_reconciled_total", Help: "Calls whose end was learned from the switch's channel list."},
			[]string{"switch"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "callgate_calls_in_flight", Help: "Calls sent to a switch and not yet ended."},
			[]string{"switch"}),
		droppedEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callgate_channel_events_ignored_total", Help: "Channel events for calls this controller does not track."}),
		illegal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callgate_illegal_transitions_total", Help: "Events rejected because they asked for an illegal state transition."}),
		blockedAtDial: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callgate_blocked_at_dial_total", Help: "Queued attempts the compliance gate blocked just before dialling."}),
		trunkHeld: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callgate_trunk_held_total", Help: "Claimed calls given back to the queue because their trunk was at its limit."},
			[]string{"switch", "trunk"}),
		routed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callgate_calls_routed_total", Help: "Calls a routing rule sent to a switch or trunk, by where (\"any\": any switch; \"default\": its default trunk)."},
			[]string{"switch", "trunk"}),
	}
	if reg != nil {
		reg.MustRegister(m.queued, m.originations, m.transitions, m.refusals, m.reconciled, m.inflight, m.droppedEvents, m.illegal, m.blockedAtDial,
			m.trunkHeld, m.routed)
	}
	return m
}
