package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/callgate/callgate/controller/pacing"
	"github.com/callgate/callgate/controller/switchsim"
)

// dialerBenchOptions are the flags of `callgate bench dialer`.
type dialerBenchOptions struct {
	Agents        int
	AnswerRate    float64
	Talk          time.Duration
	Wrap          time.Duration
	Hours         float64
	Mode          string // "predictive", "progressive" or "both"
	TargetAbandon float64
	Seed          uint64
	JSON          bool
}

// command is the command line that reproduces a run.
func (o dialerBenchOptions) command() string {
	s := fmt.Sprintf("callgate bench dialer --agents %d --answer-rate %g --talk %s --wrap %s --hours %g --mode %s --target-abandon %g --seed %d",
		o.Agents, o.AnswerRate, flagDuration(o.Talk), flagDuration(o.Wrap), o.Hours, o.Mode, o.TargetAbandon, o.Seed)
	if o.JSON {
		s += " --json"
	}
	return s
}

// flagDuration writes whole seconds as "120s", anything else as
// time.Duration does.
func flagDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}

// dialerBenchRow is one mode's simulated shift and the wall time it took.
type dialerBenchRow struct {
	pacing.SimResult
	WallSeconds float64 `json:"wall_seconds"`
}

// dialerBenchReport is the --json output.
type dialerBenchReport struct {
	Command string            `json:"command"`
	Callees dialerBenchCallee `json:"callees"`
	Results []dialerBenchRow  `json:"results"`
}

// dialerBenchCallee describes the simulated callees and agents.
type dialerBenchCallee struct {
	AnswerRate      float64 `json:"answer_rate"`
	BusyRate        float64 `json:"busy_rate"`
	RingMeanSeconds float64 `json:"ring_mean_seconds"`
	RingMaxSeconds  float64 `json:"ring_max_seconds"`
	TalkMeanSeconds float64 `json:"talk_mean_seconds"`
	WrapMeanSeconds float64 `json:"wrap_mean_seconds"`
}

// runBenchDialer implements `callgate bench dialer`: a shift of agents
// and statistical callees (switchsim.CalleeModel) simulated in virtual
// time for each pacing mode, with the calls placed, answered and
// abandoned, agent utilisation and calls per agent-hour.
func runBenchDialer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench dialer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o dialerBenchOptions
	fs.IntVar(&o.Agents, "agents", 50, "agents logged in for the whole shift")
	fs.Float64Var(&o.AnswerRate, "answer-rate", 0.2, "share of calls a live person answers")
	fs.DurationVar(&o.Talk, "talk", 120*time.Second, "mean talk time (exponential)")
	fs.DurationVar(&o.Wrap, "wrap", 10*time.Second, "mean wrap-up after each call (exponential)")
	fs.Float64Var(&o.Hours, "hours", 8, "shift length, in virtual hours")
	fs.StringVar(&o.Mode, "mode", "both", "pacing mode: predictive, progressive or both")
	fs.Float64Var(&o.TargetAbandon, "target-abandon", pacing.DefaultTargetAbandon, "highest abandon rate predictive pacing may reach")
	fs.Uint64Var(&o.Seed, "seed", 1, "random seed: same seed, same figures")
	fs.BoolVar(&o.JSON, "json", false, "print JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench dialer: unexpected argument %q", fs.Arg(0))
	}
	var modes []pacing.Mode
	switch o.Mode {
	case "both":
		modes = []pacing.Mode{pacing.Progressive, pacing.Predictive}
	case string(pacing.Progressive), string(pacing.Predictive):
		modes = []pacing.Mode{pacing.Mode(o.Mode)}
	default:
		return fmt.Errorf("bench dialer: --mode %q: want predictive, progressive or both", o.Mode)
	}
	if !(o.Hours > 0 && o.Hours <= 744) {
		return errors.New("bench dialer: --hours must be in (0, 744]")
	}
	model := switchsim.DefaultCalleeModel()
	model.AnswerRate, model.TalkMean = o.AnswerRate, o.Talk
	if model.AnswerRate+model.BusyRate > 1 {
		model.BusyRate = max(0, 1-model.AnswerRate)
	}
	if err := model.Validate(); err != nil {
		return fmt.Errorf("bench dialer: %w", err)
	}
	callee := func(r *rand.Rand) (bool, time.Duration, time.Duration) {
		c := model.Draw(r)
		return c.Answer, c.Ring, c.Talk
	}

	report := dialerBenchReport{Command: o.command(), Callees: dialerBenchCallee{
		AnswerRate: model.AnswerRate, BusyRate: model.BusyRate, RingMeanSeconds: model.RingMean.Seconds(),
		RingMaxSeconds: model.RingMax.Seconds(), TalkMeanSeconds: model.TalkMean.Seconds(), WrapMeanSeconds: o.Wrap.Seconds()}}
	for _, mode := range modes {
		if err := ctx.Err(); err != nil {
			return err
		}
		cfg := pacing.SimConfig{
			Pacing:   pacing.Config{Mode: mode, TargetAbandon: o.TargetAbandon},
			Agents:   o.Agents,
			Duration: time.Duration(o.Hours * float64(time.Hour)),
			Callee:   callee,
			WrapUp:   o.Wrap,
			Seed:     o.Seed,
		}
		start := time.Now()
		r, err := pacing.Simulate(cfg)
		if err != nil {
			return fmt.Errorf("bench dialer: %w", err)
		}
		report.Results = append(report.Results, dialerBenchRow{SimResult: r, WallSeconds: time.Since(start).Seconds()})
	}
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	printDialerBench(stdout, report)
	return nil
}

func printDialerBench(w io.Writer, rep dialerBenchReport) {
	c := rep.Callees
	fmt.Fprintln(w, "command: ", rep.Command)
	fmt.Fprintf(w, "callees:  %.0f %% answer after %.0f s on average (lognormal), %.0f %% busy, the rest unanswered after %.0f s; talk %.0f s, wrap-up %.0f s (exponential)\n",
		100*c.AnswerRate, c.RingMeanSeconds, 100*c.BusyRate, c.RingMaxSeconds, c.TalkMeanSeconds, c.WrapMeanSeconds)
	fmt.Fprintln(w, "abandoned: answered, no agent within 2 s; utilisation: talk + wrap-up ÷ logged-in time; virtual time, wall time measured")
	fmt.Fprintf(w, "%-11s %6s %8s %8s %9s %9s %12s %13s %8s %9s %8s\n",
		"mode", "agents", "placed", "answered", "abandoned", "abandon%", "utilisation%", "calls/agent-h", "wait s", "max level", "wall")
	for _, r := range rep.Results {
		fmt.Fprintf(w, "%-11s %6d %8d %8d %9d %9.2f %12.2f %13.2f %8.1f %9.2f %8s\n",
			r.Mode, r.Agents, r.Placed, r.Answered, r.Abandoned, 100*r.AbandonRate, 100*r.Utilisation,
			r.CallsPerAgentHour, r.AvgAgentWaitSeconds, r.MaxDialLevel,
			time.Duration(r.WallSeconds*float64(time.Second)).Round(time.Millisecond))
	}
}
