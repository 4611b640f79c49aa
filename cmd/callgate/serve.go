package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/callgate/callgate/api"
	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/asterisk"
	"github.com/callgate/callgate/controller/compliance"
	"github.com/callgate/callgate/controller/dialer"
	"github.com/callgate/callgate/controller/freeswitch"
	"github.com/callgate/callgate/controller/ivr"
	"github.com/callgate/callgate/controller/pii"
	"github.com/callgate/callgate/controller/postgres"
	"github.com/callgate/callgate/controller/recording"
	"github.com/callgate/callgate/controller/schedule"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Main is one running callgate: database, dialer, switch drivers and the
// HTTP API. `callgate serve` runs one; end-to-end tests run several.
type Main struct {
	Config Config
	Logger *slog.Logger
	// OnCallUpdate, when set, sees every persisted change of a call (tests
	// wait on it instead of polling).
	OnCallUpdate func(controller.Call)
	// Now, when set, is the compliance gate's and the recordings' clock
	// (tests).
	Now func() time.Time
	// OnRunEnded and OnSealed, when set, see every finished IVR flow run
	// and every recording seal (tests wait on them).
	OnRunEnded func(controller.FlowRun)
	OnSealed   func(controller.CallID, error)
	// OnCampaignTick, when set, is called after every pass of the campaign
	// runner (tests wait on it).
	OnCampaignTick func()
	// OnAgentChange, when set, sees every agent state change (tests).
	OnAgentChange func(controller.Agent)
	// TokenLimit and AnonLimit, when not zero, replace the API's request
	// budgets per token and per address failing authentication
	// (api.DefaultTokenLimit, api.DefaultAnonLimit); the bench raises them.
	TokenLimit, AnonLimit api.RateLimit

	db        *postgres.DB
	service   *dialer.Service
	campaigns *dialer.Campaigns
	agents    *dialer.Agents
	media     *ivr.Service
	jobs      *schedule.Scheduler // the off-peak jobs (jobs.go)
	// purgeRecordings runs the recordings step of the retention purge now.
	purgeRecordings func(context.Context) (int, error)
	switches        []driver
	http            *http.Server
	ln              net.Listener
	cancel          context.CancelFunc
	served          chan error
	tokens          *postgres.TokenCache
	keys            *pii.Keys // seal phone numbers; their keyring serves recordings too
}

// Run opens the database (migrating it if configured), connects the
// switches, starts the dialer and the HTTP API, and returns once the API
// listens. Returns an error naming what could not start.
func (m *Main) Run(ctx context.Context) (err error) {
	if m.Logger == nil {
		m.Logger = slog.New(slog.DiscardHandler)
	}
	if err := m.Config.Validate(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = m.Close()
		}
	}()
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel

	if m.Config.Migrate {
		if err := postgres.Migrate(ctx, m.Config.DatabaseURL); err != nil {
			return fmt.Errorf("migrating database: %w", err)
		}
	}
	if m.db, err = postgres.Open(ctx, m.Config.DatabaseURL); err != nil {
		return fmt.Errorf("opening database: %w", err)
	}
	store := postgres.NewStore(m.db)
	if err := m.openKeys(ctx, store); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := store.RegisterMetrics(reg); err != nil {
		return err
	}
	policy, err := loadPolicy(m.Config.Policy)
	if err != nil {
		return fmt.Errorf("loading policy: %w", err)
	}
	opts := []compliance.Option{compliance.WithRegisterer(reg)}
	if m.Now != nil {
		opts = append(opts, compliance.WithNow(m.Now))
	}
	gate, err := compliance.New(dialer.PolicySource(policy), opts...)
	if err != nil {
		return fmt.Errorf("building the compliance gate: %w", err)
	}
	m.agents = dialer.NewAgents(store, store, m.Logger)
	m.agents.OnChange = m.OnAgentChange
	if err := m.startMedia(ctx, store, policy); err != nil {
		return err
	}
	if err := m.startJobs(runCtx, store, policy); err != nil {
		return err
	}
	m.service, err = dialer.New(dialer.Config{
		Owner:            m.Config.InstanceID,
		ClaimBatch:       m.Config.Dialer.ClaimBatch,
		DefaultTimeout:   m.Config.Dialer.DefaultTimeout,
		LeaseTTL:         m.Config.Dialer.LeaseTTL,
		Logger:           m.Logger,
		Registerer:       reg,
		OnCallUpdate:     m.OnCallUpdate,
		Gate:             gate,
		DefaultRegion:    m.Config.DefaultRegion,
		AllowedVariables: m.Config.AllowedVariables,
		Policy:           policy,
		Media:            m.media,
	}, store)
	if err != nil {
		return err
	}
	for _, sc := range m.Config.Switches {
		sw, err := m.newDriver(sc)
		if err != nil {
			return fmt.Errorf("switch %s: %w", sc.Name, err)
		}
		m.switches = append(m.switches, sw)
		m.service.AddSwitch(sw, sc.limits())
	}
	for _, sw := range m.switches {
		if err := sw.Start(runCtx); err != nil {
			return fmt.Errorf("starting switch %s: %w", sw.Name(), err)
		}
	}
	m.service.Start(runCtx)
	m.campaigns = dialer.NewCampaigns(dialer.CampaignConfig{Logger: m.Logger, Now: m.Now,
		OnTick: m.OnCampaignTick, Agents: m.agents, Registerer: reg}, store, m.service)
	m.campaigns.Start(runCtx)

	// Every /v1 request is authenticated against the tokens in the
	// database (callgate token create).
	m.tokens = postgres.NewTokenCache(m.db, store, postgres.TokenCacheConfig{})
	{
		lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
		if err := m.tokens.Start(lctx); err != nil {
			m.Logger.Warn("token cache bypassed until its listener connects", "err", err)
		}
		lcancel()
	}
	apiCfg := api.Config{Auth: m.tokens, TokenLimit: api.DefaultTokenLimit, AnonLimit: api.DefaultAnonLimit}
	if m.Config.APIRate > 0 {
		apiCfg.TokenLimit.Rate = m.Config.APIRate
	}
	if m.Config.APIBurst > 0 {
		apiCfg.TokenLimit.Burst = m.Config.APIBurst
	}
	if m.TokenLimit.On() {
		apiCfg.TokenLimit = m.TokenLimit
	}
	if m.AnonLimit.On() {
		apiCfg.AnonLimit = m.AnonLimit
	}
	if err := apiCfg.Validate(); err != nil {
		return fmt.Errorf("API: %w", err)
	}
	srv := api.New(apiCfg, m.service, reg, m.Logger)
	srv.SetMedia(m.media, m.media)
	srv.SetCampaigns(m.campaigns)
	srv.SetAgents(m.agents)
	srv.SetRouting(m.service)
	srv.SetTraceExporter(traceExporter{store})
	if l, ok := any(store).(controller.AuditLog); ok {
		srv.SetAudit(l)
	}
	if m.ln, err = m.listen(); err != nil {
		return fmt.Errorf("listening on %s: %w", m.Config.Listen, err)
	}
	m.http = &http.Server{Handler: securityHeaders(srv.Handler(), m.Config.TLSCertFile != ""), ReadHeaderTimeout: 10 * time.Second}
	m.served = make(chan error, 1)
	go func() { m.served <- m.http.Serve(m.ln) }()
	return nil
}

// driver is a switch driver callgate starts and stops.
type driver interface {
	controller.Switch
	Start(ctx context.Context) error
	Stop()
}

// newDriver builds the driver of a configured switch, delivering its events
// to the dialer.
func (m *Main) newDriver(sc SwitchConfig) (driver, error) {
	if sc.Kind == "asterisk" {
		cfg := sc.asterisk(m.Logger)
		cfg.HeartbeatInterval = m.Config.Dialer.HeartbeatInterval
		sw, err := asterisk.New(cfg, m.service)
		if err == nil && sc.SecureTrunk != "" {
			err = sw.DeclareSecureTrunk(sc.SecureTrunk)
		}
		return sw, err
	}
	return freeswitch.New(freeswitch.Config{
		Name:              sc.Name,
		Address:           sc.Address,
		Password:          sc.Password,
		DialTemplate:      sc.DialTemplate,
		Trunk:             sc.Trunk,
		Trunks:            sc.trunkNames(),
		MaxSessions:       sc.MaxSessions,
		MaxCPS:            sc.MaxCPS,
		SecureProfile:     sc.SecureProfile,
		HeartbeatInterval: m.Config.Dialer.HeartbeatInterval,
		AllowedVariables:  m.Config.AllowedVariables,
		Logger:            m.Logger,
	}, m.service)
}

// Addr is the API's listening address, once Run has returned.
func (m *Main) Addr() string {
	if m.ln == nil {
		return ""
	}
	return m.ln.Addr().String()
}

// Service is the running dialer (for tests and the bench).
func (m *Main) Service() controller.CallService { return m.service }

// Campaigns is the running campaign runner (for tests and the bench).
func (m *Main) Campaigns() *dialer.Campaigns { return m.campaigns }

// openKeys loads the keyring, checks its index key is the database's, gives
// the store the keys it seals phone numbers with, and seals the numbers an
// older version stored in the clear — before anything dials.
func (m *Main) openKeys(ctx context.Context, store *postgres.Store) error {
	kr, err := recording.LoadKeyring(m.Config.keysFile())
	if err != nil {
		return fmt.Errorf("config: keys_file: %w", err)
	}
	keys, err := pii.New(kr)
	if err != nil {
		return fmt.Errorf("config: keys_file: %w", err)
	}
	fp, err := keys.Fingerprint()
	if err != nil {
		return fmt.Errorf("config: keys_file: %w", err)
	}
	if err := store.CheckIndexKey(ctx, fp); err != nil {
		return fmt.Errorf("config: keys_file: %w", err)
	}
	store.SetPersonalData(keys)
	n, err := store.SealClearNumbers(ctx)
	if err != nil {
		return fmt.Errorf("sealing stored phone numbers: %w", err)
	}
	if n > 0 {
		m.Logger.Info("sealed phone numbers stored in the clear by an older version", "rows", n)
	}
	m.keys = keys
	return nil
}

// Agents is the agent registry and desk (for tests).
func (m *Main) Agents() *dialer.Agents { return m.agents }

// Close stops the API, the dialer and the drivers, and closes the database.
func (m *Main) Close() error {
	var errs []error
	if m.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := m.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stopping HTTP server: %w", err))
		}
		cancel()
		if err := <-m.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
		m.http = nil
	}
	if m.jobs != nil {
		m.jobs.Stop() // waits for a running job
		m.jobs = nil
	}
	if m.campaigns != nil {
		m.campaigns.Stop() // before the dialer: no new campaign call
		m.campaigns = nil
	}
	if m.service != nil {
		m.service.Stop()
		m.service = nil
	}
	if m.media != nil {
		m.media.Stop() // after the dialer: no new flow starts
		m.media = nil
	}
	for _, sw := range m.switches {
		sw.Stop()
	}
	m.switches = nil
	if m.tokens != nil {
		m.tokens.Close()
		m.tokens = nil
	}
	if m.cancel != nil {
		m.cancel()
	}
	if m.db != nil {
		m.db.Close()
		m.db = nil
	}
	return errors.Join(errs...)
}

// traceExporter serves the API's traceability export from the PostgreSQL
// store, whose rows it converts to the domain's.
type traceExporter struct{ store *postgres.Store }

var _ controller.TraceExporter = traceExporter{}

func (t traceExporter) ExportTrace(ctx context.Context, tenant string, from, to time.Time, fn func(controller.TraceRow) error) error {
	return t.store.ExportTrace(ctx, tenant, from, to, func(r postgres.TraceRow) error {
		return fn(controller.TraceRow(r))
	})
}
