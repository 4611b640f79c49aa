package ivr_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/ivr"
)

// fakeDesk hands out its agent (or none) and records what it was told.
type fakeDesk struct {
	agent    *controller.AgentClaim
	waited   time.Duration
	finished []bool
}

func (d *fakeDesk) Connect(_ context.Context, _ controller.Call, wait time.Duration) (controller.AgentClaim, bool, error) {
	d.waited = wait
	if d.agent == nil {
		return controller.AgentClaim{}, false, nil
	}
	return *d.agent, true, nil
}

func (d *fakeDesk) Finish(_ context.Context, _ controller.AgentClaim, _ controller.Call, bridged bool) error {
	d.finished = append(d.finished, bridged)
	return nil
}

const agentDoc = `{"start": "a", "nodes": {"a": {"type": "agent", "prompt": "hello"}}}`

func TestRunAgentNode(t *testing.T) {
	t.Parallel()
	// An agent is free: the call is bridged to them and the run ends.
	b := setup(t)
	desk := &fakeDesk{agent: &controller.AgentClaim{AgentID: "ann", Endpoint: "user/ann"}}
	b.runner.Agents = desk
	b.media.transfer = controller.TransferResult{Bridged: true, HangupCause: "NORMAL_CLEARING"}
	res := b.run(t, agentDoc)
	require.Equal(t, ivr.OutcomeAgent, res.Outcome, res.Err)
	require.Equal(t, []string{"transfer user/ann"}, b.ev.all())
	require.Equal(t, []bool{true}, desk.finished, "the agent goes to wrap-up")
	require.Equal(t, 2*time.Second, desk.waited, "the 2 s rule by default")
	require.Empty(t, res.Disposition)

	// Nobody free: the identification message, abandoned, hung up; the
	// disposition is stored before the hang-up.
	for _, desk := range []*fakeDesk{{}, {agent: &controller.AgentClaim{AgentID: "bob", Endpoint: "user/bob"}}} {
		b := setup(t)
		b.runner.Agents = desk
		b.media.transfer = controller.TransferResult{HangupCause: "NO_ANSWER"} // bob does not answer
		var stored []string
		b.runner.Disposition = func(_ context.Context, _ controller.Call, d string) error {
			stored = append(stored, d)
			b.ev.add("disposition %s", d)
			return nil
		}
		res := b.run(t, agentDoc)
		require.Equal(t, ivr.OutcomeAbandoned, res.Outcome, res.Err)
		require.Equal(t, "abandoned", res.Disposition)
		require.Equal(t, []string{"abandoned"}, stored)
		evs := b.ev.all()
		require.Equal(t, "disposition abandoned", evs[len(evs)-3], "%v", evs)
		require.Contains(t, evs[len(evs)-2], "play ")
		require.Contains(t, evs[len(evs)-1], "hangup")
		if desk.agent != nil {
			require.Equal(t, []bool{false}, desk.finished, "an agent who did not answer is available again")
		}
	}

	// Without agents the node fails the run.
	b = setup(t)
	res = b.run(t, agentDoc)
	require.Equal(t, ivr.OutcomeError, res.Outcome)

	// The identification message is required.
	_, err := ivr.Decode([]byte(`{"start": "a", "nodes": {"a": {"type": "agent"}}}`))
	require.Equal(t, "nodes.a.prompt", controller.ErrorField(err))
}
