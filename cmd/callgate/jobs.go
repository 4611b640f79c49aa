package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
	"github.com/callgate/callgate/controller/postgres"
	"github.com/callgate/callgate/controller/schedule"
)

// purgeJob names the retention purge in job_runs and the logs.
const purgeJob = "retention-purge"

// offPeakJobs is the one place callgate's scheduled jobs are declared. Every
// controller runs this same schedule; controller/schedule has each firing
// claimed in the database, so exactly one controller runs it (`callgate jobs
// list` shows who, and how it went).
func (m *Main) offPeakJobs(store *postgres.Store, policy compliance.Policy) []schedule.Job {
	return []schedule.Job{
		// Recordings past retention are shredded first, then the call data
		// and evidence past theirs are deleted.
		{Name: purgeJob, Spec: m.Config.Media.PurgeSchedule, Run: m.retentionPurge(store, policy)},

		// Slot: exports and the transcription hand-off. callgate has no
		// scheduled export (the traceability export is on demand, GET
		// /v1/exports/trace) and no transcription hand-off yet. When one is
		// built, declare it here — a name, a spec from its own
		// CALLGATE_*_SCHEDULE in Config, its func — and nowhere else.
	}
}

// retentionPurge is the purge job: both steps run whatever the other's
// outcome, and the job fails if either did.
func (m *Main) retentionPurge(store *postgres.Store, policy compliance.Policy) func(context.Context) error {
	return func(ctx context.Context) error {
		var errs []error
		if m.purgeRecordings != nil {
			n, err := m.purgeRecordings(ctx)
			if err != nil {
				errs = append(errs, fmt.Errorf("recording retention purge: %w", err))
			} else {
				m.Logger.Info("recording retention purge", "shredded", n)
			}
		}
		rep, err := purgeData(ctx, store, m.Config, policy, time.Now(), false)
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("retention purge: %w", err))...)
		}
		m.Logger.Info("retention purge", "calls", rep.Calls, "consents", rep.Consents, "refusals", rep.Refusals)
		return errors.Join(errs...)
	}
}

// newJobs builds the scheduler of the off-peak jobs, on now's clock (nil:
// the real one). Returns an error naming the configuration at fault.
func (m *Main) newJobs(store *postgres.Store, policy compliance.Policy, now func() time.Time) (*schedule.Scheduler, error) {
	s, err := schedule.New(schedule.Config{Store: store, Owner: m.Config.InstanceID, Logger: m.Logger, Now: now})
	if err != nil {
		return nil, fmt.Errorf("scheduling jobs: %w", err)
	}
	for _, j := range m.offPeakJobs(store, policy) {
		if err := s.Add(j); err != nil {
			if j.Name == purgeJob {
				return nil, fmt.Errorf("config: media.purge_schedule: %w", err)
			}
			return nil, fmt.Errorf("scheduling jobs: %w", err)
		}
	}
	return s, nil
}

// startJobs schedules the off-peak jobs; they run with ctx.
func (m *Main) startJobs(ctx context.Context, store *postgres.Store, policy compliance.Policy) error {
	s, err := m.newJobs(store, policy, nil)
	if err != nil {
		return err
	}
	s.Start(ctx)
	m.jobs = s
	return nil
}

const jobsUsage = `usage: callgate jobs list [--job NAME] [--limit N] [--database-url URL]

list prints the newest firings of the scheduled jobs (the retention purge):
when each fired, which controller ran it (exactly one does), its outcome —
ok, error, skipped (an earlier run was still going), running, or
interrupted (its controller stopped mid-run; it is not rerun: check what it
left, run it by hand if needed, e.g. callgate purge) — and how long it took.`

// runJobs is `callgate jobs list`.
func runJobs(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "list" {
		fmt.Fprintln(stdout, jobsUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil
		}
		return errors.New("jobs: expected the subcommand list")
	}
	fs := flag.NewFlagSet("jobs list", flag.ContinueOnError)
	fs.SetOutput(stdout)
	dsn := fs.String("database-url", getenv("CALLGATE_DATABASE_URL"), "PostgreSQL URL (CALLGATE_DATABASE_URL)")
	job := fs.String("job", "", "only this job's firings (e.g. "+purgeJob+")")
	limit := fs.Int("limit", 20, "how many firings, newest first (1 to 1000)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("jobs list: unexpected argument %q", fs.Arg(0))
	}
	if *limit < 1 || *limit > 1000 {
		return fmt.Errorf("jobs list: --limit: %d is not between 1 and 1000", *limit)
	}
	if *dsn == "" {
		*dsn = DefaultConfig().DatabaseURL
	}
	db, err := postgres.Open(ctx, *dsn)
	if err != nil {
		return fmt.Errorf("jobs list: %w", err)
	}
	defer db.Close()
	runs, err := postgres.NewStore(db).ListJobRuns(ctx, *job, *limit)
	if err != nil {
		return fmt.Errorf("jobs list: %w", err)
	}
	printJobRuns(stdout, runs)
	return nil
}

// printJobRuns writes one line per firing.
func printJobRuns(w io.Writer, runs []controller.JobRun) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tFIRED AT\tRUN BY\tOUTCOME\tDURATION\tERROR")
	for _, r := range runs {
		dur := "-"
		if r.FinishedAt != nil && r.Status != controller.JobSkipped {
			dur = r.Duration.Round(time.Millisecond).String()
		}
		msg := strings.Join(strings.Fields(r.Error), " ") // one line
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Job, r.FireAt.UTC().Format(time.RFC3339), r.Owner,
			r.Status, dur, dash(msg))
	}
	_ = tw.Flush()
}
