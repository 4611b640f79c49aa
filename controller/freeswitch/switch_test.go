package freeswitch

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/stretchr/testify/require"
)

// evKey is the part of a delivered event the scenario tables pin.
type evKey struct {
	Kind controller.EventKind
	Seq  uint64
}

func keysOf(evs []controller.ChannelEvent) []evKey {
	out := make([]evKey, len(evs))
	for i, e := range evs {
		out[i] = evKey{e.Kind, e.Sequence}
	}
	return out
}

const (
	kCreate   = controller.EventCreate
	kProgress = controller.EventProgress
	kAnswer   = controller.EventAnswer
	kHangup   = controller.EventHangup
	kComplete = controller.EventHangupComplete
	kDestroy  = controller.EventDestroy
	kAccepted = controller.EventOriginateAccepted
	kFailed   = controller.EventOriginateFailed
)

type scenario struct {
	fixture string
	calls   []controller.OriginateRequest
	want    []evKey
	check   func(t *testing.T, got []controller.ChannelEvent)
}

func req(id, to string, timeout time.Duration) controller.OriginateRequest {
	return controller.OriginateRequest{CallID: controller.CallID(id), To: to, CallerIDNumber: "4000", Timeout: timeout}
}

func byKind(t *testing.T, evs []controller.ChannelEvent, k controller.EventKind) controller.ChannelEvent {
	t.Helper()
	for _, e := range evs {
		if e.Kind == k {
			return e
		}
	}
	t.Fatalf("no %s event", k)
	return controller.ChannelEvent{}
}

var scenarios = []scenario{
	{
		fixture: "05-busy",
		calls:   []controller.OriginateRequest{req("e102a1a5-891d-435e-b5ce-eef820d35ed0", "1003", 5*time.Second)},
		// Only the -a leg; the failure arrives between HANGUP_COMPLETE and
		// the -a leg's DESTROY.
		want: []evKey{{kCreate, 1564}, {kHangup, 1579}, {kComplete, 1585}, {kFailed, 1588}, {kDestroy, 1589}},
		check: func(t *testing.T, got []controller.ChannelEvent) {
			c := byKind(t, got, kComplete)
			require.Equal(t, "USER_BUSY", c.HangupCause)
			require.False(t, c.Answered)
			f := byKind(t, got, kFailed)
			require.Equal(t, "USER_BUSY", f.HangupCause)
			require.Equal(t, "-ERR USER_BUSY", f.Detail)
			require.Equal(t, "BACKGROUND_JOB", f.Name)
		},
	},
	{
		fixture: "03-answer-consent-press1-record",
		calls:   []controller.OriginateRequest{req("50b976a2-5e58-4f1a-bbe1-07766e35f9f6", "1001", 5*time.Second)},
		want: []evKey{{kCreate, 1316}, {kAnswer, 1327}, {kAccepted, 1334}, {EventDTMF, 1345}, {EventExecuteComplete, 1346},
			{controller.EventRecordStart, 1349}, {controller.EventRecordStop, 1356}, {kHangup, 1359}, {EventExecuteComplete, 1361},
			{kComplete, 1366}, {kDestroy, 1371}},
		check: func(t *testing.T, got []controller.ChannelEvent) {
			c := byKind(t, got, kComplete)
			require.Equal(t, 4, c.Billsec)
			require.Equal(t, 4, c.Duration)
			require.Equal(t, "NORMAL_CLEARING", c.HangupCause)
			require.True(t, c.Answered)
			require.Equal(t, time.UnixMicro(1795248924423787).UTC(), c.AnsweredAt)
			require.Equal(t, "1", byKind(t, got, EventDTMF).Detail)
			require.Equal(t, "play_and_get_digits", byKind(t, got, EventExecuteComplete).Detail)
		},
	},
	{
		fixture: "06-no-answer",
		calls:   []controller.OriginateRequest{req("f1ed1235-8b36-4d12-8b4d-1c469e4f2e52", "1004", 2*time.Second)},
		// The job fails before HANGUP_COMPLETE: the call stays tracked until
		// its DESTROY so the CDR facts are not lost.
		want: []evKey{{kCreate, 1599}, {kProgress, 1610}, {kHangup, 1615}, {kFailed, 1616}, {kComplete, 1621}, {kDestroy, 1629}},
		check: func(t *testing.T, got []controller.ChannelEvent) {
			require.Equal(t, "NO_ANSWER", byKind(t, got, kFailed).HangupCause)
			require.Equal(t, 2, byKind(t, got, kComplete).Duration)
		},
	},
	{
		fixture: "10-peer-hangs-up-after-2s",
		calls:   []controller.OriginateRequest{req("f6c26db1-bd91-412d-87a2-2803f3a9c470", "1006", 5*time.Second)},
		want: []evKey{{kCreate, 1742}, {kAnswer, 1753}, {kAccepted, 1760}, {kHangup, 1770}, {EventExecuteComplete, 1774},
			{kComplete, 1778}, {kDestroy, 1780}},
		check: func(t *testing.T, got []controller.ChannelEvent) {
			require.Equal(t, 2, byKind(t, got, kComplete).Billsec)
		},
	},
	{
		fixture: "16-max-sessions",
		calls: []controller.OriginateRequest{
			req("cd38ba46-2316-4fad-a545-c2662bd7d363", "1005", 5*time.Second),
			req("238746c3-08e8-44c4-ba49-c32dc77335b1", "1005", 5*time.Second),
		},
		want: []evKey{{kCreate, 2202}, {kAnswer, 2213}, {kAccepted, 2221}, {kFailed, 2226}, {kHangup, 2229},
			{EventExecuteComplete, 2237}, {kComplete, 2241}, {kDestroy, 2243}},
		check: func(t *testing.T, got []controller.ChannelEvent) {
			f := byKind(t, got, kFailed)
			require.Equal(t, controller.CallID("238746c3-08e8-44c4-ba49-c32dc77335b1"), f.CallID)
			require.Equal(t, "DESTINATION_OUT_OF_ORDER", f.HangupCause)
			require.Equal(t, "MANAGER_REQUEST", byKind(t, got, kComplete).HangupCause)
		},
	},
}

// TestFixtureScenarios replays real FreeSWITCH transcripts over TCP — the
// bgapi replies on the command connection, the recorded event frames byte
// for byte on the event connection, through the real reader — and pins the
// exact events the sink receives, in wire order. split writes the events in
// random pieces, so frames and bodies arrive cut anywhere.
func TestFixtureScenarios(t *testing.T) {
	t.Parallel()
	for _, sc := range scenarios {
		for _, split := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/split=%v", sc.fixture, split), func(t *testing.T) {
				t.Parallel()
				var rng *rand.Rand
				if split {
					rng = rand.New(rand.NewPCG(7, uint64(len(sc.fixture))))
				}
				h := setup(t, newFakeESL(t, replay(t, sc.fixture, rng)), nil)
				sess := waitFor(t, h.srv.cmds)
				for _, r := range sc.calls {
					require.NoError(t, h.sw.Originate(context.Background(), r))
				}
				h.waitQueued(t, len(sc.want))
				h.sw.Stop()
				got := h.sink.rest()
				require.Equal(t, sc.want, keysOf(got))
				ours := map[controller.CallID]bool{}
				for _, r := range sc.calls {
					ours[r.CallID] = true
				}
				for _, e := range got {
					require.True(t, ours[e.CallID], "event for a channel callgate did not originate: %+v", e)
					require.Equal(t, "fs1", e.Switch)
					require.False(t, e.At.IsZero())
				}
				sc.check(t, got)
				st := h.sw.Stats()
				require.Positive(t, st.EventsForeign, "the -b leg's events are dropped and counted")
				require.Zero(t, st.InFlight, "every call was forgotten after its DESTROY or refused job")
				require.Equal(t, uint64(len(sc.want)), st.EventsDelivered)

				if sc.fixture != "06-no-answer" { // 06 sent originate_timeout twice
					var sent []string
					for cmd := range drain(sess.commands) {
						if strings.HasPrefix(cmd, "bgapi originate ") {
							sent = append(sent, cmd)
						}
					}
					require.Equal(t, sentOriginates(t, sc.fixture), sent, "same bytes as sent to the real FreeSWITCH")
				}
			})
		}
	}
}

func drain[T any](ch chan T) func(func(T) bool) {
	return func(yield func(T) bool) {
		for {
			select {
			case v := <-ch:
				if !yield(v) {
					return
				}
			default:
				return
			}
		}
	}
}

// TestLiveDelivery runs 05-busy and reads the events as they are delivered,
// not after Stop.
func TestLiveDelivery(t *testing.T) {
	t.Parallel()
	sc := scenarios[0]
	h := setup(t, newFakeESL(t, replay(t, sc.fixture, nil)), nil)
	require.NoError(t, h.sw.Originate(context.Background(), sc.calls[0]))
	got := h.sink.until(t, func(e controller.ChannelEvent) bool { return e.Kind == kDestroy })
	require.Equal(t, sc.want, keysOf(got))
	h.sw.Stop()
	require.Empty(t, h.sink.rest())
}

func TestStatusAndChannels(t *testing.T) {
	t.Parallel()
	live := apiBody(t, "12-show-channels-live", 0)
	var calls int
	var mu sync.Mutex
	h := setup(t, newFakeESL(t, func(s *fakeSession, cmd string) bool {
		if cmd != "api show channels as json" {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			s.api(live)
		} else {
			s.api("{\"row_count\": 0}\n")
		}
		return true
	}), func(c *Config) { c.MaxSessions, c.MaxCPS = 20, 5 })

	st := h.sw.Status()
	require.True(t, st.Connected)
	require.Equal(t, "fs1", st.Name)
	require.Equal(t, "freeswitch", st.Kind)
	require.Equal(t, 0, st.Sessions)
	require.Equal(t, 1000, st.SwitchMax)
	require.Equal(t, 20, st.MaxSessions)
	require.Equal(t, 5, st.MaxCPS)
	require.False(t, st.ConnectedAt.IsZero())
	require.Zero(t, st.Reconnects)

	const tracked = "07a95001-5aa2-43b0-abf1-15a3fc40d558"
	h.sw.Track(tracked)
	chans, err := h.sw.Channels(context.Background())
	require.NoError(t, err)
	require.Equal(t, []controller.Channel{
		{UUID: tracked, Name: "loopback/1005-a", State: "CS_EXECUTE", CallState: "ACTIVE", Answered: true},
		{UUID: "0f329f9f-55c7-4b79-ae0c-77af0b450205", Name: "loopback/1005-b", State: "CS_EXECUTE", CallState: "ACTIVE", Answered: true},
	}, chans)

	for i := range 2 {
		chans, err = h.sw.Channels(context.Background())
		require.NoError(t, err)
		require.Empty(t, chans)
		require.Equal(t, 1-i, h.sw.Stats().InFlight, "forgotten after two listings without it")
	}
}

func TestHangup(t *testing.T) {
	t.Parallel()
	const gone = "00000000-0000-0000-0000-000000000000"
	h := setup(t, newFakeESL(t, func(s *fakeSession, cmd string) bool {
		switch cmd {
		case "api uuid_kill " + testUUID + " NORMAL_CLEARING", "api uuid_kill " + testUUID + " USER_BUSY":
			s.api("+OK\n")
		case "api uuid_kill " + gone + " NORMAL_CLEARING":
			s.api("-ERR No such channel!\n")
		default:
			return false
		}
		return true
	}), nil)
	ctx := context.Background()
	require.NoError(t, h.sw.Hangup(ctx, testUUID, ""))
	require.NoError(t, h.sw.Hangup(ctx, testUUID, "USER_BUSY"))
	err := h.sw.Hangup(ctx, gone, "NORMAL_CLEARING")
	require.Equal(t, controller.ENOTFOUND, controller.ErrorCode(err))
	require.Equal(t, "cause", controller.ErrorField(h.sw.Hangup(ctx, testUUID, "NORMAL_CLEARING extra")))
	require.Equal(t, "call_id", controller.ErrorField(h.sw.Hangup(ctx, "x NORMAL_CLEARING\napi hupall", "")))
}

// TestConcurrentCommandsGetOwnReplies: eslgo hands the next reply to
// whichever caller is waiting; the per-connection mutex keeps replies with
// their commands.
func TestConcurrentCommandsGetOwnReplies(t *testing.T) {
	t.Parallel()
	h := setup(t, newFakeESL(t, func(s *fakeSession, cmd string) bool {
		id, ok := strings.CutPrefix(cmd, "api uuid_kill ")
		if !ok {
			return false
		}
		if strings.HasPrefix(id, "0") {
			s.api("+OK\n")
		} else {
			s.api("-ERR No such channel!\n")
		}
		return true
	}), nil)
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			id := controller.CallID(fmt.Sprintf("%d%07d-0000-4000-8000-000000000000", i%2, i))
			err := h.sw.Hangup(context.Background(), id, "")
			if i%2 == 0 {
				require.NoError(t, err, id)
			} else {
				require.Equal(t, controller.ENOTFOUND, controller.ErrorCode(err), id)
			}
		})
	}
	wg.Wait()
}

func TestReconnectAfterServerCloses(t *testing.T) {
	t.Parallel()
	status := apiBody(t, "01-auth-ok-api", 0)
	h := setup(t, newFakeESL(t, func(s *fakeSession, cmd string) bool {
		if s.n == 1 && cmd == "api status" {
			s.api(status)
			s.c.Close() // FreeSWITCH goes away right after we connected
			return true
		}
		return false
	}), nil)
	firstEvents := waitFor(t, h.srv.evs)
	require.Equal(t, "fs1", waitFor(t, h.sink.connected), "SwitchConnected again after the reconnect")
	waitFor(t, firstEvents.gone) // the event connection went with the command connection
	st := h.sw.Status()
	require.True(t, st.Connected)
	require.Equal(t, 1, st.Reconnects)
}

func TestHeartbeatFailureReconnects(t *testing.T) {
	t.Parallel()
	status := apiBody(t, "01-auth-ok-api", 0)
	var mu sync.Mutex
	answered := map[int]int{}
	h := setup(t, newFakeESL(t, func(s *fakeSession, cmd string) bool {
		if cmd != "api status" {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		answered[s.n]++
		if s.n == 1 && answered[s.n] > 1 {
			return true // a wedged switch: the connection is up, nothing answers
		}
		s.api(status)
		return true
	}), func(c *Config) { c.HeartbeatInterval, c.CommandTimeout = 20*time.Millisecond, 300*time.Millisecond })
	first := waitFor(t, h.srv.cmds)
	firstEvents := waitFor(t, h.srv.evs)
	require.Equal(t, "fs1", waitFor(t, h.sink.connected))
	waitFor(t, first.gone)       // callgate closed the wedged connection
	waitFor(t, firstEvents.gone) // and its event connection
	require.Equal(t, 1, h.sw.Status().Reconnects)
}

// TestTimedOutCommandPoisonsConnection: a command that times out leaves its
// reply in flight; the connection is closed so the next command cannot read
// it as its own.
func TestTimedOutCommandPoisonsConnection(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	stale := map[int]bool{}
	h := setup(t, newFakeESL(t, func(s *fakeSession, cmd string) bool {
		mu.Lock()
		defer mu.Unlock()
		if stale[s.n] {
			s.api("+OK\n") // the late reply to the timed-out uuid_kill
			stale[s.n] = false
		}
		if !strings.HasPrefix(cmd, "api uuid_kill ") {
			return false
		}
		if s.n == 1 {
			stale[s.n] = true // answer late: only before the next command
			return true
		}
		s.api("-ERR No such channel!\n")
		return true
	}), func(c *Config) { c.CommandTimeout = 300 * time.Millisecond })
	first := waitFor(t, h.srv.cmds)

	err := h.sw.Hangup(context.Background(), testUUID, "")
	require.ErrorIs(t, err, ErrNoReply)
	require.NotErrorIs(t, err, controller.ErrNotSent)
	waitFor(t, first.gone)
	require.Equal(t, "fs1", waitFor(t, h.sink.connected))

	err = h.sw.Hangup(context.Background(), testUUID, "")
	require.Equal(t, controller.ENOTFOUND, controller.ErrorCode(err), "the stale +OK must not answer this command")
}

func TestOriginateOutcomes(t *testing.T) {
	t.Parallel()
	const silent = "5ad3a9f1-0000-4000-8000-000000000001"
	var mu sync.Mutex
	jobs := 0
	h := setup(t, newFakeESL(t, func(s *fakeSession, cmd string) bool {
		if !strings.HasPrefix(cmd, "bgapi originate ") {
			return false
		}
		if strings.Contains(cmd, silent) && s.n == 1 {
			return true // written, never acknowledged
		}
		mu.Lock()
		jobs++
		job := fmt.Sprintf("a6d17d55-e84c-49c7-942b-%012d", jobs)
		mu.Unlock()
		s.write([]byte("Content-Type: command/reply\nReply-Text: +OK Job-UUID: " + job + "\nJob-UUID: " + job + "\n\n"))
		return true
	}), func(c *Config) {
		c.MaxSessions, c.CommandTimeout = 2, 300*time.Millisecond
		c.DialTemplate, c.Trunk = "sofia/gateway/{trunk}/{number}", "carrier1"
	})
	ctx := context.Background()
	call := func(id string) controller.OriginateRequest {
		return controller.OriginateRequest{CallID: controller.CallID(id), To: "+15551234567", CallerIDNumber: "+8610012345678"}
	}

	require.NoError(t, h.sw.Originate(ctx, call(testUUID)))
	err := h.sw.Originate(ctx, call(testUUID))
	require.Equal(t, controller.ECONFLICT, controller.ErrorCode(err), "never originate the same call twice")

	err = h.sw.Originate(ctx, call(silent))
	require.ErrorIs(t, err, ErrNoReply)
	require.NotErrorIs(t, err, controller.ErrNotSent, "ambiguous: must never be retried")
	require.Equal(t, 2, h.sw.Stats().InFlight, "its events may still come")
	require.Equal(t, "fs1", waitFor(t, h.sink.connected), "the poisoned connection was replaced")

	err = h.sw.Originate(ctx, call("5ad3a9f1-0000-4000-8000-000000000002"))
	require.ErrorIs(t, err, controller.ErrNotSent)
	require.ErrorIs(t, err, ErrAtCapacity)

	err = h.sw.Originate(ctx, controller.OriginateRequest{CallID: "5ad3a9f1-0000-4000-8000-000000000003", To: "1555;x"})
	require.Equal(t, "to", controller.ErrorField(err))

	logs := h.logs.String()
	require.NotContains(t, logs, "15551234567", "a full phone number was logged")
	require.NotContains(t, logs, "8610012345678", "a full phone number was logged")
	require.Contains(t, logs, "****4567")
	require.Contains(t, logs, "call_id="+testUUID)
}

func TestOriginateNotConnected(t *testing.T) {
	t.Parallel()
	sw, err := New(Config{Name: "fs1", Address: "127.0.0.1:1", Password: "ClueCon", DialTemplate: "loopback/{number}/cgcap"}, newRecSink())
	require.NoError(t, err)
	err = sw.Originate(context.Background(), req(testUUID, "1003", 0))
	require.ErrorIs(t, err, controller.ErrNotSent)
	require.ErrorIs(t, err, ErrNotConnected)
	require.Zero(t, sw.Stats().InFlight)
	_, err = sw.Channels(context.Background())
	require.Equal(t, controller.EUNAVAILABLE, controller.ErrorCode(err))
	require.False(t, sw.Status().Connected)
	sw.Stop() // never started: a no-op
}

func TestAuthFailure(t *testing.T) {
	t.Parallel()
	const secret = "wrong-secret-pw"
	h := setup(t, newFakeESL(t, nil), func(c *Config) { c.Password, c.CommandTimeout = secret, 300*time.Millisecond })
	waitFor(t, h.srv.sessions)
	waitFor(t, h.srv.sessions) // it retried
	h.sw.Stop()
	st := h.sw.Status()
	require.False(t, st.Connected)
	require.NotEmpty(t, st.LastError)
	require.NotContains(t, st.LastError, secret)
	require.NotContains(t, h.logs.String(), secret)
	require.Empty(t, h.sink.connected)
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	_, err := New(Config{Name: "fs1", Address: "127.0.0.1:8021", Password: "x", DialTemplate: "loopback/1000"}, newRecSink())
	require.Equal(t, "DialTemplate", controller.ErrorField(err))
	_, err = New(Config{Name: "fs1", Address: "127.0.0.1:8021", Password: "x", DialTemplate: "loopback/{number}"}, nil)
	require.Equal(t, "sink", controller.ErrorField(err))
}

func TestScrub(t *testing.T) {
	t.Parallel()
	require.Equal(t, "auth **** to ****4567 at 1234 and ****0000",
		scrub("auth ClueCon to +15551234567 at 1234 and 1795248924420000", "ClueCon"))
	require.Equal(t, "dial tcp 127.0.0.1:18021: ****", scrubSecret("dial tcp 127.0.0.1:18021: ClueCon", "ClueCon"))
}
