package freeswitch_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller/freeswitch"
	"github.com/callgate/callgate/controller/switchsim"
	"github.com/callgate/callgate/controller/switchtest"
)

// TestSharedSuite runs the suite every driver must pass: against switchsim,
// or against the real FreeSWITCH named by CALLGATE_TEST_ESL (with
// CALLGATE_TEST_ESL_PASSWORD, and CALLGATE_TEST_SPOOL_DIR: a directory both
// the switch and this test can reach, for recordings).
func TestSharedSuite(t *testing.T) {
	t.Parallel()
	switchtest.Run(t, func(t *testing.T) *switchtest.Target {
		addr, password, dir := os.Getenv("CALLGATE_TEST_ESL"), os.Getenv("CALLGATE_TEST_ESL_PASSWORD"), os.Getenv("CALLGATE_TEST_SPOOL_DIR")
		var sim *switchsim.Sim
		if addr == "" {
			dir, password = t.TempDir(), "suite-secret"
			sim = switchsim.New(switchsim.Config{Password: password, TimeScale: 0.05, RecordDir: dir})
			require.NoError(t, sim.Listen("127.0.0.1:0"))
			t.Cleanup(func() { sim.Close() })
			addr = sim.Addr()
		} else if dir == "" {
			t.Skip("CALLGATE_TEST_SPOOL_DIR is required with CALLGATE_TEST_ESL")
		}
		sink := switchtest.NewSink()
		sw, err := freeswitch.New(freeswitch.Config{
			Name: "fs1", Address: addr, Password: password, DialTemplate: "loopback/{number}/callgate-test",
			HeartbeatInterval: time.Second, ReconnectMin: time.Millisecond, ReconnectMax: 50 * time.Millisecond,
			Logger: slog.New(slog.DiscardHandler),
		}, sink)
		require.NoError(t, err)
		require.NoError(t, sw.Start(context.Background()))
		t.Cleanup(sw.Stop)
		sink.WaitConnected(t)
		tg := &switchtest.Target{Switch: sw, Sink: sink, RecordDir: dir,
			Number:      func(suffix string) string { return "+1212555" + suffix },
			Destination: func(suffix string) string { return "loopback/" + suffix + "/callgate-test" }}
		if sim != nil {
			tg.DropLink = func() { sim.DropConnections() }
		}
		return tg
	})
}
