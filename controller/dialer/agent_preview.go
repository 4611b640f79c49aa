package dialer

import (
	"context"
	"time"

	"github.com/callgate/callgate/controller"
)

// Preview bounds: how long a skipped lead waits before it is offered
// again, and how long an offer stays reserved without an answer.
const (
	previewSkipDelay = 15 * time.Minute
	previewOfferTTL  = 10 * time.Minute
)

// NextPreviewLead offers an agent the next due lead of their preview
// campaigns.
func (ag *Agents) NextPreviewLead(ctx context.Context, tenant, id string) (controller.PreviewLead, bool, error) {
	return ag.store.ReservePreviewLead(ctx, tenantOr(tenant), id)
}

// AcceptPreviewLead dials the lead on offer; the agent is on_call for it
// until the call is answered and bridged to them, or ends unanswered.
func (ag *Agents) AcceptPreviewLead(ctx context.Context, tenant, id string) (controller.PreviewLead, error) {
	p, err := ag.store.AcceptPreviewLead(ctx, tenantOr(tenant), id)
	if err == nil {
		ag.report(ctx, tenantOr(tenant), id)
	}
	return p, err
}

// SkipPreviewLead gives the lead on offer back; it is offered again in
// previewSkipDelay, to whichever agent asks.
func (ag *Agents) SkipPreviewLead(ctx context.Context, tenant, id string) error {
	return ag.store.SkipPreviewLead(ctx, tenantOr(tenant), id, previewSkipDelay)
}

// Release frees the agents and offers nothing else will (a crash mid-call,
// an accepted lead that was withdrawn or ended unanswered, an offer left
// unanswered); the campaign runner calls it on every pass.
func (ag *Agents) Release(ctx context.Context) {
	n, err := ag.store.ReleaseAgents(ctx, previewOfferTTL)
	if err != nil {
		if ctx.Err() == nil {
			ag.log.Warn("releasing agents", "err", err)
		}
		return
	}
	if n > 0 {
		ag.wake()
	}
}
