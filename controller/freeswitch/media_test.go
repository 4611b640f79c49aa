package freeswitch

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/audio"
	"github.com/callgate/callgate/controller/switchsim"
)

// simHarness runs the driver against the switch simulator over TCP.
type simHarness struct {
	sim  *switchsim.Sim
	sw   *Switch
	sink *recSink
	dir  string // the simulator's recording directory
}

func simSetup(t *testing.T) *simHarness {
	t.Helper()
	t.Parallel()
	dir := t.TempDir()
	sim := switchsim.New(switchsim.Config{TimeScale: 0.01, RecordDir: dir})
	require.NoError(t, sim.Listen("127.0.0.1:0"))
	t.Cleanup(func() { _ = sim.Close() })
	h := &simHarness{sim: sim, sink: newRecSink(), dir: dir}
	sw, err := New(Config{
		Name: "fs1", Address: sim.Addr(), Password: "ClueCon", DialTemplate: "loopback/{number}/callgate-test",
		HeartbeatInterval: time.Hour, CommandTimeout: 5 * time.Second,
		ReconnectMin: time.Millisecond, ReconnectMax: 20 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	}, h.sink)
	require.NoError(t, err)
	h.sw = sw
	require.NoError(t, sw.Start(context.Background()))
	t.Cleanup(sw.Stop)
	require.Equal(t, "fs1", waitFor(t, h.sink.connected))
	return h
}

// call originates a call to the scenario with suffix and waits for its
// answer.
func (h *simHarness) call(t *testing.T, suffix string) controller.CallID {
	t.Helper()
	id := controller.CallID(uuid.NewString())
	require.NoError(t, h.sw.Originate(context.Background(), controller.OriginateRequest{
		CallID: id, To: "+1555000" + suffix, CallerIDNumber: "4000", Timeout: 5 * time.Second}))
	h.wait(t, id, controller.EventAnswer)
	return id
}

func (h *simHarness) wait(t *testing.T, id controller.CallID, kind controller.EventKind) controller.ChannelEvent {
	t.Helper()
	got := h.sink.until(t, func(e controller.ChannelEvent) bool { return e.CallID == id && e.Kind == kind })
	return got[len(got)-1]
}

func consentGather() controller.GatherRequest {
	return controller.GatherRequest{Prompt: "tone_stream://%(500,0,440)", InvalidPrompt: "tone_stream://%(200,0,300)",
		MinDigits: 1, MaxDigits: 1, Tries: 1, Timeout: 5 * time.Second, Terminators: "#", Regex: "^[12]$"}
}

func TestMediaPress1RecordAndPlay(t *testing.T) {
	h := simSetup(t)
	ctx := context.Background()
	id := h.call(t, "1001")

	res, err := h.sw.Gather(ctx, id, consentGather())
	require.NoError(t, err)
	require.Equal(t, controller.GatherResult{Digits: "1", Status: controller.GatherSuccess}, res)

	path := h.dir + "/" + string(id) + ".wav"
	require.NoError(t, h.sw.Record(ctx, id, controller.RecordStart, path))
	require.Equal(t, path, h.wait(t, id, controller.EventRecordStart).RecordPath)
	require.NoError(t, h.sw.Play(ctx, id, "tone_stream://%(1000,0,440)"))
	require.NoError(t, h.sw.Record(ctx, id, controller.RecordMask, path))
	require.NoError(t, h.sw.Record(ctx, id, controller.RecordUnmask, path))
	require.NoError(t, h.sw.Record(ctx, id, controller.RecordStop, path))
	stop := h.wait(t, id, controller.EventRecordStop)
	require.Equal(t, path, stop.RecordPath)
	require.Positive(t, stop.RecordMS)
	f, err := audio.ParseWAVFile(path)
	require.NoError(t, err, "the simulator wrote the recording")
	require.Equal(t, 2, f.Channels, "RECORD_STEREO was set before start")
	require.Equal(t, stop.RecordMS, f.Duration().Milliseconds())

	// A second gather does not read the first one's digits.
	res, err = h.sw.Gather(ctx, id, controller.GatherRequest{Prompt: "silence_stream://100", MinDigits: 1, MaxDigits: 1,
		Tries: 1, Timeout: time.Second})
	require.NoError(t, err)
	require.Equal(t, controller.GatherTimeout, res.Status)

	// 1006 answers and hangs up 2 s later: the bridge ends, our leg stays.
	tr, err := h.sw.Transfer(ctx, id, "loopback/1006/callgate-test")
	require.NoError(t, err)
	require.Equal(t, controller.TransferResult{Bridged: true, HangupCause: "NORMAL_CLEARING"}, tr)
	tr, err = h.sw.Transfer(ctx, id, "loopback/1003/callgate-test")
	require.NoError(t, err)
	require.Equal(t, controller.TransferResult{Bridged: false, HangupCause: "USER_BUSY"}, tr)
	require.NoError(t, h.sw.Hangup(ctx, id, ""))
	h.wait(t, id, controller.EventDestroy)
}

func TestMediaGatherOutcomes(t *testing.T) {
	h := simSetup(t)
	ctx := context.Background()

	silent := h.call(t, "1005")
	res, err := h.sw.Gather(ctx, silent, consentGather())
	require.NoError(t, err)
	require.Equal(t, controller.GatherResult{Status: controller.GatherTimeout}, res)

	wrong := h.call(t, "1002")
	only1 := consentGather()
	only1.Regex = "^1$"
	res, err = h.sw.Gather(ctx, wrong, only1)
	require.NoError(t, err)
	require.Equal(t, controller.GatherResult{Status: controller.GatherInvalid}, res, "a 2 where only 1 is valid")

	// The callee hangs up 1.2 s after answering, during a 10 s prompt.
	gone := h.call(t, "1010")
	long := consentGather()
	long.Prompt = "tone_stream://%(10000,0,440)"
	_, err = h.sw.Gather(ctx, gone, long)
	require.ErrorIs(t, err, controller.ErrHungUp)
	h.wait(t, gone, controller.EventDestroy)
	// Steps on a call that has ended fail at once.
	err = h.sw.Play(ctx, gone, "silence_stream://100")
	require.Error(t, err)
	require.Contains(t, []string{controller.ENOTFOUND, controller.ECONFLICT}, controller.ErrorCode(err))
}

func TestMediaRejectsUnsafeInput(t *testing.T) {
	t.Parallel()
	sw, err := New(Config{Name: "fs1", Address: "127.0.0.1:1", Password: "x", DialTemplate: "loopback/{number}"}, newRecSink())
	require.NoError(t, err)
	ctx := context.Background()
	const id = controller.CallID("50b976a2-5e58-4f1a-bbe1-07766e35f9f6")
	for _, p := range []string{"", "/tmp/a b.wav", "/tmp/a.wav\napi hupall", "relative.wav", "/tmp/../etc/passwd",
		"{x=y}/tmp/a.wav", "'quoted'", "ftp://host/a.wav"} {
		require.Equal(t, controller.EINVALID, controller.ErrorCode(sw.Play(ctx, id, p)), "prompt %q", p)
	}
	for _, r := range []controller.GatherRequest{
		{Prompt: "/p.wav", MinDigits: 0, MaxDigits: 1, Tries: 1},
		{Prompt: "/p.wav", MinDigits: 2, MaxDigits: 1, Tries: 1},
		{Prompt: "/p.wav", MinDigits: 1, MaxDigits: 1, Tries: 0},
		{Prompt: "/p.wav", MinDigits: 1, MaxDigits: 1, Tries: 1, Terminators: "#\n"},
		{Prompt: "/p.wav", MinDigits: 1, MaxDigits: 1, Tries: 1, Regex: "^1 2$"},
		{Prompt: "/p.wav", MinDigits: 1, MaxDigits: 1, Tries: 1, Regex: "("},
		{Prompt: "/p.wav", MinDigits: 1, MaxDigits: 1, Tries: 1, InvalidPrompt: "/x y"},
	} {
		_, err := sw.Gather(ctx, id, r)
		require.Equal(t, controller.EINVALID, controller.ErrorCode(err), "%+v", r)
	}
	require.Equal(t, controller.EINVALID, controller.ErrorCode(sw.Record(ctx, id, "erase", "/tmp/a.wav")))
	require.Equal(t, controller.EINVALID, controller.ErrorCode(sw.Record(ctx, id, controller.RecordStart, "/tmp/a.wav stop")))
	require.Equal(t, controller.EINVALID, controller.ErrorCode(sw.Record(ctx, "x\napi hupall", controller.RecordStart, "/tmp/a.wav")))
	for _, d := range []string{"", "sofia/gw/1 &park()", "{origination_uuid=x}sofia/gw/1", "sofia/gw/1\nexit"} {
		_, err := sw.Transfer(ctx, id, d)
		require.Equal(t, controller.EINVALID, controller.ErrorCode(err), "dest %q", d)
	}
	// What a valid step sends: one sendmsg, our Event-UUID, no blank line.
	msg := sendmsgCommand{call: id, app: "playback", arg: "/p.wav", appUUID: "a"}.BuildMessage()
	require.Equal(t, "sendmsg "+string(id)+"\ncall-command: execute\nexecute-app-name: playback\n"+
		"execute-app-arg: /p.wav\nevent-lock: true\nEvent-UUID: a", msg)
	require.False(t, strings.Contains(msg, "\n\n"))
	arg, err := gatherArg(consentGather())
	require.NoError(t, err)
	require.Equal(t, "1 1 1 5000 # tone_stream://%(500,0,440) tone_stream://%(200,0,300) cg_digits ^[12]$ 5000", arg)
}
