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
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *password == "" {
		return errors.New("switchsim: --password (or CALLGATE_ESL_PASSWORD) is required")
	}
	if *scale <= 0 {
		return errors.New("switchsim: --time-scale must be positive")
	}
	sim := switchsim.New(switchsim.Config{
		Password: *password, MaxSessions: *maxSessions, MaxSPS: *sps, TimeScale: *scale, RecordDir: *recordDir,
		Logger: slog.New(slog.NewTextHandler(stderr, nil)),
	})
	if err := sim.Listen(*listen); err != nil {
		return fmt.Errorf("switchsim: %w", err)
	}
	fmt.Fprintf(stdout, "switchsim: FreeSWITCH ESL simulator listening on %s\n", sim.Addr())
	<-ctx.Done()
	return sim.Close()
}
