package asterisk_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller/asterisk"
	"github.com/callgate/callgate/controller/switchsim"
	"github.com/callgate/callgate/controller/switchtest"
)

// TestSharedSuite runs the suite every driver must pass: against switchsim's
// ARI side, or against the real Asterisk named by CALLGATE_TEST_ARI (its ARI
// URL; with CALLGATE_TEST_ARI_USER, CALLGATE_TEST_ARI_PASSWORD and
// CALLGATE_TEST_ARI_APP, booted from asterisk-conf/).
func TestSharedSuite(t *testing.T) {
	t.Parallel()
	switchtest.Run(t, func(t *testing.T) *switchtest.Target {
		url := os.Getenv("CALLGATE_TEST_ARI")
		user, password, app := os.Getenv("CALLGATE_TEST_ARI_USER"), os.Getenv("CALLGATE_TEST_ARI_PASSWORD"), os.Getenv("CALLGATE_TEST_ARI_APP")
		context_ := "callgate-test"
		var sim *switchsim.Sim
		if url == "" {
			user, password, app, context_ = "callgate", "suite-secret", "callgate", "cgtest"
			// Real time: unlike FreeSWITCH's, ARI's IVR timers run in the
			// driver, on the wall clock, so the callees must too.
			sim = switchsim.New(switchsim.Config{TimeScale: 1, ARIUser: user, ARIPassword: password, ARIApp: app})
			require.NoError(t, sim.ListenARI("127.0.0.1:0"))
			t.Cleanup(func() { sim.Close() })
			url = "http://" + sim.ARIAddr() + "/ari"
		}
		if app == "" {
			app = "callgate"
		}
		sink := switchtest.NewSink()
		sw, err := asterisk.New(asterisk.Config{
			Name: "ast1", URL: url, User: user, Password: password, App: app,
			DialTemplate:      "Local/{number}@" + context_,
			HeartbeatInterval: time.Second, ReconnectMin: time.Millisecond, ReconnectMax: 50 * time.Millisecond,
			Logger: slog.New(slog.DiscardHandler),
		}, sink)
		require.NoError(t, err)
		require.NoError(t, sw.Start(context.Background()))
		t.Cleanup(sw.Stop)
		sink.WaitConnected(t)
		tg := &switchtest.Target{Switch: sw, Sink: sink, RecordDir: t.TempDir(),
			Number:      func(suffix string) string { return "1212555" + suffix },
			Destination: func(suffix string) string { return "Local/" + suffix + "@" + context_ }}
		if sim != nil {
			tg.DropLink = func() { sim.DropConnections() }
		}
		return tg
	})
}
