// Package compliance is the gate every call attempt passes, when it is
// created and again just before it is dialled. Rules are small stages that
// read a Policy (data) and a controller.Lookup (the store, inside the
// transaction that creates the attempt) and return a verdict with a reason
// code and the evidence they used. The gate runs every rule, so a decision
// explains all its reasons, and fails closed: a rule that errs or panics
// blocks the call with rule_error.
package compliance

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/prometheus/client_golang/prometheus"
)

// Rule is one stage of the gate.
type Rule interface {
	// Name is the rule's stable name, stored in Verdict.Rule.
	Name() string
	// Check judges in. An error means the rule could not decide; the gate
	// then blocks with rule_error (the verdict returned with it is ignored).
	Check(ctx context.Context, in *Input) (controller.Verdict, error)
}

// Input is what a rule judges. Rules run one after another on the same
// Input; it is not safe for concurrent use.
type Input struct {
	Req    controller.CheckRequest
	Number Number            // the callee, normalised; valid
	Policy Policy            // validated
	Lookup controller.Lookup // the store's view inside the attempt's transaction
	Now    time.Time         // the instant judged

	dncDone bool
	dncHits []controller.DNCHit
	dncErr  error
}

// DNCHits returns the do-not-call lists holding the callee, asking the
// Lookup once per check (several rules read it). Returns the Lookup's error.
func (in *Input) DNCHits(ctx context.Context) ([]controller.DNCHit, error) {
	if !in.dncDone {
		in.dncHits, in.dncErr = in.Lookup.DNCHits(ctx, in.Req.TenantID, in.Number.E164)
		in.dncDone = true
	}
	return in.dncHits, in.dncErr
}

// PolicySource finds the policy that governs a request (per tenant, per
// campaign).
type PolicySource interface {
	// Policy returns the policy for req. An error blocks the attempt with
	// rule_error (rule "policy").
	Policy(ctx context.Context, req controller.CheckRequest) (Policy, error)
}

// PolicySourceFunc adapts a function to a PolicySource.
type PolicySourceFunc func(ctx context.Context, req controller.CheckRequest) (Policy, error)

// Policy calls f.
func (f PolicySourceFunc) Policy(ctx context.Context, req controller.CheckRequest) (Policy, error) {
	return f(ctx, req)
}

// StaticPolicy returns a PolicySource that always returns p.
func StaticPolicy(p Policy) PolicySource {
	return PolicySourceFunc(func(context.Context, controller.CheckRequest) (Policy, error) { return p, nil })
}

// Names of the pseudo-rules the gate itself reports under.
const (
	RuleNumber = "number" // parsing the callee number
	RulePolicy = "policy" // finding and validating the policy
	RuleLookup = "lookup" // the Lookup is missing
	RuleGate   = "gate"   // the check was cut short by its context
)

// Option configures a Gate.
type Option func(*config)

type config struct {
	now     func() time.Time
	numbers NumberLookup
	reg     prometheus.Registerer
	rules   []Rule
}

// WithNow sets the clock (default time.Now).
func WithNow(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithNumberLookup sets the HLR / reassigned-number hook used by the
// default rules (default NoopNumberLookup).
func WithNumberLookup(l NumberLookup) Option { return func(c *config) { c.numbers = l } }

// WithRegisterer registers the gate's metrics (none when unset).
func WithRegisterer(reg prometheus.Registerer) Option { return func(c *config) { c.reg = reg } }

// WithRules replaces the default rules (DefaultRules) with rules.
func WithRules(rules ...Rule) Option { return func(c *config) { c.rules = rules } }

// DefaultRules returns the gate's rules in the order their verdicts are
// reported. numbers may be nil (no HLR lookup).
func DefaultRules(numbers NumberLookup) []Rule {
	return []Rule{
		SuspiciousRangeRule{},
		ReassignedRule{Lookup: numbers},
		CallerIDRule{},
		RefusalRule{},
		ConsentRule{},
		DNCInternalRule{},
		DNCListRule{},
		DNCScrubRule{},
		DailyCapRule{},
		WindowCapRule{},
		HolidayRule{},
		HoursRule{},
	}
}

// Gate runs the rules on every attempt. It is safe for concurrent use;
// each Check gets its own Input.
type Gate struct {
	policies PolicySource
	rules    []Rule
	now      func() time.Time
	metrics  *metrics
}

// New returns a gate reading policies from src. Returns an error when src
// is nil, when WithRules gave an empty list, a nil rule or two rules of the
// same name, or when the metrics cannot be registered.
func New(src PolicySource, opts ...Option) (*Gate, error) {
	if src == nil {
		return nil, errors.New("compliance: a policy source is required")
	}
	c := config{now: time.Now, numbers: NoopNumberLookup{}}
	for _, o := range opts {
		o(&c)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.rules == nil {
		c.rules = DefaultRules(c.numbers)
	}
	if len(c.rules) == 0 {
		return nil, errors.New("compliance: a gate without rules would allow every call")
	}
	names := map[string]bool{RuleNumber: true, RulePolicy: true, RuleLookup: true, RuleGate: true}
	for i, r := range c.rules {
		if r == nil {
			return nil, fmt.Errorf("compliance: rule %d is nil", i)
		}
		if names[r.Name()] {
			return nil, fmt.Errorf("compliance: rule name %q is used twice (or reserved)", r.Name())
		}
		names[r.Name()] = true
	}
	m, err := newMetrics(c.reg)
	if err != nil {
		return nil, err
	}
	return &Gate{policies: src, rules: slices.Clone(c.rules), now: c.now, metrics: m}, nil
}

// Check judges req. It returns the decision and a nil error whatever the
// rules find: an invalid number, a missing policy and a failing rule are
// blocking verdicts, not errors. It returns a blocking decision with
// ctx.Err() only when ctx is done before the decision is complete.
//
// The instant judged is the gate's clock at StageDial, and req.At (when
// set) at other stages, so a dry run can ask about a future time but a
// dial never trusts a caller's clock. At StageDial the Lookup must not
// count the attempt being dialled in CountAttempts (the store excludes it
// by id), or the last slot of a cap could never be used.
func (g *Gate) Check(ctx context.Context, req controller.CheckRequest, lookup controller.Lookup) (controller.Decision, error) {
	started := time.Now() // latency is measured on the monotonic clock, not the injected one
	now := g.now()
	d := controller.Decision{Stage: req.Stage, DecidedAt: now}
	if d.Stage == "" {
		d.Stage = controller.StageCreate
	}
	at := now
	if d.Stage != controller.StageDial && !req.At.IsZero() {
		at = req.At
	}
	if err := ctx.Err(); err != nil {
		return g.cutShort(d, started, err), fmt.Errorf("checking compliance: %w", err)
	}

	p, err := g.policies.Policy(ctx, req)
	if err == nil {
		err = p.Validate()
	}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return g.cutShort(d, started, cerr), fmt.Errorf("checking compliance: %w", cerr)
		}
		d.Verdicts = append(d.Verdicts, errorVerdict(RulePolicy, fmt.Errorf("finding the policy: %w", err)))
		return g.finish(d, started), nil
	}
	d.PolicyID, d.PolicyVersion = p.ID, p.Version

	n, err := ParseNumber(req.To, req.Region)
	if err != nil {
		// Every rule keys on the E.164 number: none can run without it.
		d.Verdicts = append(d.Verdicts, controller.Verdict{
			Rule: RuleNumber, Reason: controller.ReasonNumberInvalid, Detail: controller.ErrorMessage(err),
		})
		return g.finish(d, started), nil
	}
	d.Number = n.E164
	d.Verdicts = append(d.Verdicts, controller.Verdict{Rule: RuleNumber, Allow: true})
	if lookup == nil {
		d.Verdicts = append(d.Verdicts, errorVerdict(RuleLookup, errors.New("no lookup given")))
		return g.finish(d, started), nil
	}

	in := &Input{Req: req, Number: withOverrides(n, p.ZoneOverrides), Policy: p, Lookup: lookup, Now: at}
	for _, r := range g.rules {
		v := runRule(ctx, r, in)
		if err := ctx.Err(); err != nil {
			return g.cutShort(d, started, err), fmt.Errorf("checking compliance (rule %s): %w", r.Name(), err)
		}
		d.Verdicts = append(d.Verdicts, v)
	}
	return g.finish(d, started), nil
}

// runRule runs r and returns its verdict, normalised; an error, a panic or
// a block without a reason becomes a rule_error verdict.
func runRule(ctx context.Context, r Rule, in *Input) (v controller.Verdict) {
	name := r.Name()
	defer func() {
		if p := recover(); p != nil {
			v = errorVerdict(name, fmt.Errorf("panic: %v", p))
		}
	}()
	v, err := r.Check(ctx, in)
	if err != nil {
		return errorVerdict(name, err)
	}
	v.Rule = name
	if v.Review {
		v.Allow = false
	}
	if !v.Allow && v.Reason == "" {
		return errorVerdict(name, errors.New("rule blocked without a reason code"))
	}
	return v
}

// errorVerdict is the fail-closed verdict of a rule that could not decide.
// The error text is kept for people, with anything that looks like a phone
// number masked (stores may put the number in their errors).
func errorVerdict(rule string, err error) controller.Verdict {
	return controller.Verdict{
		Rule:   rule,
		Reason: controller.ReasonRuleError,
		Detail: fmt.Sprintf("rule %s failed, so the call is blocked: %s", rule, maskNumbers(err.Error())),
	}
}

// numberLike matches runs of 7 or more digits, optionally with a leading +
// and single separators, as phone numbers are written.
var numberLike = regexp.MustCompile(`\+?[0-9](?:[ ().\-]?[0-9]){6,}`)

func maskNumbers(s string) string {
	return numberLike.ReplaceAllStringFunc(s, controller.MaskNumber)
}

// cutShort finishes a decision whose rules did not all run: it blocks.
func (g *Gate) cutShort(d controller.Decision, started time.Time, err error) controller.Decision {
	d.Verdicts = append(d.Verdicts, errorVerdict(RuleGate, fmt.Errorf("check cut short: %w", err)))
	return g.finish(d, started)
}

// finish derives Allow and Reasons from the verdicts and records metrics.
func (g *Gate) finish(d controller.Decision, started time.Time) controller.Decision {
	d.Allow = true
	d.Reasons = nil
	for _, v := range d.Verdicts {
		if !v.Allow || v.Review {
			d.Allow = false
			reason := v.Reason
			if reason == "" {
				reason = controller.ReasonRuleError
			}
			d.Reasons = append(d.Reasons, reason)
		}
	}
	if len(d.Verdicts) == 0 { // cannot happen; never allow on nothing
		d.Allow, d.Reasons = false, []string{controller.ReasonRuleError}
	}
	slices.Sort(d.Reasons)
	d.Reasons = slices.Compact(d.Reasons)
	g.metrics.observe(d, time.Since(started))
	return d
}
