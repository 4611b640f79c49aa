package controller

import (
	"crypto/md5"
	"encoding/binary"
	"strconv"
)

// Variant is one arm of a campaign's A/B test: the flow its leads' calls
// run and its share of the leads. A campaign has none, or 2 to 10.
type Variant struct {
	Name   string `json:"name"`    // like a flow ID: a-z, 0-9, '_', '-'
	FlowID string `json:"flow_id"` // the flow its calls run
	Weight int    `json:"weight"`  // its share of the leads, against the others' (default 1)
}

// VariantOf returns the variant a campaign's lead belongs to, "" when the
// campaign has no variants. It is a pure function of the campaign ID (in
// its canonical lower-case form), the lead ID and the variants' order and
// weights: the first 32 bits of MD5("<campaign>:<lead>"), modulo the total
// weight, fall in one variant's share, taken in order. controller/postgres
// computes the same in SQL when it adds leads to a campaign; MD5 only
// because PostgreSQL has it built in (nothing here is secret).
func VariantOf(campaignID string, leadID int64, variants []Variant) string {
	total := 0
	for _, v := range variants {
		total += v.Weight
	}
	if total <= 0 {
		return ""
	}
	sum := md5.Sum([]byte(campaignID + ":" + strconv.FormatInt(leadID, 10)))
	bucket := int(binary.BigEndian.Uint32(sum[:4]) % uint32(total))
	for _, v := range variants {
		if bucket < v.Weight {
			return v.Name
		}
		bucket -= v.Weight
	}
	return ""
}

// DefaultConversionDispositions are the dispositions that count as a
// conversion when a campaign names none.
var DefaultConversionDispositions = []string{"sale", "consented", "converted"}

// VariantCallCounts count a campaign's calls that ran one variant ("" for
// calls without one), and the variant's leads.
type VariantCallCounts struct {
	Variant     string
	Leads       int   // the campaign's leads in the variant
	Originated  int   // calls sent to a switch
	Reached     int   // of those, calls that rang or were answered
	Answered    int   // of those, calls answered
	TalkSeconds int64 // billsec of the answered calls, summed
	Conversions int   // originated calls whose disposition is a conversion
	Abandoned   int   // answered calls with the disposition "abandoned"
}

// CampaignCallCounts are a campaign's calls counted, by variant, and its
// attempts the compliance gate blocked.
type CampaignCallCounts struct {
	Variants []VariantCallCounts // ordered by variant name
	Blocked  int                 // attempts blocked
	// BlockedReasons counts blocked attempts by the gate's reason; an
	// attempt blocked for two reasons counts under both.
	BlockedReasons map[string]int
}

// Interval is a 95 % confidence interval of a proportion.
type Interval struct {
	Low  float64 `json:"low"`
	High float64 `json:"high"`
}

// VariantStats are the results of one variant, or of the whole campaign.
// Rates are 0, and their intervals absent, when nothing was attempted.
type VariantStats struct {
	Name      string `json:"name,omitempty"` // absent for the whole campaign
	FlowID    string `json:"flow_id,omitempty"`
	Weight    int    `json:"weight,omitempty"`
	Leads     int    `json:"leads"`
	Attempts  int    `json:"attempts"`  // calls placed (sent to a switch; blocked ones are not)
	Connected int    `json:"connected"` // of those, answered
	// ConnectRate is Connected / Attempts.
	ConnectRate     float64   `json:"connect_rate"`
	ConnectInterval *Interval `json:"connect_interval,omitempty"`
	// AvgTalkSeconds is the mean billsec of the connected calls.
	AvgTalkSeconds float64 `json:"avg_talk_seconds"`
	// Conversions are the attempts whose disposition is one of the
	// campaign's conversion dispositions; ConversionRate is Conversions /
	// Attempts.
	Conversions        int       `json:"conversions"`
	ConversionRate     float64   `json:"conversion_rate"`
	ConversionInterval *Interval `json:"conversion_interval,omitempty"`
	// VsControl compares the variant's conversion rate with the first
	// variant's; absent for the first variant and the whole campaign.
	VsControl *Comparison `json:"vs_control,omitempty"`
}

// Comparison is a variant's conversion rate against the control's (the
// campaign's first variant).
type Comparison struct {
	Control    string  `json:"control"`    // the control variant's name
	Difference float64 `json:"difference"` // the variant's conversion rate minus the control's
	// PValue is the two-sided p-value of a two-proportion z-test (pooled)
	// of the two conversion rates.
	PValue float64 `json:"p_value"`
	// Significant is PValue < 0.05 with at least 30 attempts in each
	// group; below that the normal approximation is not trusted.
	Significant bool `json:"significant"`
}

// CampaignMetrics are a campaign's call metrics, over every call it placed.
// Ratios are 0 when their denominator is.
type CampaignMetrics struct {
	Originated int `json:"originated"` // calls sent to a switch
	// CallSetupSuccessRate is the calls that rang or were answered /
	// Originated.
	CallSetupSuccessRate float64 `json:"call_setup_success_rate"`
	// AnswerSeizureRatio is the answered calls / Originated.
	AnswerSeizureRatio float64 `json:"answer_seizure_ratio"`
	// AverageCallDuration is the mean billsec of the answered calls, in
	// seconds (ACD).
	AverageCallDuration float64 `json:"average_call_duration_seconds"`
	// AbandonRate is the answered calls with the disposition "abandoned" /
	// the answered calls.
	AbandonRate     float64        `json:"abandon_rate"`
	BlockedAttempts int            `json:"blocked_attempts"`  // attempts the gate blocked
	BlockedByReason map[string]int `json:"blocked_by_reason"` // an attempt blocked for two reasons counts under both
	// AgentUtilisation is, for campaigns that dial for agents, the time
	// the agents taking its calls spent on calls or in wrap-up over their
	// logged-in time (all their campaigns' calls count: an agent's time is
	// not split); absent for broadcast campaigns and before any agent
	// logged in.
	AgentUtilisation *float64 `json:"agent_utilisation,omitempty"`
}

// CampaignStats are a campaign's results: overall, per A/B test variant
// (in the campaign's order; none without variants) and its call metrics.
type CampaignStats struct {
	CampaignID             string          `json:"campaign_id"`
	ConversionDispositions []string        `json:"conversion_dispositions"` // those counted
	Overall                VariantStats    `json:"overall"`
	Variants               []VariantStats  `json:"variants"`
	Metrics                CampaignMetrics `json:"metrics"`
}
