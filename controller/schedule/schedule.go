// Package schedule runs callgate's off-peak jobs (the retention purge;
// exports and the transcription hand-off once they exist) on cron
// schedules, exactly once per firing however many controllers run.
//
// Every controller registers the same jobs and robfig/cron wakes each at
// every firing. A controller first claims the firing — the job's name and
// its scheduled time, to the minute — in the store; only the one whose claim
// wins runs the job, and it records the outcome and duration there. The
// scheduled time comes from the job's schedule, not from the waking clock,
// so controllers that wake a little apart claim the same firing.
//
// A controller that dies mid-run leaves its firing running with a heartbeat
// that stops; the firing is then reported interrupted and never rerun, by
// this package or anyone: a purge or an export must not run twice silently.
// The next firing runs as usual. A firing that comes while an earlier run of
// the job is still going (here or on another controller) is recorded as
// skipped.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/redact"
)

// Job is a named piece of work on a cron schedule.
type Job struct {
	// Name identifies the job in the store and the logs; unique in a
	// Scheduler, and the same on every controller.
	Name string
	// Spec says when it runs: five cron fields (minute hour day month
	// weekday) or a descriptor such as @daily, optionally after
	// CRON_TZ=Area/City. @every is refused: its firings count from each
	// controller's start, so controllers would not agree on them.
	Spec string
	// Location is the zone Spec is read in. Nil means the spec's CRON_TZ,
	// or else the controller's local zone — then every controller must run
	// in the same zone, or each would claim a different firing.
	Location *time.Location
	// Run does the work; its error is recorded as the firing's outcome.
	Run func(ctx context.Context) error
}

// Config is what a Scheduler needs.
type Config struct {
	// Store records the firings (required).
	Store controller.JobRunStore
	// Owner is this controller's instance ID, recorded on the firings it
	// runs (required).
	Owner string
	// Logger receives one line per firing this controller runs or skips.
	Logger *slog.Logger
	// Now is the clock firings are computed and runs timed by; nil means
	// time.Now. Start's cron wakes on the real clock and then reads Now;
	// tests instead call RunDue with their own times.
	Now func() time.Time
	// Heartbeat is how often a running firing's heartbeat is renewed;
	// zero means controller.JobHeartbeatInterval.
	Heartbeat time.Duration
}

// Scheduler runs its jobs' firings that this controller claims.
type Scheduler struct {
	cfg  Config
	log  *slog.Logger
	cron *cron.Cron

	mu      sync.Mutex
	entries []*entry
	started bool
}

// entry is a registered job with its parsed schedule.
type entry struct {
	Job
	sched cron.Schedule
	loc   *time.Location
	next  time.Time // the earliest firing not yet handled here; guarded by Scheduler.mu
}

// New returns a Scheduler with no jobs. Returns EINVALID without a store or
// an owner.
func New(cfg Config) (*Scheduler, error) {
	if cfg.Store == nil || cfg.Owner == "" {
		return nil, controller.Errorf(controller.EINVALID, "a scheduler needs a store and an owner")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = controller.JobHeartbeatInterval
	}
	return &Scheduler{cfg: cfg, log: cfg.Logger.With("owner", cfg.Owner)}, nil
}

// CheckSpec reports whether spec is a schedule a Job may have. Returns
// EINVALID naming what is wrong.
func CheckSpec(spec string) error {
	_, _, err := parse(spec, nil)
	return err
}

// parse reads spec in loc (nil: its CRON_TZ or the local zone) and returns
// the schedule with the zone it fires in.
func parse(spec string, loc *time.Location) (cron.Schedule, *time.Location, error) {
	spec = strings.TrimSpace(spec)
	zoned := strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=")
	if loc != nil && zoned {
		return nil, nil, controller.Errorf(controller.EINVALID, "%q names its zone and a location is given too: give it once", spec)
	}
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, nil, controller.Errorf(controller.EINVALID, "%q: %v", spec, err)
	}
	ss, ok := sched.(*cron.SpecSchedule)
	if !ok { // @every: a delay from each controller's start
		return nil, nil, controller.Errorf(controller.EINVALID,
			"%q: @every is not allowed: controllers would not agree on its firings; use cron fields", spec)
	}
	if loc != nil {
		ss.Location = loc
	}
	return ss, ss.Location, nil
}

// Add registers a job, due from its first firing after now. Returns
// EINVALID for a job without a name or a func, a name already registered or
// a bad spec, ECONFLICT once the scheduler has started.
func (s *Scheduler) Add(j Job) error {
	if j.Name == "" || j.Run == nil {
		return controller.Errorf(controller.EINVALID, "a job needs a name and a func")
	}
	sched, loc, err := parse(j.Spec, j.Location)
	if err != nil {
		return fmt.Errorf("job %s: %w", j.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return controller.Errorf(controller.ECONFLICT, "job %s: the scheduler has started", j.Name)
	}
	if slices.ContainsFunc(s.entries, func(e *entry) bool { return e.Name == j.Name }) {
		return controller.Errorf(controller.EINVALID, "job %s: registered twice", j.Name)
	}
	e := &entry{Job: j, sched: sched, loc: loc}
	e.next = sched.Next(s.cfg.Now().In(loc))
	s.entries = append(s.entries, e)
	return nil
}

// Jobs returns the registered jobs' names, in registration order.
func (s *Scheduler) Jobs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, len(s.entries))
	for i, e := range s.entries {
		names[i] = e.Name
	}
	return names
}

// Start wakes each job at its firings until Stop; the jobs run with ctx.
// Jobs cannot be added afterwards.
func (s *Scheduler) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return
	}
	s.started = true
	s.cron = cron.New()
	for _, e := range s.entries {
		s.cron.Schedule(e.sched, cron.FuncJob(func() { s.fire(ctx, e, s.cfg.Now()) }))
	}
	s.cron.Start()
}

// Stop stops waking jobs and waits for the runs Start began to end (it
// does not cancel them).
func (s *Scheduler) Stop() {
	s.mu.Lock()
	c := s.cron
	s.cron = nil
	s.mu.Unlock()
	if c != nil {
		<-c.Stop().Done()
	}
}

// RunDue handles, as Start's cron does, each job's latest firing at or
// before now that this scheduler has not handled yet: claims it and, if the
// claim wins, runs it. The jobs run concurrently; it returns when all have
// ended, with the runs this controller made (by job name). Firings claimed
// elsewhere, skipped or not claimed for an error are logged, not returned.
func (s *Scheduler) RunDue(ctx context.Context, now time.Time) []controller.JobRun {
	s.mu.Lock()
	entries := slices.Clone(s.entries)
	s.mu.Unlock()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		runs []controller.JobRun
	)
	for _, e := range entries {
		wg.Go(func() {
			if r, ok := s.fire(ctx, e, now); ok {
				mu.Lock()
				runs = append(runs, r)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.SortFunc(runs, func(a, b controller.JobRun) int { return strings.Compare(a.Job, b.Job) })
	return runs
}

// due takes e's latest firing at or before now, if one is not yet handled
// here, and moves e past it (earlier missed firings are not run, as cron
// does not run them).
func (s *Scheduler) due(e *entry, now time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.next.IsZero() || e.next.After(now) {
		return time.Time{}, false
	}
	fire := e.next
	for {
		n := e.sched.Next(fire.In(e.loc))
		if n.IsZero() || n.After(now) {
			e.next = n
			return fire.Truncate(time.Minute), true
		}
		fire = n
	}
}

// fire handles e's firing due at now, if any, and reports the run if this
// controller made one.
func (s *Scheduler) fire(ctx context.Context, e *entry, now time.Time) (controller.JobRun, bool) {
	fireAt, ok := s.due(e, now)
	if !ok {
		return controller.JobRun{}, false
	}
	log := s.log.With("job", e.Name, "fire_at", fireAt.UTC())
	run, won, err := s.cfg.Store.ClaimJobRun(ctx, e.Name, fireAt, s.cfg.Owner)
	switch {
	case err != nil:
		// Unclaimed means not run: another controller may still claim it.
		log.Error("claiming a scheduled job failed; this controller does not run it", "err", err)
		return controller.JobRun{}, false
	case run.Status == controller.JobSkipped:
		log.Warn("scheduled job skipped", "reason", run.Error)
		return controller.JobRun{}, false
	case !won:
		log.Debug("scheduled job run by another controller")
		return controller.JobRun{}, false
	}
	log.Info("scheduled job started")
	start := s.cfg.Now()
	stop := s.heartbeat(ctx, run, log)
	err = s.run(ctx, e, log)
	stop()
	end := s.cfg.Now()
	run.Duration, run.FinishedAt = end.Sub(start), &end
	run.Status, run.Error = controller.JobOK, ""
	if err != nil {
		run.Status, run.Error = controller.JobError, errorText(err)
	}
	// The outcome is recorded even when ctx has just been canceled.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if ferr := s.cfg.Store.FinishJobRun(fctx, run); ferr != nil {
		log.Error("recording a scheduled job's outcome failed", "err", ferr, "outcome", run.Status)
	}
	if err != nil {
		log.Error("scheduled job failed", "err", err, "duration", run.Duration)
	} else {
		log.Info("scheduled job done", "duration", run.Duration)
	}
	return run, true
}

// run calls the job, turning a panic into its error.
func (s *Scheduler) run(ctx context.Context, e *entry, log *slog.Logger) (err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("scheduled job panicked", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return e.Run(ctx)
}

// heartbeat renews run's heartbeat until the returned stop is called.
func (s *Scheduler) heartbeat(ctx context.Context, run controller.JobRun, log *slog.Logger) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(s.cfg.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				err := s.cfg.Store.RenewJobRun(ctx, run.Job, run.FireAt, run.Owner)
				if err != nil && !errors.Is(err, context.Canceled) {
					log.Warn("renewing a scheduled job's heartbeat failed", "err", err)
				}
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// maxErrorText caps the error text stored on a firing.
const maxErrorText = 2000

// errorText is err's text as stored: phone numbers masked, capped.
func errorText(err error) string {
	s := redact.String(err.Error())
	if len(s) > maxErrorText {
		s = strings.ToValidUTF8(s[:maxErrorText], "") + "…"
	}
	return s
}
