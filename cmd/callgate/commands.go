package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/callgate/callgate/controller/postgres"
	"github.com/callgate/callgate/controller/switchsim"
)

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	dsn := fs.String("database-url", getenv("CALLGATE_DATABASE_URL"), "PostgreSQL URL (CALLGATE_DATABASE_URL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dsn == "" {
		*dsn = DefaultConfig().DatabaseURL
	}
	if err := postgres.Migrate(ctx, *dsn); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}

func runSwitchsim(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("switchsim", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8021", "ESL listen address")
	password := fs.String("password", getenv("CALLGATE_ESL_PASSWORD"), "ESL password (CALLGATE_ESL_PASSWORD)")
	maxSessions := fs.Int("max-sessions", 1000, "sessions the simulated switch allows at once")
	sps := fs.Int("sps", 0, "sessions per second (0: unlimited); over it originates are delayed as FreeSWITCH does")
	scale := fs.Float64("time-scale", 1.0, "multiplier for every callee delay (0.01 runs 100x faster)")
	recordDir := fs.String("record-dir", getenv("CALLGATE_RECORDING_SPOOL_DIR"),
		"write recordings (real WAV files) whose path is inside this directory (CALLGATE_RECORDING_SPOOL_DIR)")
	def := switchsim.DefaultCalleeModel()
	callees := fs.Bool("callees", false, "numbers without a scenario suffix behave as drawn from a callee population (the --answer-rate… flags)")
	fs.Float64Var(&def.AnswerRate, "answer-rate", def.AnswerRate, "with --callees: share of calls answered")
	fs.Float64Var(&def.BusyRate, "busy-rate", def.BusyRate, "with --callees: share of calls busy")
	fs.DurationVar(&def.RingMean, "ring", def.RingMean, "with --callees: mean time to answer (lognormal)")
	fs.DurationVar(&def.RingMax, "ring-max", def.RingMax, "with --callees: how long unanswered calls ring")
	fs.DurationVar(&def.TalkMean, "talk", def.TalkMean, "with --callees: mean talk time (exponential)")
	seed := fs.Uint64("seed", 1, "with --callees: seed of the draws")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var model *switchsim.CalleeModel
	if *callees {
		if err := def.Validate(); err != nil {
			return fmt.Errorf("switchsim: %w", err)
		}
		model = &def
	}
	if *password == "" {
		return errors.New("switchsim: --password (or CALLGATE_ESL_PASSWORD) is required")
	}
	if *scale <= 0 {
		return errors.New("switchsim: --time-scale must be positive")
	}
	sim := switchsim.New(switchsim.Config{
		Password: *password, MaxSessions: *maxSessions, MaxSPS: *sps, TimeScale: *scale, RecordDir: *recordDir,
		Callees: model, CalleeSeed: *seed, Logger: slog.New(slog.NewTextHandler(stderr, nil)),
	})
	if err := sim.Listen(*listen); err != nil {
		return fmt.Errorf("switchsim: %w", err)
	}
	fmt.Fprintf(stdout, "switchsim: FreeSWITCH ESL simulator listening on %s\n", sim.Addr())
	<-ctx.Done()
	return sim.Close()
}
