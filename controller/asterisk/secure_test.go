package asterisk_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/asterisk"
	"github.com/callgate/callgate/controller/switchsim"
	"github.com/callgate/callgate/controller/switchtest"
)

func secureAsterisk(t *testing.T, template string) (*switchsim.Sim, *asterisk.Switch) {
	t.Helper()
	sim := switchsim.New(switchsim.Config{TimeScale: 0.01, ARIUser: "callgate", ARIPassword: "secure-secret"})
	require.NoError(t, sim.ListenARI("127.0.0.1:0"))
	t.Cleanup(func() { sim.Close() })
	sw, err := asterisk.New(asterisk.Config{
		Name: "ast1", URL: "http://" + sim.ARIAddr() + "/ari", User: "callgate", Password: "secure-secret", App: "callgate",
		DialTemplate: template, HeartbeatInterval: time.Second, ReconnectMin: time.Millisecond, ReconnectMax: 50 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	}, switchtest.NewSink())
	require.NoError(t, err)
	return sim, sw
}

func start(t *testing.T, sw *asterisk.Switch) {
	t.Helper()
	require.NoError(t, sw.Start(context.Background()))
	t.Cleanup(sw.Stop)
	require.Eventually(t, func() bool { return sw.Status().Connected }, 5*time.Second, 5*time.Millisecond)
}

var srtp = controller.MediaRequirement{SRTP: true, TLS: true, Suites: []string{"AES_CM_128_HMAC_SHA1_80"}}

// TestSecureTrunkDeclared: with the operator's declaration the switch is
// confirmed (by configuration) and carries calls that require SRTP.
func TestSecureTrunkDeclared(t *testing.T) {
	t.Parallel()
	sim, sw := secureAsterisk(t, "PJSIP/{number}@trunk")
	require.Error(t, sw.DeclareSecureTrunk("other"), "the declaration names the template's trunk")
	require.NoError(t, sw.DeclareSecureTrunk("trunk"))
	require.Equal(t, controller.SecureMediaUnconfirmed, sw.Status().SecureMedia, "not connected yet")
	start(t, sw)
	st := sw.Status()
	require.Equal(t, controller.SecureMediaConfirmed, st.SecureMedia)
	require.Contains(t, st.SecureMediaDetail, "by configuration only")
	require.NoError(t, sw.Originate(context.Background(), controller.OriginateRequest{CallID: "secure-1", To: "12125551001", Media: srtp}))
	require.Equal(t, 1, sim.Originated())
}

// TestSecureTrunkUndeclared: without it, such a call is not sent, and a
// call that requires nothing still is.
func TestSecureTrunkUndeclared(t *testing.T) {
	t.Parallel()
	sim, sw := secureAsterisk(t, "Local/{number}@cgtest")
	require.Error(t, sw.DeclareSecureTrunk("cgtest"), "Local channels are never a secure trunk")
	start(t, sw)
	require.Equal(t, controller.SecureMediaNotConfigured, sw.Status().SecureMedia)
	err := sw.Originate(context.Background(), controller.OriginateRequest{CallID: "secure-2", To: "1001", Media: srtp})
	require.ErrorIs(t, err, controller.ErrNotSent)
	require.ErrorIs(t, err, asterisk.ErrMediaInsecure)
	require.Zero(t, sim.Originated())
	require.NoError(t, sw.Originate(context.Background(), controller.OriginateRequest{CallID: "plain-1", To: "1001"}))
	require.Equal(t, 1, sim.Originated())
}
