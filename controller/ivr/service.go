package ivr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
	"github.com/callgate/callgate/controller/egress"
	"github.com/callgate/callgate/controller/recording"
)

// Store is what the Service keeps in the database.
type Store interface {
	controller.FlowStore
	controller.PromptStore
	Ledger
	// GetCall returns ENOTFOUND if the call does not exist for the tenant.
	GetCall(ctx context.Context, tenant string, id controller.CallID) (controller.Call, error)
	// TagCall stores the tags and disposition a flow's set nodes gave.
	TagCall(ctx context.Context, tenant string, id controller.CallID, tags map[string]string, disposition string) (controller.Call, error)
}

// ServiceConfig wires a Service.
type ServiceConfig struct {
	Store Store
	// Switches finds a configured switch by name (the dialer's).
	Switches func(name string) (controller.Switch, bool)
	// Policy returns the compliance policy in force for a tenant: its
	// forbidden phrases lint prompts, its refusal lock is what "no" writes.
	Policy func(ctx context.Context, tenant string) (compliance.Policy, error)
	// PromptDir holds uploaded prompts (created if missing); SwitchPromptDir
	// is the same directory as the switch sees it ("" means PromptDir).
	// Without PromptDir prompts cannot be uploaded.
	PromptDir, SwitchPromptDir string
	// Recordings seals and serves recordings; RecordingStore is its
	// metadata. Both nil: recordings are off and record nodes fail.
	Recordings     *recording.Service
	RecordingStore controller.RecordingStore
	// SpoolDir is the recordings' spool directory as callgate sees it and
	// SwitchSpoolDir as the switch does ("" means SpoolDir).
	SpoolDir, SwitchSpoolDir string
	// Egress is the outbound URL allowlist: webhook and prompt URLs it
	// refuses are errors when a flow is saved, and refused again when it
	// runs (see Runner.Egress). Nil: a guard with an empty allowlist, so
	// every outbound URL is refused. Build it with egress.New from
	// CALLGATE_EGRESS_ALLOW, CALLGATE_EGRESS_ALLOW_PRIVATE and
	// CALLGATE_EGRESS_ALLOW_HTTP.
	Egress *egress.Guard
	// WebhookSecret returns the secret a tenant's webhook requests are
	// signed with (Runner.WebhookSecret); StaticSecret gives every tenant
	// one (CALLGATE_WEBHOOK_SECRET). Nil: webhooks are not sent.
	WebhookSecret func(tenant string) []byte
	Now           func() time.Time
	Logger        *slog.Logger
	// OnRunEnded and OnSealed, when set, see each finished run (stored) and
	// each recording seal's outcome (tests wait on them).
	OnRunEnded func(controller.FlowRun)
	OnSealed   func(call controller.CallID, err error)
	// Agents connects calls to agents (a flow's agent nodes); nil: agent
	// nodes fail.
	Agents controller.AgentDesk
}

// Service runs each answered call's flow and administers flows, prompts and
// recordings. It implements dialer.MediaHandler, controller.FlowAdmin and
// controller.RecordingAdmin.
type Service struct {
	cfg ServiceConfig
	log *slog.Logger

	ctx    context.Context // runs live until Stop
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	running map[controller.CallID]bool
}

var (
	_ controller.FlowAdmin      = (*Service)(nil)
	_ controller.RecordingAdmin = (*Service)(nil)
)

// NewService returns a Service. Returns EINVALID naming a missing
// dependency.
func NewService(cfg ServiceConfig) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, controller.FieldError("Store", "is required")
	case cfg.Switches == nil:
		return nil, controller.FieldError("Switches", "is required")
	case cfg.Policy == nil:
		return nil, controller.FieldError("Policy", "is required")
	case (cfg.Recordings == nil) != (cfg.RecordingStore == nil):
		return nil, controller.FieldError("Recordings", "needs RecordingStore and the other way round")
	case cfg.Recordings != nil && cfg.SpoolDir == "":
		return nil, controller.FieldError("SpoolDir", "is required with Recordings")
	}
	if cfg.SwitchPromptDir == "" {
		cfg.SwitchPromptDir = cfg.PromptDir
	}
	if cfg.SwitchSpoolDir == "" {
		cfg.SwitchSpoolDir = cfg.SpoolDir
	}
	if cfg.Egress == nil {
		g, err := egress.New(egress.Config{})
		if err != nil {
			return nil, fmt.Errorf("building the default egress guard: %w", err)
		}
		cfg.Egress = g
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, log: cfg.Logger, running: map[controller.CallID]bool{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Stop cancels every running flow (each ends with OutcomeError and its call
// hung up) and waits for the runs and recording seals to finish.
func (s *Service) Stop() {
	s.cancel()
	s.wg.Wait()
}

// go runs f in the background, tracked by Stop.
func (s *Service) spawn(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// Answered starts the flow of an answered call (dialer.MediaHandler). It
// never blocks.
func (s *Service) Answered(call controller.Call, sw controller.Switch) {
	s.mu.Lock()
	if s.running[call.ID] || s.ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	s.running[call.ID] = true
	s.mu.Unlock()
	s.spawn(func() {
		defer func() {
			s.mu.Lock()
			delete(s.running, call.ID)
			s.mu.Unlock()
		}()
		s.runFlow(s.ctx, call, sw)
	})
}

// runFlow loads the call's flow, runs it and stores the run.
func (s *Service) runFlow(ctx context.Context, call controller.Call, sw controller.Switch) {
	log := s.log.With("call_id", call.ID, "flow_id", call.FlowID, "to", controller.MaskNumber(call.To))
	started := s.cfg.Now()
	run := controller.FlowRun{CallID: call.ID, TenantID: call.TenantID, FlowID: call.FlowID,
		Outcome: "running", Path: json.RawMessage(`{"outcome":"running","path":[]}`), StartedAt: started}
	fail := func(why string, err error) {
		log.Error("flow not run; hanging up", "why", why, "err", err)
		end := s.cfg.Now()
		run.Outcome, run.EndedAt = OutcomeError, &end
		run.Path, _ = json.Marshal(Result{Outcome: OutcomeError, Err: why})
		s.saveRun(log, run)
		if err := sw.Hangup(context.WithoutCancel(ctx), call.ID, failureCause); err != nil {
			log.Warn("hanging up after a flow failure", "err", err)
		}
		if f := s.cfg.OnRunEnded; f != nil {
			f(run)
		}
	}
	media, ok := sw.(controller.Media)
	if !ok {
		fail("the switch cannot run IVR steps", nil)
		return
	}
	rec, err := s.cfg.Store.GetFlow(ctx, call.TenantID, call.FlowID, 0)
	if err != nil {
		fail("loading the flow", err)
		return
	}
	flow, err := Decode(rec.Body)
	if err != nil {
		fail("the stored flow no longer decodes", err)
		return
	}
	pol, err := s.cfg.Policy(ctx, call.TenantID)
	if err != nil {
		fail("finding the tenant's policy", err)
		return
	}
	run.FlowVersion = rec.Version
	s.saveRun(log, run)
	var (
		pathMu sync.Mutex
		path   []Step
	)
	r := &Runner{
		Media:            media,
		Hangup:           sw.Hangup,
		Ledger:           s.cfg.Store,
		Prompts:          promptResolver{s},
		Egress:           s.cfg.Egress,
		WebhookSecret:    s.cfg.WebhookSecret,
		Now:              s.cfg.Now,
		Log:              s.log,
		ForbiddenPhrases: pol.ForbiddenPhrases,
		RefusalLock:      refusalLock(pol),
		Agents:           s.cfg.Agents,
		Disposition: func(ctx context.Context, c controller.Call, d string) error {
			_, err := s.cfg.Store.TagCall(ctx, c.TenantID, c.ID, nil, d)
			return err
		},
		OnStep: func(st Step) {
			pathMu.Lock()
			path = append(path, st)
			p := run
			p.Path, _ = json.Marshal(Result{Outcome: "running", Path: path})
			pathMu.Unlock()
			s.saveRun(log, p)
		},
	}
	if s.cfg.Recordings != nil {
		r.Recordings = recordingStarter{s}
	}
	res := r.Run(ctx, call, flow, rec.ID, rec.Version)
	end := s.cfg.Now()
	run.Outcome, run.EndedAt = res.Outcome, &end
	if run.Path, err = json.Marshal(res); err != nil {
		run.Path = json.RawMessage(`{"outcome":"error","path":[]}`)
	}
	s.saveRun(log, run)
	if len(res.Tags) > 0 || res.Disposition != "" {
		if err := controller.CheckTags(res.Tags, res.Disposition); err != nil {
			log.Warn("flow tags not stored on the call", "err", err)
		} else if _, err := s.cfg.Store.TagCall(context.WithoutCancel(ctx), call.TenantID, call.ID, res.Tags, res.Disposition); err != nil {
			log.Error("storing the flow's tags on the call", "err", err)
		}
	}
	log.Info("flow ended", "outcome", res.Outcome, "steps", len(res.Path), "error", res.Err)
	if f := s.cfg.OnRunEnded; f != nil {
		f(run)
	}
}

// refusalLock is how long a "no" locks the number under p.
func refusalLock(p compliance.Policy) time.Duration {
	if p.RefusalLockDays < 0 {
		return -1
	}
	return time.Duration(p.RefusalLockDays) * 24 * time.Hour
}

func (s *Service) saveRun(log *slog.Logger, run controller.FlowRun) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 10*time.Second)
	defer cancel()
	if err := s.cfg.Store.SaveFlowRun(ctx, run); err != nil {
		log.Error("saving the flow run", "err", err)
	}
}

// RecordingEvent seals a finished recording in the background
// (dialer.MediaHandler). A seal that fails leaves the recording active; the
// start-up sweep seals it then.
func (s *Service) RecordingEvent(ev controller.ChannelEvent) {
	if ev.Kind != controller.EventRecordStop || s.cfg.Recordings == nil {
		return
	}
	call := controller.Call{ID: ev.CallID}
	path, ok := s.fromSwitchSpool(ev.RecordPath)
	if !ok {
		s.log.Warn("recording outside the spool directory ignored", "call_id", call.ID)
		return
	}
	s.spawn(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 10*time.Minute)
		defer cancel()
		err := s.cfg.Recordings.Finish(ctx, call.ID, path, ev.RecordMS)
		if err != nil {
			s.log.Error("sealing recording failed; the start-up sweep retries", "call_id", call.ID, "err", err)
		}
		if f := s.cfg.OnSealed; f != nil {
			f(call.ID, err)
		}
	})
}

// toSwitchSpool maps a spool path as callgate sees it to the switch's view.
func (s *Service) toSwitchSpool(p string) (string, error) {
	rel, err := filepath.Rel(s.cfg.SpoolDir, p)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("recording path outside the spool directory")
	}
	return filepath.Join(s.cfg.SwitchSpoolDir, rel), nil
}

// fromSwitchSpool is the inverse of toSwitchSpool.
func (s *Service) fromSwitchSpool(p string) (string, bool) {
	rel, err := filepath.Rel(s.cfg.SwitchSpoolDir, filepath.Clean(p))
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") || filepath.IsAbs(rel) {
		return "", false
	}
	return filepath.Join(s.cfg.SpoolDir, rel), true
}

// recordingStarter begins recordings for the Runner.
type recordingStarter struct{ s *Service }

func (r recordingStarter) Begin(ctx context.Context, call controller.Call, consentID string) (string, string, error) {
	rec, err := r.s.cfg.Recordings.Begin(ctx, controller.Recording{TenantID: call.TenantID, CallID: call.ID, ConsentID: consentID})
	if err != nil {
		return "", "", err
	}
	p, err := r.s.toSwitchSpool(rec.SpoolPath)
	if err != nil {
		return "", "", fmt.Errorf("beginning recording %s: %w", rec.ID, err)
	}
	return rec.ID, p, nil
}

// promptResolver finds uploaded prompts for the Runner.
type promptResolver struct{ s *Service }

func (p promptResolver) Resolve(ctx context.Context, tenant, name string) (controller.Prompt, string, error) {
	pr, err := p.s.cfg.Store.GetPrompt(ctx, tenant, name, 0)
	if err != nil {
		return pr, "", err
	}
	if p.s.cfg.SwitchPromptDir == "" {
		return pr, "", controller.Errorf(controller.EUNAVAILABLE, "no prompt directory is configured")
	}
	return pr, filepath.Join(p.s.cfg.SwitchPromptDir, tenant, pr.File), nil
}

// errNoRecordings answers recording requests when recordings are off.
var errNoRecordings = controller.Errorf(controller.EUNAVAILABLE, "recordings are not enabled on this controller")

// GetRecording implements controller.RecordingAdmin.
func (s *Service) GetRecording(ctx context.Context, tenant, id string) (controller.Recording, error) {
	if s.cfg.RecordingStore == nil {
		return controller.Recording{}, errNoRecordings
	}
	if tenant == "" {
		return controller.Recording{}, controller.FieldError("tenant", "is required")
	}
	return s.cfg.RecordingStore.GetRecording(ctx, tenant, id)
}

// ListRecordings implements controller.RecordingAdmin.
func (s *Service) ListRecordings(ctx context.Context, tenant string, call controller.CallID) ([]controller.Recording, error) {
	if s.cfg.RecordingStore == nil {
		return nil, errNoRecordings
	}
	if _, err := s.cfg.Store.GetCall(ctx, tenant, call); err != nil {
		return nil, err
	}
	return s.cfg.RecordingStore.ListRecordings(ctx, tenant, call)
}

// OpenRecording implements controller.RecordingAdmin.
func (s *Service) OpenRecording(ctx context.Context, tenant, id string) (controller.Recording, io.ReadCloser, error) {
	if s.cfg.Recordings == nil {
		return controller.Recording{}, nil, errNoRecordings
	}
	return s.cfg.Recordings.Open(ctx, tenant, id)
}

// PauseRecording implements controller.RecordingAdmin.
func (s *Service) PauseRecording(ctx context.Context, tenant string, call controller.CallID) error {
	return s.maskRecording(ctx, tenant, call, controller.RecordMask)
}

// ResumeRecording implements controller.RecordingAdmin.
func (s *Service) ResumeRecording(ctx context.Context, tenant string, call controller.CallID) error {
	return s.maskRecording(ctx, tenant, call, controller.RecordUnmask)
}

func (s *Service) maskRecording(ctx context.Context, tenant string, id controller.CallID, action controller.RecordAction) error {
	if s.cfg.RecordingStore == nil {
		return errNoRecordings
	}
	call, err := s.cfg.Store.GetCall(ctx, tenant, id)
	if err != nil {
		return err
	}
	recs, err := s.cfg.RecordingStore.ListRecordings(ctx, tenant, id)
	if err != nil {
		return err
	}
	var active *controller.Recording
	for i := range recs {
		if recs[i].Status == controller.RecordingActive {
			active = &recs[i]
		}
	}
	if active == nil || call.State.Terminal() {
		return controller.Errorf(controller.ENOTFOUND, "call %s has no active recording", id)
	}
	sw, ok := s.cfg.Switches(call.Switch)
	if !ok {
		return controller.Errorf(controller.EUNAVAILABLE, "the call's switch %q is not configured here", call.Switch)
	}
	media, ok := sw.(controller.Media)
	if !ok {
		return controller.Errorf(controller.EUNAVAILABLE, "switch %q cannot pause recordings", call.Switch)
	}
	p, err := s.toSwitchSpool(active.SpoolPath)
	if err != nil {
		return err
	}
	if err := media.Record(ctx, id, action, p); err != nil {
		if errors.Is(err, controller.ErrHungUp) {
			return controller.Errorf(controller.ENOTFOUND, "call %s has no active recording", id)
		}
		return fmt.Errorf("%s recording of call %s: %w", action, id, err)
	}
	return nil
}
