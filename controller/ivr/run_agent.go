package ivr

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/callgate/callgate/controller"
)

// dispositionAbandoned is the disposition of a call an agent node could
// not connect: the campaign counts it in its abandon rate.
const dispositionAbandoned = "abandoned"

// agent connects the call to an agent of its campaign: the agent is
// reserved within timeout_ms and the call bridged to them, the run ending
// when the bridge does (the agent then wraps up). With no agent free in
// time, or one who does not answer, the call is abandoned: it hears the
// identification message, is tagged abandoned and hung up.
func (ru *run) agent(step *Step, n *Node) (string, error) {
	if ru.r.Agents == nil {
		return "", fmt.Errorf("connecting an agent: agents are not enabled on this controller")
	}
	claim, ok, err := ru.r.Agents.Connect(ru.ctx, ru.call, time.Duration(n.TimeoutMS)*time.Millisecond)
	if err != nil {
		return "", fmt.Errorf("connecting an agent: %w", err)
	}
	if ok {
		res, err := ru.r.Media.Transfer(ru.ctx, ru.call.ID, claim.Endpoint)
		// A caller who hangs up while bridged ends the bridge with the
		// call: the agent had the call, and wraps it up.
		hungUp := errors.Is(err, controller.ErrHungUp)
		bridged := err == nil && res.Bridged || hungUp
		if ferr := ru.r.Agents.Finish(context.WithoutCancel(ru.ctx), claim, ru.call, bridged); ferr != nil {
			ru.log.Warn("recording the end of an agent's call", "agent_id", claim.AgentID, "err", ferr)
		}
		if hungUp {
			step.Result = "agent " + claim.AgentID
			return "", &endRun{outcome: OutcomeAgent}
		}
		if err != nil {
			return "", fmt.Errorf("bridging to agent %s: %w", claim.AgentID, err)
		}
		if bridged {
			step.Result = "agent " + claim.AgentID
			return "", &endRun{outcome: OutcomeAgent}
		}
		step.Result = "agent " + claim.AgentID + " did not answer"
		if res.HangupCause != "" {
			step.Result += ": " + res.HangupCause
		}
	} else {
		step.Result = "no agent"
	}
	ru.res.Disposition = dispositionAbandoned
	if f := ru.r.Disposition; f != nil {
		if err := f(context.WithoutCancel(ru.ctx), ru.call, dispositionAbandoned); err != nil {
			return "", fmt.Errorf("recording the abandoned call: %w", err)
		}
	}
	path, _, err := ru.playable(step, n)
	if err != nil {
		return "", err
	}
	if err := ru.r.Media.Play(ru.ctx, ru.call.ID, path); err != nil {
		return "", fmt.Errorf("playing the identification message: %w", err)
	}
	return "", &endRun{outcome: OutcomeAbandoned, cause: DefaultHangupCause}
}
