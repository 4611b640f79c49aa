package pacing

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testCallee is a list like switchsim.DefaultCalleeModel (which pacing may
// not import): answerRate of callees answer after a lognormal ring of
// mean 8 s, 10 % are busy after 0.5–2 s, the rest ring 30 s unanswered;
// talk is exponential with mean talk, at least 1 s.
func testCallee(answerRate float64, talk time.Duration) Callee {
	const sigma = 0.5
	mu := math.Log(8) - sigma*sigma/2
	return func(r *rand.Rand) (bool, time.Duration, time.Duration) {
		u := r.Float64()
		switch {
		case u < answerRate:
			ring := time.Duration(min(math.Exp(mu+sigma*r.NormFloat64()), 30) * float64(time.Second))
			return true, ring, max(time.Duration(r.ExpFloat64()*float64(talk)), time.Second)
		case u < answerRate+0.1:
			return false, 500*time.Millisecond + time.Duration(r.Float64()*float64(1500*time.Millisecond)), 0
		default:
			return false, 30 * time.Second, 0
		}
	}
}

// shift is the product's reference floor: 50 agents, 20 % answered,
// 120 s talk, 10 s wrap-up, 8 hours.
func shift(mode Mode, seed uint64) SimConfig {
	return SimConfig{Pacing: Config{Mode: mode}, Agents: 50, Duration: 8 * time.Hour,
		Callee: testCallee(0.2, 120*time.Second), WrapUp: 10 * time.Second, Seed: seed}
}

// checkAccounts checks the invariants every result keeps.
func checkAccounts(t *testing.T, r SimResult) {
	t.Helper()
	require.Equal(t, r.Answered, r.Connected+r.Abandoned, "every answered call reached an agent or was abandoned")
	require.LessOrEqual(t, r.Answered, r.Placed)
	require.Greater(t, r.Utilisation, 0.0)
	require.LessOrEqual(t, r.Utilisation, 1.0)
	require.LessOrEqual(t, r.CallsPerAgentHour*float64(r.Agents)*r.Hours, float64(r.Connected)+1e-6)
	require.GreaterOrEqual(t, r.AvgAgentWaitSeconds, 0.0)
}

func TestSimulateProgressiveNeverAbandons(t *testing.T) {
	t.Parallel()
	r, err := Simulate(shift(Progressive, 1))
	require.NoError(t, err)
	checkAccounts(t, r)
	require.Zero(t, r.Abandoned)
	require.Zero(t, r.AbandonRate)
	require.LessOrEqual(t, r.MaxDialLevel, 1.0)
	require.Greater(t, r.Answered, int64(5000))
	t.Logf("progressive: %+v", r)
}

// TestSimulatePredictiveMeetsTarget is the product's target: with 50
// agents, 20 % answered, 120 s talk over 8 hours, predictive pacing keeps
// agents at least 85 % busy with at most 3 % abandoned, on several seeds.
func TestSimulatePredictiveMeetsTarget(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2, 3} {
		r, err := Simulate(shift(Predictive, seed))
		require.NoError(t, err)
		checkAccounts(t, r)
		require.GreaterOrEqual(t, r.Utilisation, 0.85, "seed %d", seed)
		require.LessOrEqual(t, r.AbandonRate, 0.03, "seed %d", seed)
		require.Positive(t, r.Abandoned, "seed %d: dialling ahead abandons some calls", seed)
		require.Greater(t, r.MaxDialLevel, 1.0)
		t.Logf("seed %d: placed %d, answered %d, abandoned %d (%.2f %%), utilisation %.1f %%, %.1f calls/agent-hour, wait %.1f s",
			seed, r.Placed, r.Answered, r.Abandoned, 100*r.AbandonRate, 100*r.Utilisation, r.CallsPerAgentHour, r.AvgAgentWaitSeconds)
	}
}

func TestSimulateDeterministic(t *testing.T) {
	t.Parallel()
	cfg := shift(Predictive, 42)
	cfg.Duration = time.Hour
	a, err := Simulate(cfg)
	require.NoError(t, err)
	b, err := Simulate(cfg)
	require.NoError(t, err)
	require.Equal(t, a, b)
	cfg.Seed = 43
	c, err := Simulate(cfg)
	require.NoError(t, err)
	require.NotEqual(t, a.Placed, c.Placed, "another seed, other callees")
}

func TestSimulateLeads(t *testing.T) {
	t.Parallel()
	cfg := shift(Predictive, 1)
	cfg.Leads = 1000
	r, err := Simulate(cfg)
	require.NoError(t, err)
	checkAccounts(t, r)
	require.Equal(t, int64(1000), r.Placed)
	require.Less(t, r.Utilisation, 0.2, "the list runs out early in the shift")
}

func TestSimulateRejectsBadConfig(t *testing.T) {
	t.Parallel()
	cases := map[string]func(*SimConfig){
		"Config.Mode":                     func(c *SimConfig) { c.Pacing.Mode = "" },
		"SimConfig.Agents":                func(c *SimConfig) { c.Agents = 0 },
		"SimConfig.Duration":              func(c *SimConfig) { c.Duration = -time.Hour },
		"SimConfig.Callee":                func(c *SimConfig) { c.Callee = nil },
		"SimConfig.WrapUp":                func(c *SimConfig) { c.WrapUp = -time.Second },
		"SimConfig.AbandonAfter":          func(c *SimConfig) { c.AbandonAfter = -time.Second },
		"SimConfig.IdentificationMessage": func(c *SimConfig) { c.IdentificationMessage = -time.Second },
		"SimConfig.Tick":                  func(c *SimConfig) { c.Tick = time.Microsecond },
		"SimConfig.Leads":                 func(c *SimConfig) { c.Leads = -1 },
	}
	for field, mutate := range cases {
		cfg := shift(Predictive, 1)
		mutate(&cfg)
		_, err := Simulate(cfg)
		require.Error(t, err, field)
		require.Contains(t, err.Error(), field)
	}
}

// TestSimulateNoAnswers checks a list nobody answers: no division by zero.
func TestSimulateNoAnswers(t *testing.T) {
	t.Parallel()
	cfg := shift(Predictive, 1)
	cfg.Duration = 10 * time.Minute
	cfg.Callee = func(*rand.Rand) (bool, time.Duration, time.Duration) { return false, -time.Second, 0 }
	r, err := Simulate(cfg)
	require.NoError(t, err)
	require.Zero(t, r.Answered)
	require.Zero(t, r.AbandonRate)
	require.Zero(t, r.Utilisation)
	require.Zero(t, r.AvgAgentWaitSeconds)
	require.Equal(t, int64(600*50), r.Placed, "progressive until a call is connected: one per agent per tick")
}

func BenchmarkSimulate8h(b *testing.B) {
	cfg := shift(Predictive, 1)
	for b.Loop() {
		if _, err := Simulate(cfg); err != nil {
			b.Fatal(err)
		}
	}
}
