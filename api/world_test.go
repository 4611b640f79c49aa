package api_test

import (
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/callgate/callgate/controller"
)

// world is every service over two tenants' data.
type world struct {
	*fakeCampaigns // the campaign service, with acme's campaigns
	*fakeAgents    // the agent service, with acme's agents
	*fakeRouting   // the routing service, with acme's rules
	calls          map[controller.CallID]controller.Call
	consents       map[string]controller.Consent
	refusals       map[string]controller.Refusal
	// refusalTenant is the tenant that recorded each refusal.
	refusalTenant map[string]string
	lists         map[string]controller.DNCList
	dnc           map[string][]string
	policies      map[string]controller.PolicyRecord
	callerIDs     map[string][]string
	flows         map[string]controller.FlowRecord // tenant/id
	prompts       map[string]controller.Prompt     // tenant/name
	runs          map[controller.CallID]controller.FlowRun
	recs          map[string]controller.Recording
	audit         *fakeAudit
}

var (
	_ controller.CallService     = (*world)(nil)
	_ controller.ComplianceAdmin = (*world)(nil)
	_ controller.FlowAdmin       = (*world)(nil)
	_ controller.RecordingAdmin  = (*world)(nil)
	_ controller.TraceExporter   = (*world)(nil)
	_ controller.CampaignService = (*world)(nil)
	_ controller.AgentService    = (*world)(nil)
	_ controller.RoutingService  = (*world)(nil)
)

var errNF = controller.Errorf(controller.ENOTFOUND, "not found")

func newWorld() *world {
	w := &world{
		calls: map[controller.CallID]controller.Call{}, consents: map[string]controller.Consent{},
		refusals: map[string]controller.Refusal{}, refusalTenant: map[string]string{}, lists: map[string]controller.DNCList{}, dnc: map[string][]string{},
		policies: map[string]controller.PolicyRecord{}, callerIDs: map[string][]string{},
		flows: map[string]controller.FlowRecord{}, prompts: map[string]controller.Prompt{},
		runs: map[controller.CallID]controller.FlowRun{}, recs: map[string]controller.Recording{}, audit: &fakeAudit{},
		fakeCampaigns: newFakeCampaigns(), fakeAgents: newFakeAgents(), fakeRouting: newFakeRouting(),
	}
	w.seedAcme()
	w.seedAgents()
	for _, c := range []controller.Call{
		{ID: callAlice, TenantID: tenantA, AgentID: agentAlice, To: "+15557770100", From: callerA},
		{ID: callBob, TenantID: tenantA, AgentID: agentBob, To: bobNumber, From: callerA},
	} {
		c.State, c.CreatedAt, c.UpdatedAt = controller.CallQueued, fixedTime, fixedTime
		w.calls[c.ID] = c
		w.runs[c.ID] = controller.FlowRun{CallID: c.ID, TenantID: tenantA, FlowID: flowA, FlowVersion: 1, Outcome: "running", Path: json.RawMessage(`[]`)}
	}
	w.recs[recAlice] = controller.Recording{ID: recAlice, TenantID: tenantA, CallID: callAlice, Status: "sealed", Size: 4}
	w.recs[recBob] = controller.Recording{ID: recBob, TenantID: tenantA, CallID: callBob, Status: "sealed", Size: 4}
	w.consents[consentA] = controller.Consent{ID: consentA, TenantID: tenantA, Number: numberA, Purpose: controller.PurposeMarketing, Source: "api"}
	w.refusals[refusalA] = controller.Refusal{ID: refusalA, Number: numberA, Source: "api"}
	w.refusalTenant[refusalA] = tenantA
	w.lists[listA] = controller.DNCList{ID: listA, TenantID: tenantA, Name: "acme internal", Kind: "internal"}
	w.lists["national"] = controller.DNCList{ID: "national", Name: "National registry", Kind: "national"}
	w.dnc[listA] = []string{numberA}
	w.policies[policyA] = controller.PolicyRecord{ID: policyA, Version: 1, TenantID: tenantA, Name: "acme policy", Body: json.RawMessage(`{}`)}
	w.policies["lab"] = controller.PolicyRecord{ID: "lab", Version: 1, Name: "preset", Body: json.RawMessage(`{}`)}
	w.callerIDs[tenantA] = []string{callerA}
	w.flows[tenantA+"/"+flowA] = controller.FlowRecord{ID: flowA, TenantID: tenantA, Name: "acme flow", Version: 1, Body: json.RawMessage(`{}`)}
	w.prompts[tenantA+"/"+promptA] = controller.Prompt{ID: promptA + ".v1", TenantID: tenantA, Name: promptA, Version: 1, Text: "acme says hi"}
	_, _ = w.audit.AppendAudit(context.Background(), controller.AuditEntry{TenantID: tenantA, Action: "POST /v1/calls", Target: string(callAlice), Outcome: "ok"})
	return w
}

func (w *world) Admin() controller.ComplianceAdmin { return w }

// CallService.

func (w *world) CreateCall(_ context.Context, req controller.CreateCallRequest) (controller.Call, bool, error) {
	c := controller.Call{ID: newUUID(), TenantID: req.TenantID, AgentID: req.AgentID, To: req.To, From: req.From,
		State: controller.CallQueued, CreatedAt: fixedTime, UpdatedAt: fixedTime}
	w.calls[c.ID] = c
	return c, true, nil
}

func (w *world) GetCall(_ context.Context, tenant string, id controller.CallID) (controller.Call, error) {
	c, ok := w.calls[id]
	if !ok || c.TenantID != tenant {
		return controller.Call{}, errNF
	}
	return c, nil
}

func (w *world) ListCalls(_ context.Context, f controller.CallFilter) (controller.CallPage, error) {
	page := controller.CallPage{Calls: []controller.Call{}}
	for _, c := range w.calls {
		if c.TenantID == f.TenantID && (f.AgentID == "" || c.AgentID == f.AgentID) {
			page.Calls = append(page.Calls, c)
		}
	}
	return page, nil
}

func (w *world) CallEvents(ctx context.Context, tenant string, id controller.CallID) ([]controller.CallEventRecord, error) {
	_, err := w.GetCall(ctx, tenant, id)
	return nil, err
}

func (w *world) TagCall(_ context.Context, tenant string, id controller.CallID, tags map[string]string, disposition string) (controller.Call, error) {
	c, ok := w.calls[id]
	if !ok || c.TenantID != tenant {
		return controller.Call{}, errNF
	}
	if c.Tags == nil {
		c.Tags = map[string]string{}
	}
	for k, v := range tags {
		c.Tags[k] = v
	}
	if disposition != "" {
		c.Disposition = disposition
	}
	w.calls[id] = c
	return c, nil
}

func (w *world) HangupCall(ctx context.Context, tenant string, id controller.CallID, _ string) (controller.Call, error) {
	c, err := w.GetCall(ctx, tenant, id)
	if err != nil {
		return c, err
	}
	c.State = controller.CallCanceled
	w.calls[id] = c
	return c, nil
}

func (w *world) Switches(context.Context) []controller.SwitchStatus {
	return []controller.SwitchStatus{{Name: "fs1"}}
}

func (w *world) Ready(context.Context) error { return nil }

func (w *world) CheckCompliance(_ context.Context, req controller.CheckRequest) (controller.Decision, error) {
	return controller.Decision{Allow: true, Stage: controller.StageCreate, Number: req.To}, nil
}

func (w *world) GetAttempt(ctx context.Context, tenant string, id controller.CallID) (controller.Attempt, error) {
	c, err := w.GetCall(ctx, tenant, id)
	if err != nil {
		return controller.Attempt{}, err
	}
	return controller.Attempt{ID: 1, CallID: c.ID, TenantID: tenant, Status: "queued"}, nil
}

// ComplianceAdmin.

func (w *world) CreateConsent(_ context.Context, tenant string, c controller.Consent) (controller.Consent, error) {
	c.ID, c.TenantID = "new-consent", tenant
	w.consents[c.ID] = c
	return c, nil
}

func (w *world) GetConsent(_ context.Context, tenant, id string) (controller.Consent, error) {
	c, ok := w.consents[id]
	if !ok || c.TenantID != tenant {
		return c, errNF
	}
	return c, nil
}

func (w *world) RevokeConsent(ctx context.Context, tenant, id string) (controller.Consent, error) {
	c, err := w.GetConsent(ctx, tenant, id)
	if err == nil {
		now := fixedTime
		c.RevokedAt = &now
		w.consents[id] = c
	}
	return c, err
}

func (w *world) ListConsents(_ context.Context, tenant, number string) ([]controller.Consent, error) {
	var out []controller.Consent
	for _, c := range w.consents {
		if c.TenantID == tenant && c.Number == number {
			out = append(out, c)
		}
	}
	return out, nil
}

func (w *world) LockNumber(_ context.Context, tenant string, req controller.RefusalRequest) (controller.RefusalLock, error) {
	r := controller.Refusal{ID: "new-refusal", Number: req.Number, Source: "api", At: fixedTime}
	w.refusals[r.ID] = r
	w.refusalTenant[r.ID] = tenant
	return controller.RefusalLock{Refusal: r}, nil
}

// ListRefusals: refusals are global (a person's), as in the real store.
func (w *world) ListRefusals(_ context.Context, number string) ([]controller.Refusal, error) {
	var out []controller.Refusal
	for _, r := range w.refusals {
		if r.Number == number {
			out = append(out, r)
		}
	}
	return out, nil
}

func (w *world) LiftRefusal(_ context.Context, tenant, id string) (controller.Refusal, error) {
	r, ok := w.refusals[id]
	if !ok || w.refusalTenant[id] != tenant {
		return controller.Refusal{}, errNF
	}
	return r, nil
}

func (w *world) CreateDNCList(_ context.Context, tenant string, l controller.DNCList) (controller.DNCList, error) {
	l.TenantID = tenant
	w.lists[l.ID] = l
	return l, nil
}

func (w *world) ListDNCLists(_ context.Context, tenant string) ([]controller.DNCList, error) {
	var out []controller.DNCList
	for _, l := range w.lists {
		if l.TenantID == tenant || l.TenantID == "" {
			out = append(out, l)
		}
	}
	return out, nil
}

// ownList is the real service's rule: the tenant's own list, never a global one.
func (w *world) ownList(tenant, id string) error {
	l, ok := w.lists[id]
	switch {
	case !ok || (l.TenantID != tenant && l.TenantID != ""):
		return errNF
	case l.TenantID != tenant:
		return controller.Errorf(controller.EFORBIDDEN, "global list")
	}
	return nil
}

func (w *world) AddDNCNumber(_ context.Context, tenant, listID, number string) (string, bool, error) {
	if err := w.ownList(tenant, listID); err != nil {
		return "", false, err
	}
	w.dnc[listID] = append(w.dnc[listID], number)
	return number, true, nil
}

func (w *world) RemoveDNCNumber(_ context.Context, tenant, listID, number string) error {
	if err := w.ownList(tenant, listID); err != nil {
		return err
	}
	if !slices.Contains(w.dnc[listID], number) {
		return errNF
	}
	return nil
}

func (w *world) MarkDNCScrubbed(_ context.Context, tenant, listID string) (controller.DNCList, error) {
	return w.lists[listID], w.ownList(tenant, listID)
}

func (w *world) ImportDNC(_ context.Context, tenant, listID string, r io.Reader, _ controller.DNCImport) (controller.DNCImportResult, error) {
	res := controller.DNCImportResult{ListID: listID, RejectedRows: []controller.DNCRowError{}}
	if err := w.ownList(tenant, listID); err != nil {
		return res, err
	}
	_, err := io.Copy(io.Discard, r)
	return res, err
}

func (w *world) AddCallerID(_ context.Context, tenant, number string) (string, error) {
	w.callerIDs[tenant] = append(w.callerIDs[tenant], number)
	return number, nil
}

func (w *world) RemoveCallerID(_ context.Context, tenant, number string) error {
	if !slices.Contains(w.callerIDs[tenant], number) {
		return errNF
	}
	return nil
}

func (w *world) ListCallerIDs(_ context.Context, tenant string) ([]string, error) {
	return w.callerIDs[tenant], nil
}

func (w *world) PutPolicy(_ context.Context, tenant, id string, body json.RawMessage) (controller.PolicyRecord, error) {
	if p, ok := w.policies[id]; ok && p.TenantID != tenant {
		return p, controller.Errorf(controller.ECONFLICT, "policy id belongs to another tenant")
	}
	p := controller.PolicyRecord{ID: id, Version: 2, TenantID: tenant, Body: body}
	w.policies[id] = p
	return p, nil
}

func (w *world) GetPolicy(_ context.Context, tenant, id string, _ int) (controller.PolicyRecord, error) {
	p, ok := w.policies[id]
	if !ok || (p.TenantID != tenant && p.TenantID != "") {
		return p, errNF
	}
	return p, nil
}

func (w *world) DeletePolicy(_ context.Context, tenant, id string) error {
	if p, ok := w.policies[id]; !ok || p.TenantID != tenant {
		return errNF
	}
	delete(w.policies, id)
	return nil
}

func (w *world) ListPolicies(_ context.Context, tenant string) ([]controller.PolicyRecord, error) {
	var out []controller.PolicyRecord
	for _, p := range w.policies {
		if p.TenantID == tenant || p.TenantID == "" {
			out = append(out, p)
		}
	}
	return out, nil
}

func (w *world) AssignPolicy(ctx context.Context, tenant string, a controller.PolicyAssignment) error {
	_, err := w.GetPolicy(ctx, tenant, a.PolicyID, 0)
	return err
}

// FlowAdmin.

func (w *world) SaveFlow(_ context.Context, tenant, id string, body []byte) (controller.FlowRecord, []controller.FlowProblem, error) {
	f := controller.FlowRecord{ID: id, TenantID: tenant, Version: 1, Body: body}
	w.flows[tenant+"/"+id] = f
	return f, nil, nil
}

func (w *world) ValidateFlow(context.Context, string, []byte) ([]controller.FlowProblem, error) {
	return nil, nil
}

func (w *world) GetFlow(_ context.Context, tenant, id string, _ int) (controller.FlowRecord, error) {
	f, ok := w.flows[tenant+"/"+id]
	if !ok {
		return f, errNF
	}
	return f, nil
}

func (w *world) ListFlows(_ context.Context, tenant string) ([]controller.FlowRecord, error) {
	var out []controller.FlowRecord
	for _, f := range w.flows {
		if f.TenantID == tenant {
			out = append(out, f)
		}
	}
	return out, nil
}

func (w *world) FlowRun(_ context.Context, tenant string, call controller.CallID) (controller.FlowRun, error) {
	r, ok := w.runs[call]
	if !ok || r.TenantID != tenant {
		return r, errNF
	}
	return r, nil
}

func (w *world) UploadPrompt(_ context.Context, p controller.Prompt, wav io.Reader) (controller.Prompt, error) {
	if _, err := io.Copy(io.Discard, wav); err != nil {
		return p, err
	}
	p.ID, p.Version = p.Name+".v1", 1
	w.prompts[p.TenantID+"/"+p.Name] = p
	return p, nil
}

func (w *world) GetPrompt(_ context.Context, tenant, name string, _ int) (controller.Prompt, error) {
	p, ok := w.prompts[tenant+"/"+name]
	if !ok {
		return p, errNF
	}
	return p, nil
}

func (w *world) ListPrompts(_ context.Context, tenant string) ([]controller.Prompt, error) {
	var out []controller.Prompt
	for _, p := range w.prompts {
		if p.TenantID == tenant {
			out = append(out, p)
		}
	}
	return out, nil
}

// RecordingAdmin.

func (w *world) GetRecording(_ context.Context, tenant, id string) (controller.Recording, error) {
	r, ok := w.recs[id]
	if !ok || r.TenantID != tenant {
		return r, errNF
	}
	return r, nil
}

func (w *world) ListRecordings(ctx context.Context, tenant string, call controller.CallID) ([]controller.Recording, error) {
	if _, err := w.GetCall(ctx, tenant, call); err != nil {
		return nil, err
	}
	var out []controller.Recording
	for _, r := range w.recs {
		if r.CallID == call {
			out = append(out, r)
		}
	}
	return out, nil
}

func (w *world) OpenRecording(ctx context.Context, tenant, id string) (controller.Recording, io.ReadCloser, error) {
	r, err := w.GetRecording(ctx, tenant, id)
	if err != nil {
		return r, nil, err
	}
	return r, io.NopCloser(strings.NewReader("RIFF")), nil
}

func (w *world) PauseRecording(ctx context.Context, tenant string, call controller.CallID) error {
	_, err := w.GetCall(ctx, tenant, call)
	return err
}

func (w *world) ResumeRecording(ctx context.Context, tenant string, call controller.CallID) error {
	return w.PauseRecording(ctx, tenant, call)
}

// TraceExporter: the tenant's calls, as the real store exports them.
func (w *world) ExportTrace(_ context.Context, tenant string, from, to time.Time, fn func(controller.TraceRow) error) error {
	if !from.Before(to) {
		return controller.FieldError("from", "must be before to")
	}
	ids := slices.Sorted(func(yield func(controller.CallID) bool) {
		for id := range w.calls {
			if !yield(id) {
				return
			}
		}
	})
	for _, id := range ids {
		c := w.calls[id]
		if c.TenantID != tenant || c.CreatedAt.Before(from) || !c.CreatedAt.Before(to) {
			continue
		}
		var recs []string
		for _, r := range w.recs {
			if r.CallID == c.ID {
				recs = append(recs, r.ID)
			}
		}
		if err := fn(controller.TraceRow{CallID: c.ID, TenantID: c.TenantID, Source: "api", CreatedAt: c.CreatedAt,
			EndedAt: c.EndedAt, To: c.To, CallerID: c.From, Purpose: string(c.Purpose), State: c.State, HangupCause: c.HangupCause, Decision: c.Decision,
			ConsentIDs: []string{}, RecordingIDs: recs}); err != nil {
			return err
		}
	}
	return nil
}
