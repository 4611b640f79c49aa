package compliance_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
	"github.com/stretchr/testify/require"
)

// fakeLookup is an in-memory controller.Lookup. Fields are set before use;
// the mutex guards the call log.
type fakeLookup struct {
	consents map[string]*controller.Consent // number|purpose → newest consent
	refusals map[string]*controller.Refusal // number → refusal in force
	hits     map[string][]controller.DNCHit // number → lists holding it
	lists    []controller.DNCList
	attempts map[string][]time.Time // number → times of allowed attempts
	owned    map[string]bool        // tenant|number
	errs     map[string]error       // method name → error to return

	mu     sync.Mutex
	calls  map[string]int
	sinces []time.Time // every CountAttempts since, in order
}

var _ controller.Lookup = (*fakeLookup)(nil)

func newFake() *fakeLookup {
	return &fakeLookup{
		consents: map[string]*controller.Consent{},
		refusals: map[string]*controller.Refusal{},
		hits:     map[string][]controller.DNCHit{},
		attempts: map[string][]time.Time{},
		owned:    map[string]bool{},
		errs:     map[string]error{},
		calls:    map[string]int{},
	}
}

func (f *fakeLookup) called(method string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[method]++
	return f.errs[method]
}

func (f *fakeLookup) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func (f *fakeLookup) ActiveConsent(_ context.Context, _, number string, purpose controller.Purpose) (*controller.Consent, error) {
	if err := f.called("ActiveConsent"); err != nil {
		return nil, err
	}
	return f.consents[number+"|"+string(purpose)], nil
}

func (f *fakeLookup) ActiveRefusal(_ context.Context, number string, _ time.Time) (*controller.Refusal, error) {
	if err := f.called("ActiveRefusal"); err != nil {
		return nil, err
	}
	return f.refusals[number], nil
}

func (f *fakeLookup) DNCHits(_ context.Context, _, number string) ([]controller.DNCHit, error) {
	if err := f.called("DNCHits"); err != nil {
		return nil, err
	}
	return f.hits[number], nil
}

func (f *fakeLookup) DNCLists(context.Context, string) ([]controller.DNCList, error) {
	if err := f.called("DNCLists"); err != nil {
		return nil, err
	}
	return f.lists, nil
}

func (f *fakeLookup) CountAttempts(_ context.Context, number string, since time.Time) (int, error) {
	if err := f.called("CountAttempts"); err != nil {
		return 0, err
	}
	f.mu.Lock()
	f.sinces = append(f.sinces, since)
	f.mu.Unlock()
	n := 0
	for _, at := range f.attempts[number] {
		if !at.Before(since) {
			n++
		}
	}
	return n, nil
}

func (f *fakeLookup) CallerIDOwned(_ context.Context, tenant, number string) (bool, error) {
	if err := f.called("CallerIDOwned"); err != nil {
		return false, err
	}
	return f.owned[tenant+"|"+number], nil
}

// Numbers used across the tests; each was checked against libphonenumber
// (see TestParseNumber for the zones and regions they map to).
const (
	nyNumber      = "+12125551234"  // New York: America/New_York
	phoenixNumber = "+16024561234"  // Phoenix: America/Phoenix (no DST)
	denverNumber  = "+13032345678"  // Denver: America/Denver
	miamiNumber   = "+13057891234"  // Miami: America/New_York, US-FL
	panhandleNum  = "+18502291234"  // Port St. Joe, FL: America/Chicago, US-FL
	nevadaNumber  = "+17752345678"  // Nevada 775: America/Boise AND America/Los_Angeles
	orlando689    = "+16892345678"  // Orlando overlay: libphonenumber says Chicago; corrected
	satellite     = "+881612345678" // Iridium: valid, zone Etc/Unknown
	cn170Number   = "+8617012345678"
	cnNumber      = "+8613812345678"
	ukNumber      = "+442079460000"
	tenant        = "t1"
	ownedFrom     = "+12025550100"
)

// anyTime is a policy that allows everything the tests do not switch on.
func anyTime() compliance.Policy {
	return compliance.Policy{
		ID: "test", Version: 3, RefusalLockDays: 90,
		Hours: []compliance.HoursWindow{{
			Days: []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}, Start: "00:00", End: "24:00",
		}},
	}
}

func everyDay(start, end string) []compliance.HoursWindow {
	return []compliance.HoursWindow{{Days: []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}, Start: start, End: end}}
}

// newGate returns a gate with a fixed clock and policy.
func newGate(t *testing.T, p compliance.Policy, now time.Time, opts ...compliance.Option) *compliance.Gate {
	t.Helper()
	g, err := compliance.New(compliance.StaticPolicy(p), append([]compliance.Option{
		compliance.WithNow(func() time.Time { return now }),
	}, opts...)...)
	require.NoError(t, err)
	return g
}

// input returns a rule input for number under p at now.
func input(t *testing.T, number string, p compliance.Policy, l controller.Lookup, now time.Time) *compliance.Input {
	t.Helper()
	n, err := compliance.ParseNumber(number, "")
	require.NoError(t, err)
	return &compliance.Input{
		Req:    controller.CheckRequest{TenantID: tenant, To: number, From: ownedFrom, Purpose: controller.PurposeMarketing},
		Number: n, Policy: p, Lookup: l, Now: now,
	}
}

func utc(y int, mo time.Month, d, h, mi, s int) time.Time {
	return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
}

func ptr[T any](v T) *T { return &v }
