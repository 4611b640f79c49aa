package freeswitch_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
	"github.com/callgate/callgate/controller/freeswitch"
	"github.com/callgate/callgate/controller/switchsim"
	"github.com/callgate/callgate/controller/switchtest"
)

// secureSetup starts a switchsim and the real driver against it.
func secureSetup(t *testing.T, simCfg switchsim.Config, tweak func(*freeswitch.Config)) (*switchsim.Sim, *freeswitch.Switch) {
	t.Helper()
	simCfg.Password, simCfg.TimeScale = "secure-secret", 0.01
	sim := switchsim.New(simCfg)
	require.NoError(t, sim.Listen("127.0.0.1:0"))
	t.Cleanup(func() { sim.Close() })
	cfg := freeswitch.Config{
		Name: "fs1", Address: sim.Addr(), Password: "secure-secret",
		DialTemplate: "sofia/gateway/{trunk}/{number}", Trunk: "carrier", SecureProfile: "external-tls",
		HeartbeatInterval: 20 * time.Millisecond, SecureCheckInterval: 20 * time.Millisecond,
		ReconnectMin: time.Millisecond, ReconnectMax: 50 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	sink := switchtest.NewSink()
	sw, err := freeswitch.New(cfg, sink)
	require.NoError(t, err)
	require.NoError(t, sw.Start(context.Background()))
	t.Cleanup(sw.Stop)
	sink.WaitConnected(t)
	return sim, sw
}

func presetMedia(t *testing.T, name string) controller.MediaRequirement {
	t.Helper()
	p, ok := compliance.Preset(name)
	require.True(t, ok)
	return p.MediaSecurity.Requirement()
}

const secureCallID = "5a1c7c55-3b0e-4f5e-9d3e-2f2b7f1c0a01"

// TestSecureMediaOnTheWire: the originate switchsim received carries
// rtp_secure_media=mandatory:… when the policy (the us preset) asks for
// SRTP, and nothing of the kind under the lab preset.
func TestSecureMediaOnTheWire(t *testing.T) {
	t.Parallel()
	sim, sw := secureSetup(t, switchsim.Config{}, nil)
	st := sw.Status()
	require.Equal(t, controller.SecureMediaConfirmed, st.SecureMedia, st.SecureMediaDetail)
	require.Contains(t, st.SecureMediaDetail, "external-tls")

	ctx := context.Background()
	require.NoError(t, sw.Originate(ctx, controller.OriginateRequest{CallID: secureCallID, To: "+12125551001",
		Media: presetMedia(t, "us")}))
	require.NoError(t, sw.Originate(ctx, controller.OriginateRequest{CallID: controller.CallID(strings.Replace(secureCallID, "5a1c", "5a1d", 1)), To: "+12125551001",
		Media: presetMedia(t, "lab")}))

	got := sim.OriginateCommands()
	require.Len(t, got, 2)
	require.Contains(t, got[0], ",rtp_secure_media=mandatory:AES_CM_128_HMAC_SHA1_80:AEAD_AES_256_GCM_8}sofia/gateway/carrier/+12125551001 &park()")
	require.NotContains(t, got[1], "rtp_secure_media")
	o, usage := switchsim.ParseOriginate(got[0])
	require.Empty(t, usage)
	var v string
	for _, x := range o.Vars {
		if x.Name == "rtp_secure_media" {
			v = x.Value
		}
	}
	require.Equal(t, "mandatory:AES_CM_128_HMAC_SHA1_80:AEAD_AES_256_GCM_8", v, "FreeSWITCH's parser reads one variable")
}

// TestSecureMediaRefusedOnLoopback: a switch with no TLS profile is never
// sent a call that requires secure media, and says why.
func TestSecureMediaRefusedOnLoopback(t *testing.T) {
	t.Parallel()
	sim, sw := secureSetup(t, switchsim.Config{}, func(c *freeswitch.Config) {
		c.DialTemplate, c.Trunk, c.SecureProfile = "loopback/{number}/callgate-test", "", ""
	})
	require.Equal(t, controller.SecureMediaNotConfigured, sw.Status().SecureMedia)
	err := sw.Originate(context.Background(), controller.OriginateRequest{CallID: secureCallID, To: "+12125551001", Media: presetMedia(t, "uk")})
	require.ErrorIs(t, err, controller.ErrNotSent)
	require.ErrorIs(t, err, freeswitch.ErrMediaInsecure)
	require.Contains(t, err.Error(), controller.ReasonMediaInsecure)
	require.Empty(t, sim.OriginateCommands(), "nothing reached the switch")
}

// TestSecureMediaProfileDown: a TLS profile that is not running leaves the
// switch unconfirmed; the heartbeat notices it stop and start again.
func TestSecureMediaProfileDown(t *testing.T) {
	t.Parallel()
	down := map[string]switchsim.SofiaProfile{"external-tls": {Running: false}}
	sim, sw := secureSetup(t, switchsim.Config{SofiaProfiles: down}, nil)
	st := sw.Status()
	require.True(t, st.Connected)
	require.Equal(t, controller.SecureMediaUnconfirmed, st.SecureMedia)
	require.Contains(t, st.SecureMediaDetail, "not running")
	err := sw.Originate(context.Background(), controller.OriginateRequest{CallID: secureCallID, To: "+12125551001", Media: presetMedia(t, "cn")})
	require.True(t, errors.Is(err, freeswitch.ErrMediaInsecure) && errors.Is(err, controller.ErrNotSent), "%v", err)
	require.Empty(t, sim.OriginateCommands())

	sim.SetSofiaProfile("external-tls", switchsim.SofiaProfile{Running: true, TLS: true})
	require.Eventually(t, func() bool { return sw.Status().SecureMedia == controller.SecureMediaConfirmed },
		5*time.Second, 10*time.Millisecond)
	sim.SetSofiaProfile("external-tls", switchsim.SofiaProfile{Running: true}) // tls=false
	require.Eventually(t, func() bool { return sw.Status().SecureMedia == controller.SecureMediaUnconfirmed },
		5*time.Second, 10*time.Millisecond)
	require.Contains(t, sw.Status().SecureMediaDetail, "without TLS")
}

func TestSecureProfileConfig(t *testing.T) {
	t.Parallel()
	base := freeswitch.Config{Name: "fs1", Address: "127.0.0.1:8021", Password: "x", SecureProfile: "external-tls"}
	for template, ok := range map[string]bool{
		"sofia/gateway/carrier/{number}":                        true,
		"sofia/external-tls/{number}@sip.example;transport=tls": true,
		"sofia/external-tls/{number}@sip.example":               false,
		"loopback/{number}/callgate-test":                       false,
	} {
		c := base
		c.DialTemplate = template
		_, err := freeswitch.New(c, switchtest.NewSink())
		if ok {
			require.NoError(t, err, template)
		} else {
			require.Equal(t, "DialTemplate", controller.ErrorField(err), template)
		}
	}
}
