package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
	"github.com/callgate/callgate/controller/dialer"
	"github.com/callgate/callgate/controller/postgres"
	"github.com/callgate/callgate/controller/postgres/pgtest"
	"github.com/callgate/callgate/controller/switchsim"
)

// childEnv carries a controller's configuration to TestControllerProcess.
const childEnv = "CALLGATE_TEST_CHILD_CONFIG"

// TestControllerProcess is not a test: it is the controller process the
// kill tests start (this test binary, re-executed). It runs Main with the
// configuration in childEnv, prints "ready" and runs until its standard
// input closes or it is killed.
func TestControllerProcess(t *testing.T) {
	raw := os.Getenv(childEnv)
	if raw == "" {
		t.Skip("runs only as a child of the kill tests")
	}
	var cfg Config
	require.NoError(t, json.Unmarshal([]byte(raw), &cfg))
	m := &Main{Config: cfg, Logger: testLogger(t)}
	require.NoError(t, m.Run(context.Background()))
	os.Stdout.WriteString("ready\n")
	_, _ = io.Copy(io.Discard, os.Stdin)
	require.NoError(t, m.Close())
}

// controllerProcess is a running child controller.
type controllerProcess struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func startController(t *testing.T, cfg Config) *controllerProcess {
	t.Helper()
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestControllerProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &controllerProcess{cmd: cmd, stdin: stdin}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if sc.Text() == "ready" && !ok {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		require.True(t, ok, "the controller process exited before it was ready")
	case <-time.After(60 * time.Second):
		t.Fatal("the controller process did not start")
	}
	return p
}

// kill9 kills the process at once, as a crash or the OOM killer would.
func (p *controllerProcess) kill9(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Kill()) // SIGKILL
	_ = p.cmd.Wait()
}

// stop asks the process to shut down and waits for it.
func (p *controllerProcess) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, p.stdin.Close())
	require.NoError(t, p.cmd.Wait())
}

// campaignAdmin builds, over the database, the campaign service an
// operator's API would use, without any switch or runner.
func campaignAdmin(t *testing.T, ctx context.Context, store *postgres.Store) *dialer.Campaigns {
	t.Helper()
	policy, err := loadPolicy("lab")
	require.NoError(t, err)
	gate, err := compliance.New(dialer.PolicySource(policy))
	require.NoError(t, err)
	svc, err := dialer.New(dialer.Config{Owner: "admin", Gate: gate, Policy: policy}, store)
	require.NoError(t, err)
	return dialer.NewCampaigns(dialer.CampaignConfig{}, store, svc)
}

// waitDone waits, woken by every queued attempt (LISTEN/NOTIFY) or a
// second at most, until every lead of the campaign is done.
func waitDone(t *testing.T, ctx context.Context, store *postgres.Store, cs *dialer.Campaigns, id string) controller.CampaignStatus {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, err := cs.Campaign(ctx, "", id)
		require.NoError(t, err)
		if st.Counters.Leads > 0 && st.Counters.Done == st.Counters.Leads {
			return st
		}
		require.True(t, time.Now().Before(deadline), "campaign never finished: %+v", st.Counters)
		require.NoError(t, store.WaitForAttempts(ctx, time.Second))
	}
}

func TestE2ECampaignSurvivesKill9(t *testing.T) {
	if os.Getenv("CALLGATE_TEST_ESL") != "" {
		t.Skip("kills and restarts controllers against switchsim only")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	sim := switchsim.New(switchsim.Config{Password: "kill-secret", TimeScale: 0.05})
	require.NoError(t, sim.Listen("127.0.0.1:0"))
	t.Cleanup(func() { sim.Close() })
	dsn := pgtest.DSN(t)
	require.NoError(t, postgres.Migrate(ctx, dsn))
	db, err := postgres.Open(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	keysFile := testKeysFile(t)
	store := keyedStore(t, db, keysFile)
	admin := campaignAdmin(t, ctx, store)

	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DatabaseURL = dsn
	cfg.Migrate = false
	cfg.InstanceID = "kill-test" // the restart comes back under the same ID
	cfg.Policy = "lab"
	cfg.KeysFile = keysFile
	cfg.Dialer.HeartbeatInterval = 200 * time.Millisecond
	cfg.Switches = []SwitchConfig{{Name: "fs1", Kind: "freeswitch", Address: sim.Addr(), Password: "kill-secret",
		DialTemplate: "loopback/{number}/callgate-test"}}

	first := startController(t, cfg)
	csv, _ := leadCSV(600)
	list, err := admin.CreateLeadList(ctx, "", "kill")
	require.NoError(t, err)
	im, err := admin.RunImport(ctx, "", list.ID, strings.NewReader(csv), "", nil)
	require.NoError(t, err)
	require.Equal(t, 600, im.Imported)
	c, err := admin.CreateCampaign(ctx, controller.Campaign{Name: "kill", ListIDs: []string{list.ID},
		CallerIDs: []string{"+12125550100"}, Purpose: controller.PurposeService, MaxConcurrent: 60, MaxCPS: 300,
		Retry: map[controller.Outcome]controller.RetryRule{controller.OutcomeBusy: {DelaySeconds: 1, Max: 1}}})
	require.NoError(t, err)
	_, err = admin.TransitionCampaign(ctx, "", c.ID, controller.CampaignStart)
	require.NoError(t, err)

	// Kill it in the middle of the run: calls queued, claimed, ringing and
	// answered are all in the air.
	require.NoError(t, sim.WaitOriginated(ctx, 150))
	first.kill9(t)
	killedAt := sim.Originated()
	require.Less(t, killedAt, 650, "killed in the middle")

	second := startController(t, cfg)
	st := waitDone(t, ctx, store, admin, c.ID)
	require.Equal(t, 600, st.Counters.Leads)

	// Nothing duplicated: each call reached the switch at most once, and
	// every call the switch saw is a stored campaign call.
	byLead := leadCalls(t, admin, c.ID)
	require.Len(t, byLead, 600)
	requireNeverTwiceAtOnce(t, byLead)
	stored := map[string]bool{}
	for _, calls := range byLead {
		for _, call := range calls {
			stored[string(call.ID)] = true
		}
	}
	seen := sim.OriginatedUUIDs()
	for id, n := range seen {
		require.Equal(t, 1, n, "call %s was originated %d times", id, n)
		require.True(t, stored[id], "the switch saw a call callgate does not know")
	}
	// Nothing lost: every lead ended in a final outcome after its attempts.
	leads, err := admin.CampaignLeads(ctx, "", c.ID, "", 0, 1000)
	require.NoError(t, err)
	for _, l := range leads {
		require.Equal(t, "done", l.Status)
		require.NotEmpty(t, l.LastOutcome)
		require.NotEmpty(t, byLead[l.ID])
	}
	second.stop(t)
}

func TestE2ECampaignTwoControllers(t *testing.T) {
	if os.Getenv("CALLGATE_TEST_ESL") != "" {
		t.Skip("runs controller processes against switchsim only")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	// Two switches on two simulators; each controller configures both, the
	// leases decide who dials where, and both run the campaign.
	var sims []*switchsim.Sim
	for range 2 {
		sim := switchsim.New(switchsim.Config{Password: "two-secret", TimeScale: 0.05})
		require.NoError(t, sim.Listen("127.0.0.1:0"))
		t.Cleanup(func() { sim.Close() })
		sims = append(sims, sim)
	}
	dsn := pgtest.DSN(t)
	require.NoError(t, postgres.Migrate(ctx, dsn))
	db, err := postgres.Open(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	keysFile := testKeysFile(t) // one keyring for both controllers and the admin
	store := keyedStore(t, db, keysFile)
	admin := campaignAdmin(t, ctx, store)

	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DatabaseURL = dsn
	cfg.Policy = "lab"
	cfg.KeysFile = keysFile
	cfg.Dialer.HeartbeatInterval = 200 * time.Millisecond
	for i, sim := range sims {
		cfg.Switches = append(cfg.Switches, SwitchConfig{Name: []string{"fs1", "fs2"}[i], Kind: "freeswitch",
			Address: sim.Addr(), Password: "two-secret", DialTemplate: "loopback/{number}/callgate-test"})
	}
	var procs []*controllerProcess
	for _, id := range []string{"ctl-a", "ctl-b"} {
		c := cfg
		c.InstanceID = id
		procs = append(procs, startController(t, c))
	}

	csv, _ := leadCSV(600)
	list, err := admin.CreateLeadList(ctx, "", "two")
	require.NoError(t, err)
	_, err = admin.RunImport(ctx, "", list.ID, strings.NewReader(csv), "", nil)
	require.NoError(t, err)
	c, err := admin.CreateCampaign(ctx, controller.Campaign{Name: "two", ListIDs: []string{list.ID},
		CallerIDs: []string{"+12125550100"}, Purpose: controller.PurposeService, MaxConcurrent: 25, MaxCPS: 400,
		Retry: map[controller.Outcome]controller.RetryRule{controller.OutcomeBusy: {DelaySeconds: 1, Max: 2}}})
	require.NoError(t, err)
	_, err = admin.TransitionCampaign(ctx, "", c.ID, controller.CampaignStart)
	require.NoError(t, err)
	waitDone(t, ctx, store, admin, c.ID)

	byLead := leadCalls(t, admin, c.ID)
	require.Len(t, byLead, 600)
	requireNeverTwiceAtOnce(t, byLead)
	placed := map[string]int{}
	for _, sim := range sims {
		for id, n := range sim.OriginatedUUIDs() {
			placed[id] += n
		}
	}
	sent := 0
	for _, calls := range byLead {
		for _, call := range calls {
			if call.State == controller.CallBlocked || call.State == controller.CallCanceled {
				require.Zero(t, placed[string(call.ID)])
				continue
			}
			sent++
			require.Equal(t, 1, placed[string(call.ID)], "call %s placed once, on one switch", call.ID)
		}
		busy := 0
		for _, call := range calls {
			if call.HangupCause == "USER_BUSY" {
				busy++
			}
		}
		require.LessOrEqual(t, busy, 3, "a busy lead is called once and retried twice at most")
	}
	require.Len(t, placed, sent)
	// max_concurrent and max_cps across controllers are asserted exactly
	// where they are enforced: TestCampaignDispatchExactAcrossControllers
	// (controller/postgres) races two pools on one campaign.
	for _, p := range procs {
		p.stop(t)
	}
}
