// Command callgate is the control plane for compliant outbound calling.
//
//	callgate serve      run the API, the dialer and the switch drivers
//	callgate migrate    apply database migrations and exit
//	callgate switchsim  run the protocol-faithful FreeSWITCH simulator
//	callgate bench      measure whole-stack originations against switchsim
//	callgate bench compliance   gate decisions and DNC import at national scale
//	callgate bench dialer       pacing modes in a simulated shift (virtual time)
//	callgate bench campaign     campaign dispatch to switchsim, originations/s
//	callgate bench leads        lead CSV import, rows/s
//	callgate version    print the version
package main

import (
	"github.com/callgate/callgate/controller/redact"

	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "callgate:", err)
		os.Exit(1)
	}
}

const usage = `usage: callgate <command> [flags]

commands:
  serve      run the HTTP API, the dialer and the switch drivers
  migrate    apply database migrations and exit
  switchsim  run the FreeSWITCH ESL simulator (--listen, --password)
  bench      measure whole-stack originations against an in-process switchsim
  bench compliance
             gate decision latency with 10M DNC entries and 1M consents, DNC import speed
  bench dialer
             predictive vs progressive pacing: a simulated 8-hour shift in virtual time
  bench campaign [--leads N]
             a campaign's leads dispatched, gated and originated against switchsim
  bench leads [--rows N]
             a lead CSV upload parsed, validated and imported
  token create|revoke|list
             API tokens (shown once, stored hashed) for a role and a tenant
  audit verify
             check the audit log's hash chain: any edited, removed or reordered entry
  purge [--dry-run]
             delete call data and evidence past retention (or report what would go)
  jobs list  the scheduled jobs' recent firings: who ran each (exactly one controller), outcome, duration
  keys init  create the recording master keyring (--file or CALLGATE_RECORDING_KEYS)
  keys rotate
             new master key, re-wrap every recording's data key, retire the old keys
  version    print the version

Run "callgate <command> -h" for a command's flags.`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		cfg, err := LoadConfig(args[1:], getenv)
		if err != nil {
			return err
		}
		m := &Main{Config: cfg, Logger: newLogger(cfg, stderr)}
		if err := m.Run(ctx); err != nil {
			return err
		}
		m.Logger.Info("callgate serving", "listen", m.Addr(), "version", version)
		<-ctx.Done()
		return m.Close()
	case "migrate":
		return runMigrate(ctx, args[1:], getenv, stdout)
	case "switchsim":
		return runSwitchsim(ctx, args[1:], getenv, stdout, stderr)
	case "bench":
		if len(args) > 1 && args[1] == "compliance" {
			return runBenchCompliance(ctx, args[2:], getenv, stdout, stderr)
		}
		if len(args) > 1 && args[1] == "dialer" {
			return runBenchDialer(ctx, args[2:], stdout, stderr)
		}
		if len(args) > 1 && args[1] == "campaign" {
			return runBenchCampaign(ctx, args[2:], getenv, stdout, stderr)
		}
		if len(args) > 1 && args[1] == "leads" {
			return runBenchLeads(ctx, args[2:], getenv, stdout)
		}
		return runBench(ctx, args[1:], getenv, stdout, stderr)
	case "keys":
		return runKeys(ctx, args[1:], getenv, stdout)
	case "purge":
		return runPurge(ctx, args[1:], getenv, stdout)
	case "token":
		return runTokens(ctx, args[1:], getenv, stdout)
	case "audit":
		return runAudit(ctx, args[1:], getenv, stdout)
	case "jobs":
		return runJobs(ctx, args[1:], getenv, stdout)
	case "version", "-v", "--version":
		fmt.Fprintln(stdout, "callgate", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	default:
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	// Every record goes through the number-masking handler: a number that
	// slips into an error or a library's message is still written masked.
	if cfg.LogFormat == "json" {
		return slog.New(redact.New(slog.NewJSONHandler(w, opts)))
	}
	return slog.New(redact.New(slog.NewTextHandler(w, opts)))
}
