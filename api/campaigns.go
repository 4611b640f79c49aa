package api

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/callgate/callgate/controller"
)

// Campaigns and lead lists, over a controller.CampaignService.
//
// Every route is admin only: a campaign is administration, like compliance
// data, and agents and QA reach its calls through the call routes. The
// responses still go through the number view (privacy.go) — leads' numbers,
// caller IDs, attempts as calls — so opening a read to another role shows it
// masked without touching the handlers.

// Bounds of GET /v1/campaigns/{id}/leads (controller/dialer checks the same).
const maxLeadPage = 1000

var errNoCampaigns = controller.Errorf(controller.EUNAVAILABLE, "campaigns are not enabled on this controller")

// SetCampaigns connects the campaign and lead list administration (nil:
// its routes answer 503). Call it before serving.
func (s *Server) SetCampaigns(cs controller.CampaignService) { s.campaigns = cs }

// campaignActions are the state changes, one route each (POST
// /v1/campaigns/{id}/start…), so the audit log names the action.
var campaignActions = []controller.CampaignTransition{controller.CampaignStart, controller.CampaignPause,
	controller.CampaignResume, controller.CampaignStop, controller.CampaignArchive}

// registerCampaigns adds the campaign, lead list and lead import routes.
// They are always registered (so the OpenAPI document is exact).
func (s *Server) registerCampaigns(limit echo.MiddlewareFunc) {
	s.route(http.MethodPost, "/v1/campaigns", s.createCampaign, allow(admin), limit)
	s.route(http.MethodGet, "/v1/campaigns", s.listCampaigns, allow(admin))
	s.route(http.MethodGet, "/v1/campaigns/:id", s.getCampaign, allow(admin))
	s.route(http.MethodPut, "/v1/campaigns/:id", s.updateCampaign, allow(admin), limit)
	for _, t := range campaignActions {
		s.route(http.MethodPost, "/v1/campaigns/:id/"+string(t), s.transitionCampaign(t), allow(admin), limit)
	}
	s.route(http.MethodGet, "/v1/campaigns/:id/leads", s.campaignLeads, allow(admin))
	s.route(http.MethodGet, "/v1/campaigns/:id/leads/:lead_id/attempts", s.leadAttempts, allow(admin))
	s.route(http.MethodPost, "/v1/campaigns/:id/recycle", s.recycleLeads, allow(admin), limit)
	s.route(http.MethodGet, "/v1/campaigns/:id/stats", s.campaignStats, allow(admin))
	s.route(http.MethodPost, "/v1/lead-lists", s.createLeadList, allow(admin), limit)
	s.route(http.MethodGet, "/v1/lead-lists/:id", s.getLeadList, allow(admin))
	s.route(http.MethodPost, leadImportPath, s.importLeads, allow(admin), s.limitLeadImport)
	s.route(http.MethodGet, "/v1/lead-imports/:id", s.getLeadImport, allow(admin))
}

// campaignCall returns the campaign service for a request, after checking
// its query parameters against those allowed. Returns EUNAVAILABLE without
// one, EINVALID for an unexpected parameter.
func (s *Server) campaignCall(c echo.Context, query ...string) (controller.CampaignService, error) {
	if s.campaigns == nil {
		return nil, errNoCampaigns
	}
	return s.campaigns, checkQuery(c.QueryParams(), query...)
}

// campaignCallOn is campaignCall for a route whose path names one campaign,
// lead list or import (what): the service and the ID of ":id".
func (s *Server) campaignCallOn(c echo.Context, what string, query ...string) (controller.CampaignService, string, error) {
	cs, err := s.campaignCall(c, query...)
	if err != nil {
		return nil, "", err
	}
	id, err := uuidParam(c, "id", what)
	return cs, id, err
}

// uuidParam returns the path parameter param if it can name a campaign,
// lead list or import: their IDs are UUIDs, like call IDs. Anything else is
// ENOTFOUND for what, without asking the service.
func uuidParam(c echo.Context, param, what string) (string, error) {
	v := c.Param(param)
	if !validCallID(v) {
		return "", controller.Errorf(controller.ENOTFOUND, "%s not found", what)
	}
	return v, nil
}

// campaignFields are the settings POST /v1/campaigns and PUT
// /v1/campaigns/{id} accept.
var campaignFields = []string{"name", "mode", "flow_id", "purpose", "caller_ids", "caller_id_name", "switch",
	"list_ids", "target", "max_concurrent", "max_cps", "max_attempts", "retry", "schedule", "ring_seconds",
	"variants", "conversion_dispositions"}

// campaignReadOnly are the members of a campaign as GET shows it that the
// server sets: a body carrying one is refused with its name, not ignored.
var campaignReadOnly = []string{"id", "tenant_id", "state", "created_at", "updated_at", "started_at", "ended_at",
	"counters", "dialling", "idle", "detail"}

// retryFields, scheduleFields and variantFields are the members of a
// retry rule, a schedule and an A/B test variant.
var (
	retryFields    = []string{"delay_seconds", "max"}
	scheduleFields = []string{"start", "stop", "time_zone"}
	variantFields  = []string{"name", "flow_id", "weight"}
)

// readCampaign reads a campaign's settings from the body. The service
// checks their values; here only their JSON types, that retry is keyed by
// outcomes, and that nothing the server sets is given.
func readCampaign(c echo.Context) (controller.Campaign, error) {
	var in controller.Campaign
	obj, err := readObject(c, false, slices.Concat(campaignFields, campaignReadOnly)...)
	if err != nil {
		return in, err
	}
	for _, k := range campaignReadOnly {
		if _, ok := obj[k]; ok {
			return in, controller.FieldError(k, "is set by the server: leave it out")
		}
	}
	var mode, purpose string
	if err := firstErr(
		obj.str("name", &in.Name),
		obj.str("mode", &mode),
		obj.str("flow_id", &in.FlowID),
		obj.str("purpose", &purpose),
		obj.stringList("caller_ids", &in.CallerIDs),
		obj.str("caller_id_name", &in.CallerIDName),
		obj.str("switch", &in.Switch),
		obj.stringList("list_ids", &in.ListIDs),
		obj.str("target", &in.Target),
		obj.integer("max_concurrent", &in.MaxConcurrent),
		obj.float("max_cps", &in.MaxCPS),
		obj.integer("max_attempts", &in.MaxAttempts),
		obj.integer("ring_seconds", &in.RingSeconds),
		obj.stringList("conversion_dispositions", &in.ConversionDispositions),
	); err != nil {
		return in, err
	}
	in.Mode, in.Purpose = controller.DialMode(mode), controller.Purpose(purpose)
	if in.Retry, err = readRetry(obj); err != nil {
		return in, err
	}
	if in.Variants, err = readVariants(obj); err != nil {
		return in, err
	}
	sched, err := obj.nested("schedule", func(k string) bool { return slices.Contains(scheduleFields, k) })
	if err != nil {
		return in, err
	}
	err = firstErr(
		sched.str("schedule.start", &in.Schedule.Start),
		sched.str("schedule.stop", &in.Schedule.Stop),
		sched.str("schedule.time_zone", &in.Schedule.TimeZone),
	)
	return in, err
}

// readRetry reads the retry rules, an object keyed by outcome:
// {"busy": {"delay_seconds": 300, "max": 2}}.
func readRetry(obj object) (map[controller.Outcome]controller.RetryRule, error) {
	rules, err := obj.nested("retry", nil)
	if err != nil || rules == nil {
		return nil, err
	}
	out := make(map[controller.Outcome]controller.RetryRule, len(rules))
	for _, field := range slices.Sorted(maps.Keys(rules)) {
		o := controller.Outcome(strings.TrimPrefix(field, "retry."))
		if !slices.Contains(controller.Outcomes, o) {
			return nil, controller.FieldError(field, "not an outcome: retry rules are keyed by outcome (busy, no_answer, …)")
		}
		rule, err := rules.nested(field, func(k string) bool { return slices.Contains(retryFields, k) })
		if err != nil {
			return nil, err
		}
		if rule == nil {
			return nil, controller.FieldError(field, "must be an object: {\"delay_seconds\": …, \"max\": …}")
		}
		var r controller.RetryRule
		if err := firstErr(rule.integer(field+".delay_seconds", &r.DelaySeconds), rule.integer(field+".max", &r.Max)); err != nil {
			return nil, err
		}
		out[o] = r
	}
	return out, nil
}

// readVariants reads the A/B test variants, an array of objects:
// [{"name": "control", "flow_id": "pitch-a", "weight": 1}, …]. A member is
// reported as variants[i].name.
func readVariants(obj object) ([]controller.Variant, error) {
	raw, ok := obj["variants"]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, controller.FieldError("variants", "must be an array of objects: [{\"name\": …, \"flow_id\": …, \"weight\": …}]")
	}
	out := make([]controller.Variant, 0, len(items))
	for i, item := range items {
		field := fmt.Sprintf("variants[%d]", i)
		if len(item) == 0 || item[0] != '{' {
			return nil, controller.FieldError(field, "must be an object: {\"name\": …, \"flow_id\": …, \"weight\": …}")
		}
		v, err := parseObject(item, field+".", func(k string) bool { return slices.Contains(variantFields, k) })
		if err != nil {
			return nil, err
		}
		var x controller.Variant
		if err := firstErr(v.str(field+".name", &x.Name), v.str(field+".flow_id", &x.FlowID),
			v.integer(field+".weight", &x.Weight)); err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

// createCampaign stores a draft campaign of the token's tenant: 201 with it.
func (s *Server) createCampaign(c echo.Context) error {
	cs, err := s.campaignCall(c)
	if err != nil {
		return err
	}
	in, err := readCampaign(c)
	if err != nil {
		return err
	}
	in.TenantID = tenant(c)
	out, err := cs.CreateCampaign(c.Request().Context(), in)
	if err != nil {
		return err
	}
	c.Set(ctxKeyAuditDetail, "campaign "+out.ID)
	c.Response().Header().Set(echo.HeaderLocation, "/v1/campaigns/"+url.PathEscape(out.ID))
	return c.JSON(http.StatusCreated, viewOf(c).campaign(out))
}

// updateCampaign replaces a draft or paused campaign's settings: 200 with
// it; 409 once it runs or has ended.
func (s *Server) updateCampaign(c echo.Context) error {
	cs, id, err := s.campaignCallOn(c, "campaign")
	if err != nil {
		return err
	}
	in, err := readCampaign(c)
	if err != nil {
		return err
	}
	in.ID, in.TenantID = id, tenant(c)
	out, err := cs.UpdateCampaign(c.Request().Context(), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewOf(c).campaign(out))
}

// getCampaign returns a campaign with its counters and why it is not
// dialling.
func (s *Server) getCampaign(c echo.Context) error {
	cs, id, err := s.campaignCallOn(c, "campaign")
	if err != nil {
		return err
	}
	st, err := cs.Campaign(c.Request().Context(), tenant(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewOf(c).campaignStatus(st))
}

// listCampaigns returns the tenant's campaigns, newest first; archived ones
// only with ?archived=true.
func (s *Server) listCampaigns(c echo.Context) error {
	cs, err := s.campaignCall(c, "archived")
	if err != nil {
		return err
	}
	archived := false
	switch v := c.QueryParam("archived"); v {
	case "", "false":
	case "true":
		archived = true
	default:
		return controller.FieldError("archived", "must be true or false")
	}
	list, err := cs.Campaigns(c.Request().Context(), tenant(c), archived)
	return listed(c, "campaigns", viewOf(c).campaigns(list), err)
}

// transitionCampaign answers POST /v1/campaigns/{id}/{t}: 200 with the
// campaign in its new state; 409 when t is not allowed from its state.
func (s *Server) transitionCampaign(t controller.CampaignTransition) echo.HandlerFunc {
	return func(c echo.Context) error {
		cs, id, err := s.campaignCallOn(c, "campaign")
		if err != nil {
			return err
		}
		if _, err := readObject(c, true); err != nil { // no body, or an empty JSON object
			return err
		}
		out, err := cs.TransitionCampaign(c.Request().Context(), tenant(c), id, t)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, viewOf(c).campaign(out))
	}
}

// leadPage is the body of GET /v1/campaigns/{id}/leads.
type leadPage struct {
	Leads []controller.CampaignLead `json:"leads"`
	// NextAfter is the after= of the next page: the last lead's ID (the
	// request's after when the page is empty).
	NextAfter int64 `json:"next_after"`
}

// campaignLeads returns a page of a campaign's leads in lead ID order,
// after ?after= (a lead ID, default 0), at most ?limit= (1..1000, default
// 100), only those in ?status= (pending, dialling or done) if given.
func (s *Server) campaignLeads(c echo.Context) error {
	cs, id, err := s.campaignCallOn(c, "campaign", "status", "after", "limit")
	if err != nil {
		return err
	}
	q := c.QueryParams()
	status := q.Get("status")
	switch status {
	case "", "pending", "dialling", "done":
	default:
		return controller.FieldError("status", "must be pending, dialling or done")
	}
	var after int64
	if v := q.Get("after"); v != "" {
		if after, err = wholeNumber("after", v, 0, math.MaxInt64); err != nil {
			return err
		}
	}
	limit := 0 // the service's default
	if v := q.Get("limit"); v != "" {
		n, err := wholeNumber("limit", v, 1, maxLeadPage)
		if err != nil {
			return err
		}
		limit = int(n)
	}
	leads, err := cs.CampaignLeads(c.Request().Context(), tenant(c), id, status, after, limit)
	if err != nil {
		return err
	}
	page := leadPage{Leads: viewOf(c).campaignLeads(orEmpty(leads)), NextAfter: after}
	if n := len(leads); n > 0 {
		page.NextAfter = leads[n-1].ID
	}
	return c.JSON(http.StatusOK, page)
}

// leadAttempts returns the calls a campaign placed to one of its leads,
// oldest first, shown as GET /v1/calls shows calls.
func (s *Server) leadAttempts(c echo.Context) error {
	cs, id, err := s.campaignCallOn(c, "campaign")
	if err != nil {
		return err
	}
	lead, err := wholeNumber("lead_id", c.Param("lead_id"), 1, math.MaxInt64)
	if err != nil {
		return controller.Errorf(controller.ENOTFOUND, "lead not found") // no lead has such an ID
	}
	calls, err := cs.LeadAttempts(c.Request().Context(), tenant(c), id, lead)
	if err != nil {
		return err
	}
	out := CallList{Calls: make([]CallResource, 0, len(calls))}
	view := viewOf(c)
	for _, call := range calls {
		out.Calls = append(out.Calls, view.call(NewCallResource(call, nil)))
	}
	return c.JSON(http.StatusOK, out)
}

// campaignStats returns a campaign's results, overall and per A/B test
// variant, and its call metrics. They hold counts, rates, variant names
// and block reasons, never a number: no view applies.
func (s *Server) campaignStats(c echo.Context) error {
	cs, id, err := s.campaignCallOn(c, "campaign")
	if err != nil {
		return err
	}
	st, err := cs.CampaignStats(c.Request().Context(), tenant(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

// recycled is the body of POST /v1/campaigns/{id}/recycle.
type recycled struct {
	Recycled int `json:"recycled"` // leads put back to pending
}

// recycleLeads puts a campaign's done leads whose last outcome is one of
// "outcomes" back to pending with their attempts reset: 200 with how many.
func (s *Server) recycleLeads(c echo.Context) error {
	cs, id, err := s.campaignCallOn(c, "campaign")
	if err != nil {
		return err
	}
	obj, err := readObject(c, false, "outcomes")
	if err != nil {
		return err
	}
	var names []string
	if err := obj.stringList("outcomes", &names); err != nil {
		return err
	}
	if len(names) == 0 {
		return controller.FieldError("outcomes", "is required: the last outcomes of the leads to call again, such as [\"no_answer\", \"busy\"]")
	}
	outcomes := make([]controller.Outcome, len(names))
	for i, n := range names {
		outcomes[i] = controller.Outcome(n)
		if !slices.Contains(controller.Outcomes, outcomes[i]) {
			return controller.FieldError(fmt.Sprintf("outcomes[%d]", i), "not an outcome (busy, no_answer, …)")
		}
	}
	n, err := cs.RecycleLeads(c.Request().Context(), tenant(c), id, outcomes)
	if err != nil {
		return err
	}
	c.Set(ctxKeyAuditDetail, fmt.Sprintf("%d leads recycled", n))
	return c.JSON(http.StatusOK, recycled{Recycled: n})
}
