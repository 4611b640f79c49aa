package dialer

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

func TestParseTarget(t *testing.T) {
	t.Parallel()
	tags := map[string]string{"region": "Nanshan", "size": "small", "industry": "food"}
	cases := []struct {
		expr  string
		match bool
	}{
		{`region = "Nanshan" and size = "small"`, true},
		{`region = Nanshan and size = large`, false},
		{`region = "Futian" or size = small`, true},
		{`(industry = retail or industry = food) and not region in ("North", "West")`, true},
		{`region in (Futian, "Nanshan")`, true},
		{`vip`, false},
		{`not vip`, true},
		{`size != large`, true},
		{`missing != x`, true},
		{`REGION = Nanshan`, false}, // keys are case-sensitive
		{`region = Nanshan AND size = small`, true},
		{`a = b or c = d and region = Nanshan`, false},
	}
	for _, tc := range cases {
		e, err := ParseTarget(tc.expr)
		require.NoError(t, err, tc.expr)
		require.Equal(t, tc.match, e.Match(tags), tc.expr)
	}
	e, err := ParseTarget("  ")
	require.NoError(t, err)
	require.Nil(t, e)
	require.True(t, e.Match(tags), "no target: every lead")

	for _, bad := range []string{`region =`, `= x`, `(region = x`, `region = x)`, `region in x`,
		`region in (x y)`, `and`, `region = "x`, `region ; drop`, "region = \"a\x01\"", `a = b c`,
		strings.Repeat("(", 40) + "a" + strings.Repeat(")", 40), strings.Repeat("a", 5000)} {
		_, err := ParseTarget(bad)
		require.Error(t, err, bad)
		require.Equal(t, controller.EINVALID, controller.ErrorCode(err), bad)
		require.Equal(t, "target", controller.ErrorField(err), bad)
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{`region = "Nanshan" and size = "small"`, `not (a in (b, "c")) or d`, `x != "\""`, `((`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseTarget(s)
		if err != nil {
			require.Equal(t, controller.EINVALID, controller.ErrorCode(err))
			return
		}
		e.Match(map[string]string{"a": "b"}) // never panics
	})
}

func TestClassifyCall(t *testing.T) {
	t.Parallel()
	ans := time.Now()
	cases := []struct {
		call    controller.Call
		reasons []string
		want    controller.Outcome
	}{
		{controller.Call{State: controller.CallCompleted, AnsweredAt: &ans, HangupCause: "NORMAL_CLEARING"}, nil, controller.OutcomeAnswered},
		{controller.Call{State: controller.CallCompleted, AnsweredAt: &ans, Disposition: "refused"}, nil, controller.OutcomeRefused},
		{controller.Call{State: controller.CallCompleted, AnsweredAt: &ans, Disposition: "machine"}, nil, controller.OutcomeMachine},
		{controller.Call{State: controller.CallFailed, HangupCause: "USER_BUSY", SIPStatus: 486}, nil, controller.OutcomeBusy},
		{controller.Call{State: controller.CallFailed, HangupCause: "NO_ANSWER"}, nil, controller.OutcomeNoAnswer},
		{controller.Call{State: controller.CallFailed, HangupCause: "CALL_REJECTED", SIPStatus: 603}, nil, controller.OutcomeDeclined},
		{controller.Call{State: controller.CallFailed, HangupCause: "CALL_REJECTED", SIPStatus: 403}, nil, controller.OutcomeRejected},
		{controller.Call{State: controller.CallFailed, HangupCause: "UNALLOCATED_NUMBER"}, nil, controller.OutcomeInvalidNumber},
		{controller.Call{State: controller.CallFailed, HangupCause: "NORMAL_TEMPORARY_FAILURE"}, nil, controller.OutcomeFailed},
		{controller.Call{State: controller.CallBlocked}, []string{"outside_hours"}, controller.OutcomeHeld},
		{controller.Call{State: controller.CallBlocked}, []string{"cap_daily", "refused"}, controller.OutcomeRefused},
		{controller.Call{State: controller.CallBlocked}, []string{"dnc_list"}, controller.OutcomeBlocked},
		{controller.Call{State: controller.CallCanceled}, nil, controller.OutcomeCanceled},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, ClassifyCall(tc.call, tc.reasons), "%+v %v", tc.call, tc.reasons)
	}
}

func TestNextStep(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	c := controller.Campaign{MaxAttempts: 4, Retry: map[controller.Outcome]controller.RetryRule{
		controller.OutcomeBusy:     {DelaySeconds: 600, Max: 2},
		controller.OutcomeNoAnswer: {DelaySeconds: 3600, Max: 5},
	}}
	require.Equal(t, LeadStep{NextAt: now.Add(10 * time.Minute)}, NextStep(c, controller.OutcomeBusy, 1, 1, now))
	require.Equal(t, LeadStep{NextAt: now.Add(10 * time.Minute)}, NextStep(c, controller.OutcomeBusy, 2, 2, now))
	require.True(t, NextStep(c, controller.OutcomeBusy, 3, 3, now).Done, "two retries after busy, then done")
	require.True(t, NextStep(c, controller.OutcomeNoAnswer, 4, 2, now).Done, "max_attempts over all outcomes")
	require.True(t, NextStep(c, controller.OutcomeFailed, 1, 1, now).Done, "no rule: no retry")
	require.True(t, NextStep(c, controller.OutcomeAnswered, 1, 1, now).Done)
	for _, o := range []controller.Outcome{controller.OutcomeRefused, controller.OutcomeDeclined,
		controller.OutcomeBlocked, controller.OutcomeInvalidNumber} {
		c.Retry[o] = controller.RetryRule{DelaySeconds: 1, Max: 99} // even if someone stored one
		require.True(t, NextStep(c, o, 1, 1, now).Done, o)
	}
	require.Equal(t, LeadStep{NextAt: now.Add(heldDelay)}, NextStep(c, controller.OutcomeHeld, 9, 9, now),
		"a held lead waits, whatever its attempts")
}

func TestScheduleWindow(t *testing.T) {
	t.Parallel()
	w, err := parseSchedule(controller.Schedule{Start: "0 9 * * 1-5", Stop: "0 17 * * 1-5", TimeZone: "Asia/Shanghai"})
	require.NoError(t, err)
	sh, _ := time.LoadLocation("Asia/Shanghai")
	at := func(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, sh) }
	open, next := w.open(at(23, 10, 0)) // a Monday
	require.True(t, open)
	require.Equal(t, at(23, 17, 0), next.In(sh))
	open, next = w.open(at(23, 8, 59))
	require.False(t, open)
	require.Equal(t, at(23, 9, 0), next.In(sh))
	open, _ = w.open(at(23, 9, 0))
	require.True(t, open, "open from the start minute")
	open, _ = w.open(at(23, 17, 0))
	require.False(t, open, "closed from the stop minute")
	open, next = w.open(at(21, 12, 0)) // Saturday
	require.False(t, open)
	require.Equal(t, at(23, 9, 0), next.In(sh))
	open, _ = w.open(at(23, 10, 0).UTC())
	require.True(t, open, "the zone is the schedule's, not the caller's")

	always, err := parseSchedule(controller.Schedule{})
	require.NoError(t, err)
	open, _ = always.open(time.Now())
	require.True(t, open)
	for _, bad := range []controller.Schedule{{Start: "0 9 * * *"}, {Start: "bad", Stop: "0 9 * * *"},
		{Start: "0 9 * * *", Stop: "0 9 * * * *"}, {TimeZone: "Mars/Base"}, {TimeZone: "Local"}} {
		_, err := parseSchedule(bad)
		require.Equal(t, controller.EINVALID, controller.ErrorCode(err), "%+v", bad)
	}
}

func readLeads(t *testing.T, csv string) ([]controller.Lead, []controller.LeadReject) {
	t.Helper()
	lr, err := NewLeadReader(strings.NewReader(csv), "US", []string{"region"})
	require.NoError(t, err)
	var (
		leads   []controller.Lead
		rejects []controller.LeadReject
	)
	for {
		l, rej, err := lr.Next()
		if err == io.EOF {
			return leads, rejects
		}
		require.NoError(t, err)
		if rej != nil {
			rejects = append(rejects, *rej)
		} else {
			leads = append(leads, l)
		}
	}
}

func TestLeadReader(t *testing.T) {
	t.Parallel()
	leads, rejects := readLeads(t, "\ufeffPhone,Name,region,tag:size,tz,account\n"+
		"(212) 555-0101,Ann,Nanshan,small,Asia/Shanghai,A1\n"+
		"+44 20 7946 0958,Bob,,large,,\n"+
		"not a number,Cat,x,y,,\n"+
		"+12125550102,Dan,x,y,Mars/Base,\n"+
		"+12125550103,Eve\n"+
		"\"+1 212 555 0104\",\"Fay, Jr.\",\"North\",,,\n")
	require.Equal(t, []controller.Lead{
		{Phone: "+12125550101", Name: "Ann", TimeZone: "Asia/Shanghai",
			Tags: map[string]string{"region": "Nanshan", "size": "small"}, Fields: map[string]string{"account": "A1"}},
		{Phone: "+442079460958", Name: "Bob", Tags: map[string]string{"size": "large"}},
		{Phone: "+12125550104", Name: "Fay, Jr.", Tags: map[string]string{"region": "North"}},
	}, leads)
	require.Len(t, rejects, 3)
	require.Equal(t, 4, rejects[0].Line)
	require.Contains(t, rejects[0].Reason, "phone")
	require.Contains(t, rejects[1].Reason, "time_zone")
	require.Contains(t, rejects[2].Reason, "fields")
	for _, r := range rejects {
		require.NotContains(t, r.Reason, "2125550102", "never the full number")
	}

	for _, bad := range []string{"", "name\nAnn\n", "phone,phone\n", "phone,tag:\n", "phone,\"a b\"\n"} {
		_, err := NewLeadReader(strings.NewReader(bad), "", nil)
		require.Equal(t, controller.EINVALID, controller.ErrorCode(err), "%q", bad)
	}
	_, err := NewLeadReader(strings.NewReader("phone\n"), "ZZ", nil)
	require.Equal(t, "default_region", controller.ErrorField(err))
}

func FuzzLeadCSV(f *testing.F) {
	f.Add("phone,name,tag:region\n+12125550101,Ann,north\n2125550102,\"B\"\"ob\",\n")
	f.Add("number,tz\n+442079460958,Europe/London\nx,y\n")
	f.Add("phone\n\"unterminated\n")
	f.Fuzz(func(t *testing.T, s string) {
		lr, err := NewLeadReader(strings.NewReader(s), "US", []string{"region"})
		if err != nil {
			require.Equal(t, controller.EINVALID, controller.ErrorCode(err))
			return
		}
		for range 10_000 {
			l, rej, err := lr.Next()
			if err != nil {
				if err != io.EOF {
					require.Equal(t, controller.EINVALID, controller.ErrorCode(err))
				}
				return
			}
			if rej == nil {
				require.True(t, strings.HasPrefix(l.Phone, "+"), "a lead's number is E.164")
			}
		}
	})
}
