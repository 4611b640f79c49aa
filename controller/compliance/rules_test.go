package compliance_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
	"github.com/stretchr/testify/require"
)

func TestConsentRule(t *testing.T) {
	t.Parallel()
	now := utc(2026, 6, 10, 15, 0, 0)
	p := anyTime()
	p.ConsentRequired = []controller.Purpose{controller.PurposeMarketing}
	consent := func(mod func(c *controller.Consent)) *controller.Consent {
		c := &controller.Consent{ID: "c1", TenantID: tenant, Number: nyNumber, Purpose: controller.PurposeMarketing,
			Source: "ivr", GivenAt: now.AddDate(0, -1, 0)}
		if mod != nil {
			mod(c)
		}
		return c
	}
	tests := []struct {
		name     string
		purpose  controller.Purpose
		consent  *controller.Consent
		reason   string
		evidence []string
	}{
		{"valid, no expiry", controller.PurposeMarketing, consent(nil), "", []string{"c1"}},
		{"valid, expires in one second", controller.PurposeMarketing, consent(func(c *controller.Consent) { c.ExpiresAt = ptr(now.Add(time.Second)) }), "", []string{"c1"}},
		{"expired one second ago", controller.PurposeMarketing, consent(func(c *controller.Consent) { c.ExpiresAt = ptr(now.Add(-time.Second)) }), controller.ReasonConsentExpired, []string{"c1"}},
		{"expires exactly now", controller.PurposeMarketing, consent(func(c *controller.Consent) { c.ExpiresAt = ptr(now) }), controller.ReasonConsentExpired, []string{"c1"}},
		{"revoked", controller.PurposeMarketing, consent(func(c *controller.Consent) { c.RevokedAt = ptr(now.Add(-time.Hour)) }), controller.ReasonConsentRevoked, []string{"c1"}},
		{"revoked and expired: revoked", controller.PurposeMarketing, consent(func(c *controller.Consent) {
			c.RevokedAt, c.ExpiresAt = ptr(now.Add(-time.Hour)), ptr(now.Add(-time.Minute))
		}), controller.ReasonConsentRevoked, []string{"c1"}},
		{"given in the future", controller.PurposeMarketing, consent(func(c *controller.Consent) { c.GivenAt = now.Add(time.Minute) }), controller.ReasonConsentMissing, []string{"c1"}},
		{"missing", controller.PurposeMarketing, nil, controller.ReasonConsentMissing, nil},
		{"not required for service", controller.PurposeService, nil, "", nil},
		{"no purpose while consent is required", "", nil, controller.ReasonConsentMissing, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake()
			if tt.consent != nil {
				f.consents[nyNumber+"|"+string(tt.consent.Purpose)] = tt.consent
			}
			in := input(t, nyNumber, p, f, now)
			in.Req.Purpose = tt.purpose
			v, err := compliance.ConsentRule{}.Check(context.Background(), in)
			require.NoError(t, err)
			require.Equal(t, tt.reason, v.Reason, v.Detail)
			require.Equal(t, tt.reason == "", v.Allow)
			require.Equal(t, tt.evidence, v.Evidence)
		})
	}
	t.Run("lookup fails", func(t *testing.T) {
		t.Parallel()
		f := newFake()
		f.errs["ActiveConsent"] = errors.New("db down")
		_, err := compliance.ConsentRule{}.Check(context.Background(), input(t, nyNumber, p, f, now))
		require.Error(t, err)
	})
}

func TestRefusalRule(t *testing.T) {
	t.Parallel()
	now := utc(2026, 6, 10, 15, 0, 0)
	tests := []struct {
		name    string
		refusal *controller.Refusal
		reason  string
	}{
		{"none", nil, ""},
		{"locked for 90 days", &controller.Refusal{ID: "r1", At: now.AddDate(0, 0, -1), Until: ptr(now.AddDate(0, 0, 89))}, controller.ReasonRefused},
		{"locked forever", &controller.Refusal{ID: "r1", At: now.AddDate(-3, 0, 0)}, controller.ReasonRefused},
		{"lock ended (store returned history)", &controller.Refusal{ID: "r1", At: now.AddDate(0, 0, -91), Until: ptr(now.Add(-time.Second))}, ""},
		{"lifted", &controller.Refusal{ID: "r1", At: now.AddDate(0, 0, -1), LiftedAt: ptr(now.Add(-time.Minute))}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake()
			if tt.refusal != nil {
				f.refusals[nyNumber] = tt.refusal
			}
			v, err := compliance.RefusalRule{}.Check(context.Background(), input(t, nyNumber, anyTime(), f, now))
			require.NoError(t, err)
			require.Equal(t, tt.reason, v.Reason)
			require.Equal(t, tt.reason == "", v.Allow)
			if tt.reason != "" {
				require.Equal(t, []string{"r1"}, v.Evidence)
			}
		})
	}
}

func TestRefusalUntil(t *testing.T) {
	t.Parallel()
	at := utc(2026, 6, 10, 15, 0, 0)
	p := anyTime()
	require.Equal(t, utc(2026, 9, 8, 15, 0, 0), *p.RefusalUntil(at))
	p.RefusalLockDays = compliance.RefusalForever
	require.Nil(t, p.RefusalUntil(at))
}

func TestDNCRules(t *testing.T) {
	t.Parallel()
	now := utc(2026, 6, 10, 15, 0, 0)
	national := func(id string, scrub time.Time) controller.DNCList {
		return controller.DNCList{ID: id, Kind: compliance.KindNational, LastScrubAt: scrub}
	}
	us, ok := compliance.Preset("us")
	require.True(t, ok)
	tests := []struct {
		name             string
		policy           compliance.Policy
		hits             []controller.DNCHit
		lists            []controller.DNCList
		internal, list   string
		scrub            string
		internalEvidence []string
		listEvidence     []string
		scrubEvidence    []string
	}{
		{name: "clean", policy: us, lists: []controller.DNCList{national("n1", now.AddDate(0, 0, -1))}},
		{name: "internal hit", policy: us, hits: []controller.DNCHit{{ListID: "i1", ListKind: "internal"}},
			lists: []controller.DNCList{national("n1", now.AddDate(0, 0, -1))}, internal: controller.ReasonDNCInternal, internalEvidence: []string{"i1"}},
		{name: "national and other hits", policy: us, hits: []controller.DNCHit{{ListID: "n1", ListKind: "national"}, {ListID: "o1", ListKind: "other"}},
			lists: []controller.DNCList{national("n1", now.AddDate(0, 0, -1))}, list: controller.ReasonDNCList, listEvidence: []string{"n1", "o1"}},
		{name: "unknown kind counts as a list", policy: anyTime(), hits: []controller.DNCHit{{ListID: "x1", ListKind: ""}},
			list: controller.ReasonDNCList, listEvidence: []string{"x1"}},
		{name: "all three", policy: us, hits: []controller.DNCHit{{ListID: "i1", ListKind: "internal"}, {ListID: "n1", ListKind: "national"}},
			lists:    []controller.DNCList{national("n1", now.AddDate(0, 0, -40))},
			internal: controller.ReasonDNCInternal, list: controller.ReasonDNCList, scrub: controller.ReasonDNCScrubStale,
			internalEvidence: []string{"i1"}, listEvidence: []string{"n1"}, scrubEvidence: []string{"n1"}},
		{name: "scrubbed exactly 31 days ago", policy: us, lists: []controller.DNCList{national("n1", now.AddDate(0, 0, -31))}},
		{name: "scrubbed 31 days and a second ago", policy: us, lists: []controller.DNCList{national("n1", now.AddDate(0, 0, -31).Add(-time.Second))},
			scrub: controller.ReasonDNCScrubStale, scrubEvidence: []string{"n1"}},
		{name: "never scrubbed", policy: us, lists: []controller.DNCList{national("n1", time.Time{})},
			scrub: controller.ReasonDNCScrubStale, scrubEvidence: []string{"n1"}},
		{name: "one of two national lists stale", policy: us, lists: []controller.DNCList{national("n1", now), national("n2", now.AddDate(0, -2, 0))},
			scrub: controller.ReasonDNCScrubStale, scrubEvidence: []string{"n2"}},
		{name: "no national list loaded", policy: us, lists: []controller.DNCList{{ID: "i1", Kind: "internal"}}, scrub: controller.ReasonDNCScrubStale},
		{name: "no requirement", policy: anyTime(), lists: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake()
			f.hits[nyNumber], f.lists = tt.hits, tt.lists
			in := input(t, nyNumber, tt.policy, f, now)
			for _, c := range []struct {
				rule     compliance.Rule
				reason   string
				evidence []string
			}{
				{compliance.DNCInternalRule{}, tt.internal, tt.internalEvidence},
				{compliance.DNCListRule{}, tt.list, tt.listEvidence},
				{compliance.DNCScrubRule{}, tt.scrub, tt.scrubEvidence},
			} {
				v, err := c.rule.Check(context.Background(), in)
				require.NoError(t, err)
				require.Equal(t, c.reason, v.Reason, "%s: %s", c.rule.Name(), v.Detail)
				require.Equal(t, c.reason == "", v.Allow)
				require.Equal(t, c.evidence, v.Evidence, c.rule.Name())
			}
			require.Equal(t, 1, f.count("DNCHits"), "hits are read once per check")
		})
	}
}

func TestCapRules(t *testing.T) {
	t.Parallel()
	us, ok := compliance.Preset("us")
	require.True(t, ok)
	capped := anyTime()
	capped.DailyCap = 15
	capped.Windows = []compliance.CapWindow{{Count: 3, Period: compliance.Duration(24 * time.Hour)}, {Count: 10, Period: compliance.Duration(7 * 24 * time.Hour)}}
	regional := anyTime()
	regional.DailyCap = 15
	regional.RegionCaps = map[string]compliance.RegionCap{"US": {DailyCap: 20}, "US-FL": {DailyCap: 5}}

	// times returns n attempt times spread over the hour before end.
	times := func(n int, end time.Time) []time.Time {
		out := make([]time.Time, n)
		for i := range out {
			out[i] = end.Add(-time.Duration(i+1) * time.Minute)
		}
		return out
	}
	now := utc(2026, 6, 10, 15, 0, 0) // 11:00 EDT
	tests := []struct {
		name      string
		number    string
		policy    compliance.Policy
		at        time.Time
		attempts  []time.Time
		daily     string
		window    string
		wantSince time.Time // the daily rule's since, when not zero
	}{
		{name: "14 today is under 15", number: nyNumber, policy: capped, at: now, attempts: times(14, now), window: controller.ReasonCapWindow},
		{name: "15 today reaches the cap", number: nyNumber, policy: capped, at: now,
			attempts: times(15, utc(2026, 6, 10, 5, 0, 0)), daily: controller.ReasonCapDaily, window: controller.ReasonCapWindow,
			wantSince: utc(2026, 6, 10, 4, 0, 0)},
		{name: "yesterday's attempts do not count", number: nyNumber, policy: capped, at: now,
			attempts: times(15, utc(2026, 6, 10, 3, 59, 0)), window: controller.ReasonCapWindow}, // but 3/24h does
		{name: "3 in 24h reaches the window", number: nyNumber, policy: capped, at: now, attempts: times(3, now), window: controller.ReasonCapWindow},
		{name: "3 just over 24h ago do not", number: nyNumber, policy: capped, at: now, attempts: times(3, now.Add(-24*time.Hour))},
		{name: "10 in a week reach the weekly window", number: nyNumber, policy: capped, at: now,
			attempts: []time.Time{now.AddDate(0, 0, -1).Add(-time.Minute), now.AddDate(0, 0, -2), now.AddDate(0, 0, -2), now.AddDate(0, 0, -3), now.AddDate(0, 0, -3),
				now.AddDate(0, 0, -4), now.AddDate(0, 0, -4), now.AddDate(0, 0, -5), now.AddDate(0, 0, -5), now.AddDate(0, 0, -6)},
			window: controller.ReasonCapWindow},
		// DST start: local midnight of 2026-03-08 in New York is 00:00 EST = 05:00 UTC.
		{name: "day starts at local midnight on the DST switch day", number: nyNumber, policy: capped, at: utc(2026, 3, 8, 15, 0, 0),
			wantSince: utc(2026, 3, 8, 5, 0, 0)},
		{name: "day starts at local midnight after DST end", number: nyNumber, policy: capped, at: utc(2026, 11, 1, 15, 0, 0),
			wantSince: utc(2026, 11, 1, 4, 0, 0)},
		// Nevada at 06:30 UTC: 23:30 PDT on the 9th, 00:30 MDT on the 10th.
		// The earliest start of "today" is Los Angeles' midnight of the 9th.
		{name: "several zones: earliest local midnight", number: nevadaNumber, policy: capped, at: utc(2026, 6, 10, 6, 30, 0),
			wantSince: utc(2026, 6, 9, 7, 0, 0)},
		{name: "unknown zone: last 24 hours", number: satellite, policy: capped, at: now, wantSince: now.Add(-24 * time.Hour)},
		// Florida under the US preset: 3 per 24 h; New York is not capped that way.
		{name: "Florida: 3 in 24h", number: miamiNumber, policy: us, at: now, attempts: times(3, now), window: controller.ReasonCapWindow},
		{name: "Florida: 2 in 24h", number: miamiNumber, policy: us, at: now, attempts: times(2, now)},
		{name: "New York under US preset: 3 in 24h is fine", number: nyNumber, policy: us, at: now, attempts: times(3, now)},
		{name: "regional daily caps: the smallest wins", number: miamiNumber, policy: regional, at: now, attempts: times(5, now), daily: controller.ReasonCapDaily},
		{name: "regional daily caps: New York keeps 15", number: nyNumber, policy: regional, at: now, attempts: times(5, now)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake()
			f.attempts[tt.number] = tt.attempts
			in := input(t, tt.number, tt.policy, f, tt.at)
			v, err := compliance.DailyCapRule{}.Check(context.Background(), in)
			require.NoError(t, err)
			require.Equal(t, tt.daily, v.Reason, v.Detail)
			require.Equal(t, tt.daily == "", v.Allow)
			if !tt.wantSince.IsZero() {
				require.NotEmpty(t, f.sinces)
				require.Equal(t, tt.wantSince, f.sinces[0].UTC(), "daily since")
			}
			v, err = compliance.WindowCapRule{}.Check(context.Background(), in)
			require.NoError(t, err)
			require.Equal(t, tt.window, v.Reason, v.Detail)
			require.Equal(t, tt.window == "", v.Allow)
		})
	}
	t.Run("count fails", func(t *testing.T) {
		t.Parallel()
		f := newFake()
		f.errs["CountAttempts"] = errors.New("db down")
		in := input(t, nyNumber, capped, f, now)
		_, err := compliance.DailyCapRule{}.Check(context.Background(), in)
		require.Error(t, err)
		_, err = compliance.WindowCapRule{}.Check(context.Background(), in)
		require.Error(t, err)
	})
	t.Run("no caps", func(t *testing.T) {
		t.Parallel()
		f := newFake()
		in := input(t, nyNumber, anyTime(), f, now)
		for _, r := range []compliance.Rule{compliance.DailyCapRule{}, compliance.WindowCapRule{}} {
			v, err := r.Check(context.Background(), in)
			require.NoError(t, err)
			require.True(t, v.Allow)
		}
		require.Zero(t, f.count("CountAttempts"))
	})
}
