package dialer_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/calltest"
	"github.com/callgate/callgate/controller/compliance"
	"github.com/callgate/callgate/controller/dialer"
	"github.com/callgate/callgate/controller/postgres/pgtest"
)

// secureFake is a fakeSwitch whose secure-media state the test sets, and
// which records every originate request it is given.
type secureFake struct {
	*fakeSwitch
	mu    sync.Mutex
	state string
	reqs  chan controller.OriginateRequest
}

func (f *secureFake) Status() controller.SwitchStatus {
	st := f.fakeSwitch.Status()
	f.mu.Lock()
	defer f.mu.Unlock()
	st.SecureMedia, st.SecureMediaDetail = f.state, "set by the test"
	return st
}

func (f *secureFake) Originate(ctx context.Context, req controller.OriginateRequest) error {
	f.reqs <- req
	return f.fakeSwitch.Originate(ctx, req)
}

type secureBundle struct {
	svc *dialer.Service
	sw  *secureFake
	reg *prometheus.Registry
	w   *calltest.Watcher
}

// secureSetup runs the dialer with policy as its default (the gate's and
// the dialer's) over one switch in the given secure-media state.
func secureSetup(t *testing.T, policy compliance.Policy, state string) *secureBundle {
	t.Helper()
	store := pgtest.New(t)
	w := calltest.New(10 * time.Second)
	gate, err := compliance.New(dialer.PolicySource(policy))
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	sw := &secureFake{fakeSwitch: newFakeSwitch("fs1"), state: state, reqs: make(chan controller.OriginateRequest, 100)}
	svc, err := dialer.New(dialer.Config{Owner: "test-" + t.Name(), PollInterval: 20 * time.Millisecond, RefusalDelay: time.Millisecond,
		OnCallUpdate: w.Observe, Gate: gate, Policy: policy, Registerer: reg}, store)
	require.NoError(t, err)
	sw.sink = svc
	svc.AddSwitch(sw, dialer.SwitchLimits{})
	ctx, cancel := context.WithCancel(context.Background())
	svc.Start(ctx)
	t.Cleanup(func() { cancel(); svc.Stop() })
	return &secureBundle{svc: svc, sw: sw, reg: reg, w: w}
}

// securePolicy is the lab preset (any hour, no consent) with the media
// security of the us preset.
func securePolicy(t *testing.T) compliance.Policy {
	t.Helper()
	p, _ := compliance.Preset("lab")
	us, _ := compliance.Preset("us")
	p.MediaSecurity = us.MediaSecurity
	require.NoError(t, p.Validate())
	return p
}

func (b *secureBundle) call(t *testing.T, to string) controller.Call {
	t.Helper()
	c, created, err := b.svc.CreateCall(context.Background(), controller.CreateCallRequest{To: to, From: "+12125550100"})
	require.NoError(t, err)
	require.True(t, created)
	return c
}

func (b *secureBundle) held(t *testing.T) float64 {
	t.Helper()
	mfs, err := b.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "callgate_originations_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == controller.ReasonMediaInsecure {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestSecureMediaOnOriginate: the policy's requirement reaches the driver
// on a switch that confirmed secure media.
func TestSecureMediaOnOriginate(t *testing.T) {
	t.Parallel()
	b := secureSetup(t, securePolicy(t), controller.SecureMediaConfirmed)
	c := b.call(t, "+12125551001")
	b.w.WaitState(t, c.ID, controller.CallCompleted)
	req := <-b.sw.reqs
	require.Equal(t, c.ID, req.CallID)
	require.Equal(t, controller.MediaRequirement{SRTP: true, TLS: true,
		Suites: []string{"AES_CM_128_HMAC_SHA1_80", "AEAD_AES_256_GCM_8"}}, req.Media)
}

// TestSecureMediaHeldOnUnconfirmedSwitch: a call that requires TLS/SRTP is
// never originated on a switch that cannot confirm them; it goes back to
// the queue (media_insecure), still queued, for a compliant switch.
func TestSecureMediaHeldOnUnconfirmedSwitch(t *testing.T) {
	t.Parallel()
	for _, state := range []string{controller.SecureMediaUnconfirmed, controller.SecureMediaNotConfigured, ""} {
		t.Run("state="+state, func(t *testing.T) {
			t.Parallel()
			b := secureSetup(t, securePolicy(t), state)
			c := b.call(t, "+12125551001")
			require.Eventually(t, func() bool { return b.held(t) >= 1 }, 10*time.Second, 10*time.Millisecond,
				"the owner claimed the call and held it back")
			require.Zero(t, b.sw.originateCount(c.ID))
			require.Empty(t, b.sw.reqs)
			got, err := b.svc.GetCall(context.Background(), "", c.ID)
			require.NoError(t, err)
			require.Equal(t, controller.CallQueued, got.State)
			require.Nil(t, got.Decision, "no dial-time decision was spent on it")
		})
	}
}

// TestNoSecureMediaRequired: the lab preset requires nothing, so a switch
// without secure media (switchsim loopback) carries its calls and the
// originate asks for nothing.
func TestNoSecureMediaRequired(t *testing.T) {
	t.Parallel()
	lab, _ := compliance.Preset("lab")
	b := secureSetup(t, lab, controller.SecureMediaNotConfigured)
	c := b.call(t, "+12125551001")
	b.w.WaitState(t, c.ID, controller.CallCompleted)
	req := <-b.sw.reqs
	require.False(t, req.Media.Required())
	require.Zero(t, b.held(t))
}
