// Package dialer turns API requests into durable attempts and attempts into
// calls: it validates and queues calls, owns switches through a lease, claims
// due attempts and originates them within each switch's limits, applies the
// switches' channel events to the call state machine, and reconciles in-flight
// calls with a switch after every (re)connect.
package dialer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
	"github.com/prometheus/client_golang/prometheus"
)

// Config tunes the dialer. Zero values take the defaults noted.
type Config struct {
	Owner             string           // this instance's id, for leases and claims (required)
	ClaimBatch        int              // attempts claimed per round trip (default 64)
	PollInterval      time.Duration    // longest wait for NOTIFY before polling (default 1s)
	LeaseTTL          time.Duration    // switch lease length (default 15s)
	RefusalDelay      time.Duration    // delay before retrying an attempt a switch refused (default 1s)
	TrunkBusyDelay    time.Duration    // delay before a call held back by its trunk's limits is due again (default 200ms)
	MaxRefusals       int              // refusals before the call fails (default 20)
	DefaultTimeout    time.Duration    // ring timeout when the request names none (default 30s)
	MaxTimeout        time.Duration    // longest ring timeout a request may ask (default 300s)
	Now               func() time.Time // clock (default time.Now)
	Logger            *slog.Logger
	Registerer        prometheus.Registerer // metrics go here when set
	ReconcileInterval time.Duration         // periodic reconciliation of in-flight calls (default 30s)
	// AllowedVariables are channel variables an API request may set besides
	// the cg_ prefixed ones; the drivers get the same list. Variables such as
	// api_on_answer or rtp_secure_media act on the switch and must never be
	// open to clients.
	AllowedVariables []string
	// Gate is the compliance gate every attempt passes when it is created
	// and again just before it is originated (required).
	Gate controller.Gatekeeper
	// DefaultRegion (ISO 3166 alpha-2, e.g. "US") parses numbers given
	// without a leading +; empty: a + is required.
	DefaultRegion string
	// OnCallUpdate, when set, is called with each call after a change to it
	// is persisted (state, facts, requeue). It runs on a switch's event
	// goroutine and must not block.
	OnCallUpdate func(controller.Call)
	// Policy is the default compliance policy (the gate's fallback), for
	// what reads a policy outside a decision: flow validation, refusal
	// locks written by flows.
	Policy compliance.Policy
	// Media, when set, runs the IVR flow of each answered call that names
	// one and handles recording events; without it calls cannot name a flow.
	Media MediaHandler
}

func (c *Config) setDefaults() {
	if c.ClaimBatch <= 0 {
		c.ClaimBatch = 64
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 15 * time.Second
	}
	if c.RefusalDelay <= 0 {
		c.RefusalDelay = time.Second
	}
	if c.TrunkBusyDelay <= 0 {
		c.TrunkBusyDelay = 200 * time.Millisecond
	}
	if c.MaxRefusals <= 0 {
		c.MaxRefusals = 20
	}
	if c.DefaultTimeout <= 0 {
		c.DefaultTimeout = 30 * time.Second
	}
	if c.MaxTimeout <= 0 {
		c.MaxTimeout = 300 * time.Second
	}
	if c.ReconcileInterval <= 0 {
		c.ReconcileInterval = 30 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// SwitchLimits are callgate's own limits for one switch.
type SwitchLimits struct {
	MaxSessions int // concurrent calls callgate keeps on the switch (0: unlimited)
	MaxCPS      int // originations per second (0: unlimited)
	// DefaultTrunk is the trunk of calls that name none (the switch's
	// Trunk; may be empty); a Trunks entry of that name limits it.
	DefaultTrunk string
	// Trunks are the trunks routing rules may name, with their limits
	// (trunks.go); the drivers must know the same names.
	Trunks []TrunkLimits
}

// Service implements controller.CallService and controller.EventSink.
type Service struct {
	cfg   Config
	store controller.CallStore
	admin controller.ComplianceStore // the same store, for the compliance administration

	policies policyCache
	routing  controller.RoutingStore // the same store; nil: no routing rules (routing.go)
	routes   routeCache
	log      *slog.Logger
	metrics  *metrics

	// claimer names this life of the instance on the attempts it claims:
	// Owner#<random>, so that a restart under the same Owner recovers the
	// claims of the life that died.
	claimer string

	mu     sync.RWMutex
	owners map[string]*owner // by switch name
	names  []string          // switch names in configuration order
}

var (
	_ controller.CallService = (*Service)(nil)
	_ controller.EventSink   = (*Service)(nil)
)

// New returns a Service over store, which must also implement
// controller.ComplianceStore (for Admin). Switches are added with AddSwitch
// before Start.
func New(cfg Config, store controller.CallStore) (*Service, error) {
	if cfg.Owner == "" {
		return nil, controller.FieldError("owner", "an instance id is required")
	}
	if cfg.Gate == nil {
		return nil, controller.FieldError("gate", "a compliance gate is required")
	}
	admin, ok := store.(controller.ComplianceStore)
	if !ok {
		return nil, fmt.Errorf("creating dialer: the store (%T) does not implement controller.ComplianceStore", store)
	}
	cfg.setDefaults()
	routing, _ := store.(controller.RoutingStore)
	return &Service{
		cfg:     cfg,
		store:   store,
		admin:   admin,
		routing: routing,
		log:     cfg.Logger,
		metrics: newMetrics(cfg.Registerer),
		owners:  map[string]*owner{},
		claimer: cfg.Owner + "#" + uuid.NewString()[:8],
	}, nil
}

// AddSwitch puts a switch under the service. The switch's events must be
// delivered to this Service (it is the switch's EventSink).
func (s *Service) AddSwitch(sw controller.Switch, limits SwitchLimits) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := newOwner(s, sw, limits)
	s.owners[sw.Name()] = o
	s.names = append(s.names, sw.Name())
}

// Start runs every switch's owner loop until ctx ends or Stop is called.
func (s *Service) Start(ctx context.Context) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, name := range s.names {
		o := s.owners[name]
		if err := s.store.UpsertSwitch(ctx, controller.SwitchRecord{
			Name: name, Kind: o.sw.Status().Kind, Address: o.sw.Status().Address,
			MaxSessions: o.limits.MaxSessions, MaxCPS: o.limits.MaxCPS,
		}); err != nil {
			s.log.Warn("recording switch", "switch", name, "err", err)
		}
		o.start(ctx)
	}
}

// Stop ends the owner loops, waits for them and gives up the leases.
func (s *Service) Stop() {
	s.mu.RLock()
	owners := make([]*owner, 0, len(s.owners))
	for _, o := range s.owners {
		owners = append(owners, o)
	}
	s.mu.RUnlock()
	for _, o := range owners {
		o.stop()
	}
}

func (s *Service) owner(name string) *owner {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.owners[name]
}

var numberRE = regexp.MustCompile(`^\+?[0-9]{3,20}$`)

// validate checks a create request and returns the call it asks for.
func (s *Service) validate(req controller.CreateCallRequest) (controller.Call, error) {
	if req.To == "" {
		return controller.Call{}, controller.FieldError("to", "is required")
	}
	if err := controller.CheckText("to", req.To); err != nil {
		return controller.Call{}, err
	}
	to, err := compliance.ParseNumber(req.To, s.cfg.DefaultRegion)
	if err != nil {
		return controller.Call{}, err
	}
	if req.From == "" {
		return controller.Call{}, controller.FieldError("from", "is required")
	}
	if !numberRE.MatchString(req.From) {
		return controller.Call{}, controller.FieldError("from", "must be a phone number: 3 to 20 digits with an optional leading +")
	}
	from := req.From
	if n, err := compliance.ParseNumber(req.From, s.cfg.DefaultRegion); err == nil {
		from = n.E164
	}
	switch req.Purpose {
	case "", controller.PurposeMarketing, controller.PurposeService, controller.PurposeTransactional:
	default:
		return controller.Call{}, controller.FieldError("purpose", "must be marketing, service or transactional")
	}
	if len(req.CallerIDName) > 64 {
		return controller.Call{}, controller.FieldError("caller_id_name", "must be at most 64 characters")
	}
	if err := controller.CheckText("caller_id_name", req.CallerIDName); err != nil {
		return controller.Call{}, err
	}
	if req.Switch != "" && s.owner(req.Switch) == nil {
		return controller.Call{}, &controller.Error{Code: controller.ENOTFOUND, Field: "switch", Message: fmt.Sprintf("no switch named %q", req.Switch)}
	}
	timeout := s.cfg.DefaultTimeout
	if req.TimeoutSeconds != 0 {
		timeout = time.Duration(req.TimeoutSeconds) * time.Second
		if req.TimeoutSeconds < 1 || timeout > s.cfg.MaxTimeout {
			return controller.Call{}, controller.FieldError("timeout_seconds", "must be between 1 and %d", int(s.cfg.MaxTimeout/time.Second))
		}
	}
	if len(req.Variables) > 32 {
		return controller.Call{}, controller.FieldError("variables", "at most 32 variables")
	}
	for k, v := range req.Variables {
		if !varNameRE.MatchString(k) {
			return controller.Call{}, controller.FieldError("variables", "variable name %q must match %s", k, varNameRE)
		}
		if !strings.HasPrefix(k, "cg_") && !slices.Contains(s.cfg.AllowedVariables, k) {
			return controller.Call{}, controller.FieldError("variables", "variable %q is not allowed: use the cg_ prefix or ask an operator to allow it", k)
		}
		if len(v) > 256 {
			return controller.Call{}, controller.FieldError("variables", "variable %q is longer than 256 bytes", k)
		}
		if err := controller.CheckText("variables."+k, v); err != nil {
			return controller.Call{}, err
		}
	}
	tenant := req.TenantID
	if tenant == "" {
		tenant = controller.DefaultTenant
	}
	if req.FlowID != "" && !flowIDRE.MatchString(req.FlowID) {
		return controller.Call{}, controller.FieldError("flow_id", "must match %s", flowIDRE)
	}
	if len(req.AgentID) > 200 {
		return controller.Call{}, controller.FieldError("agent_id", "must be at most 200 characters")
	}
	if err := controller.CheckText("agent_id", req.AgentID); err != nil {
		return controller.Call{}, err
	}
	return controller.Call{
		TenantID:       tenant,
		AgentID:        req.AgentID,
		FlowID:         req.FlowID,
		Switch:         req.Switch,
		To:             to.E164,
		From:           from,
		Purpose:        req.Purpose,
		CallerIDName:   req.CallerIDName,
		Timeout:        timeout,
		Variables:      req.Variables,
		State:          controller.CallQueued,
		IdempotencyKey: req.IdempotencyKey,
	}, nil
}

var varNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// flowIDRE is the form of a flow's ID (controller/postgres checks the same).
var flowIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// requestHash fingerprints a request so an Idempotency-Key replay with a
// different body is told apart from a true replay.
func requestHash(req controller.CreateCallRequest) string {
	keys := make([]string, 0, len(req.Variables))
	for k := range req.Variables {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	vars := make([][2]string, 0, len(keys))
	for _, k := range keys {
		vars = append(vars, [2]string{k, req.Variables[k]})
	}
	parts := []any{req.To, req.From, req.CallerIDName, req.Switch, req.TimeoutSeconds, vars}
	if req.Purpose != "" || req.FlowID != "" { // absent from hashes taken before these fields existed
		parts = append(parts, req.Purpose, req.FlowID)
	}
	if req.AgentID != "" {
		// Another agent replaying the key gets ECONFLICT, never the call.
		parts = append(parts, "agent", req.AgentID)
	}
	b, _ := json.Marshal(parts)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// CreateCall implements controller.CallService. The tenant's routing rules
// choose the call's switch and trunk unless the request names a switch:
// that explicit choice wins (on the switch's default trunk).
func (s *Service) CreateCall(ctx context.Context, req controller.CreateCallRequest) (controller.Call, bool, error) {
	c, err := s.validate(req)
	if err != nil {
		return controller.Call{}, false, err
	}
	if c.Switch == "" {
		if c.Switch, c.Trunk, err = s.routeCall(ctx, c); err != nil {
			return controller.Call{}, false, err
		}
	}
	if c.FlowID != "" {
		if err := s.checkFlow(ctx, c.TenantID, c.FlowID); err != nil {
			return controller.Call{}, false, err
		}
	}
	pctx, err := s.withPolicy(ctx, c.TenantID, "")
	if err != nil {
		return controller.Call{}, false, err
	}
	pctx = controller.WithLookupHint(pctx, lookupHint(s.policyIn(pctx), c))
	call, created, d, err := s.store.CreateCallGated(pctx, c, requestHash(req), s.decider(c, controller.StageCreate))
	if err != nil {
		return controller.Call{}, false, fmt.Errorf("queueing call: %w", err)
	}
	if d.Stage != "" {
		call.Decision = &d
	}
	if created && call.State == controller.CallQueued {
		s.metrics.queued.Inc()
	}
	return call, created, nil
}

// decider runs the gate on c at stage.
func (s *Service) decider(c controller.Call, stage string) controller.DecideFunc {
	req := controller.CheckRequest{TenantID: c.TenantID, CampaignID: c.CampaignID, To: c.To, From: c.From,
		Purpose: c.Purpose, Region: s.cfg.DefaultRegion, Stage: stage, CalleeZone: c.CalleeZone}
	return func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
		return s.cfg.Gate.Check(ctx, req, l)
	}
}

// CheckCompliance implements controller.CallService.
func (s *Service) CheckCompliance(ctx context.Context, req controller.CheckRequest) (controller.Decision, error) {
	n, err := compliance.ParseNumber(req.To, s.cfg.DefaultRegion)
	if err != nil {
		return controller.Decision{}, err
	}
	if err := controller.CheckText("from", req.From); err != nil {
		return controller.Decision{}, err
	}
	req.To, req.TenantID, req.Stage = n.E164, tenantOr(req.TenantID), controller.StageCreate
	if req.Region == "" {
		req.Region = s.cfg.DefaultRegion
	}
	ctx, err = s.withPolicy(ctx, req.TenantID, req.CampaignID)
	if err != nil {
		return controller.Decision{}, err
	}
	return s.store.Gate(ctx, req.TenantID, n.E164, func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
		return s.cfg.Gate.Check(ctx, req, l)
	})
}

// GetAttempt implements controller.CallService.
func (s *Service) GetAttempt(ctx context.Context, tenant string, id controller.CallID) (controller.Attempt, error) {
	return s.store.GetAttempt(ctx, tenantOr(tenant), id)
}

// GetCall implements controller.CallService.
func (s *Service) GetCall(ctx context.Context, tenant string, id controller.CallID) (controller.Call, error) {
	return s.store.GetCall(ctx, tenantOr(tenant), id)
}

// ListCalls implements controller.CallService.
func (s *Service) ListCalls(ctx context.Context, f controller.CallFilter) (controller.CallPage, error) {
	f.TenantID = tenantOr(f.TenantID)
	if f.State != "" && !f.State.Valid() {
		return controller.CallPage{}, controller.FieldError("state", "unknown state %q", f.State)
	}
	return s.store.ListCalls(ctx, f)
}

// CallEvents implements controller.CallService.
func (s *Service) CallEvents(ctx context.Context, tenant string, id controller.CallID) ([]controller.CallEventRecord, error) {
	return s.store.ListCallEvents(ctx, tenantOr(tenant), id)
}

// HangupCall implements controller.CallService.
func (s *Service) HangupCall(ctx context.Context, tenant string, id controller.CallID, cause string) (controller.Call, error) {
	if cause == "" {
		cause = "NORMAL_CLEARING"
	}
	if !controller.ValidHangupCause(cause) {
		return controller.Call{}, controller.FieldError("cause", "unknown hangup cause %q", cause)
	}
	call, err := s.store.GetCall(ctx, tenantOr(tenant), id)
	if err != nil {
		return controller.Call{}, err
	}
	switch {
	case call.State == controller.CallQueued:
		c, err := s.store.CancelCall(ctx, call.TenantID, id)
		if err == nil || controller.ErrorCode(err) != controller.ECONFLICT {
			return c, err
		}
		// Claimed and sent meanwhile: hang it up on the switch below.
		if call, err = s.store.GetCall(ctx, call.TenantID, id); err != nil {
			return controller.Call{}, err
		}
	case call.State.Terminal():
		return call, controller.Errorf(controller.ECONFLICT, "call has already ended (%s)", call.State)
	}
	o := s.owner(call.Switch)
	if o == nil {
		return call, controller.Errorf(controller.EUNAVAILABLE, "switch %q is not managed by this controller", call.Switch)
	}
	err = o.sw.Hangup(ctx, id, cause)
	if controller.ErrorCode(err) == controller.ENOTFOUND {
		// The channel is already gone; its end will arrive as events or
		// through reconciliation.
		return call, nil
	}
	if err != nil {
		return call, fmt.Errorf("hanging up call %s: %w", id, err)
	}
	return call, nil
}

// Switches implements controller.CallService.
func (s *Service) Switches(context.Context) []controller.SwitchStatus {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]controller.SwitchStatus, 0, len(s.names))
	for _, name := range s.names {
		o := s.owners[name]
		st := o.sw.Status()
		st.MaxSessions, st.MaxCPS = o.limits.MaxSessions, o.limits.MaxCPS
		out = append(out, st)
	}
	return out
}

// Ready implements controller.CallService.
func (s *Service) Ready(ctx context.Context) error {
	if err := s.store.Ping(ctx); err != nil {
		return controller.Errorf(controller.EUNAVAILABLE, "database unreachable")
	}
	for _, st := range s.Switches(ctx) {
		if st.Connected {
			return nil
		}
	}
	return controller.Errorf(controller.EUNAVAILABLE, "no switch is connected")
}

// HandleChannelEvent implements controller.EventSink.
func (s *Service) HandleChannelEvent(ev controller.ChannelEvent) {
	switch ev.Kind {
	case controller.EventRecordStart, controller.EventRecordStop:
		if h := s.cfg.Media; h != nil {
			h.RecordingEvent(ev)
		}
		return
	}
	if o := s.owner(ev.Switch); o != nil {
		o.tracker.push(ev)
		return
	}
	s.metrics.droppedEvents.Inc()
}

// SwitchConnected implements controller.EventSink.
func (s *Service) SwitchConnected(name string) {
	if o := s.owner(name); o != nil {
		o.requestReconcile()
	}
}

func tenantOr(t string) string {
	if t == "" {
		return controller.DefaultTenant
	}
	return t
}

// errStopped is returned by loops when the service stops.
var errStopped = errors.New("dialer stopped")

// TagCall implements controller.CallService.
func (s *Service) TagCall(ctx context.Context, tenant string, id controller.CallID, tags map[string]string, disposition string) (controller.Call, error) {
	if err := controller.CheckTags(tags, disposition); err != nil {
		return controller.Call{}, err
	}
	return s.store.TagCall(ctx, tenantOr(tenant), id, tags, disposition)
}
