package api

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/callgate/callgate/controller"
)

// Agents, over a controller.AgentService.
//
// An admin creates and manages every agent of the tenant; an auditor may
// list them. An agent-role token reaches one agent, its own (the token's
// agent ID is the agent's id): it reads it, logs in, pauses, logs out and
// ends its wrap-up. That rule is the routes' policy (ownAgent, enforced by
// authorize before the handler runs), so another agent is 404 like another
// tenant's. Responses go through the number view: an agent's endpoint is
// a dial string, whole for admins; for other roles a number in it (a
// gateway dial string can hold one) is masked.

var (
	errNoAgents      = controller.Errorf(controller.EUNAVAILABLE, "agents are not enabled on this controller")
	errAgentNotFound = controller.Errorf(controller.ENOTFOUND, "agent not found")
)

// SetAgents connects the agent registry (nil: its routes answer 503). Call
// it before serving.
func (s *Server) SetAgents(as controller.AgentService) { s.agents = as }

// registerAgents adds the agent routes. They are always registered (so the
// OpenAPI document is exact).
func (s *Server) registerAgents(limit echo.MiddlewareFunc) {
	s.route(http.MethodPost, "/v1/agents", s.createAgent, allow(admin), limit)
	s.route(http.MethodGet, "/v1/agents", s.listAgents, allow(admin, auditor))
	s.route(http.MethodGet, "/v1/agents/:id", s.getAgent, ownAgent(admin, agent))
	s.route(http.MethodPost, "/v1/agents/:id/state", s.setAgentState, ownAgent(admin, agent), limit)
	s.route(http.MethodPost, "/v1/agents/:id/wrapup", s.wrapUpAgent, ownAgent(admin, agent), limit)
	s.route(http.MethodPost, "/v1/agents/:id/preview", s.previewNext, ownAgent(admin, agent), limit)
	s.route(http.MethodPost, "/v1/agents/:id/preview/accept", s.previewAccept, ownAgent(admin, agent), limit)
	s.route(http.MethodPost, "/v1/agents/:id/preview/skip", s.previewSkip, ownAgent(admin, agent), limit)
}

// agentCall returns the agent service for a request, after checking that
// it has no query parameters. Returns EUNAVAILABLE without one, EINVALID
// for a query parameter.
func (s *Server) agentCall(c echo.Context) (controller.AgentService, error) {
	if s.agents == nil {
		return nil, errNoAgents
	}
	return s.agents, checkQuery(c.QueryParams())
}

// agentCallOn is agentCall for a route whose path names one agent: the
// service and the agent's ID.
func (s *Server) agentCallOn(c echo.Context) (controller.AgentService, string, error) {
	as, err := s.agentCall(c)
	if err != nil {
		return nil, "", err
	}
	id, err := uuidParam(c, "id", "agent")
	return as, id, err
}

// agentFields are the settings POST /v1/agents accepts.
var agentFields = []string{"name", "endpoint", "skills", "campaign_ids", "wrap_seconds"}

// agentReadOnly are the members of an agent as GET shows it that the
// server sets: a body carrying one is refused with its name, not ignored.
var agentReadOnly = []string{"id", "tenant_id", "state", "state_since", "call_id", "created_at",
	"calls", "on_call_seconds", "wrap_up_seconds", "logged_in_seconds"}

// readAgent reads a new agent's settings from the body. The service checks
// their values; here only their JSON types, and that nothing the server
// sets is given.
func readAgent(c echo.Context) (controller.Agent, error) {
	var in controller.Agent
	obj, err := readObject(c, false, slices.Concat(agentFields, agentReadOnly)...)
	if err != nil {
		return in, err
	}
	for _, k := range agentReadOnly {
		if _, ok := obj[k]; ok {
			return in, controller.FieldError(k, "is set by the server: leave it out")
		}
	}
	err = firstErr(
		obj.str("name", &in.Name),
		obj.str("endpoint", &in.Endpoint),
		obj.stringList("skills", &in.Skills),
		obj.stringList("campaign_ids", &in.CampaignIDs),
		obj.integer("wrap_seconds", &in.WrapSeconds),
	)
	return in, err
}

// createAgent stores a new agent of the token's tenant, offline: 201 with it.
func (s *Server) createAgent(c echo.Context) error {
	as, err := s.agentCall(c)
	if err != nil {
		return err
	}
	in, err := readAgent(c)
	if err != nil {
		return err
	}
	in.TenantID = tenant(c)
	out, err := as.CreateAgent(c.Request().Context(), in)
	if err != nil {
		return err
	}
	c.Set(ctxKeyAuditDetail, "agent "+out.ID)
	c.Response().Header().Set(echo.HeaderLocation, "/v1/agents/"+url.PathEscape(out.ID))
	return c.JSON(http.StatusCreated, shownAgent(c, out))
}

// listAgents returns the tenant's agents.
func (s *Server) listAgents(c echo.Context) error {
	as, err := s.agentCall(c)
	if err != nil {
		return err
	}
	list, err := as.Agents(c.Request().Context(), tenant(c))
	shown := func(a controller.Agent) controller.Agent { return shownAgent(c, a) }
	return listed(c, "agents", mapAll(list, shown), err)
}

// getAgent returns an agent with its state and time in each state.
func (s *Server) getAgent(c echo.Context) error {
	as, id, err := s.agentCallOn(c)
	if err != nil {
		return err
	}
	out, err := as.Agent(c.Request().Context(), tenant(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, shownAgent(c, out))
}

// setAgentState logs an agent in (available), pauses or logs them out: 200
// with the agent; 409 while they are on a call.
func (s *Server) setAgentState(c echo.Context) error {
	as, id, err := s.agentCallOn(c)
	if err != nil {
		return err
	}
	obj, err := readObject(c, false, "state")
	if err != nil {
		return err
	}
	var state string
	if err := obj.str("state", &state); err != nil {
		return err
	}
	if state == "" {
		return controller.FieldError("state", "is required: available, paused or offline")
	}
	out, err := as.SetAgentState(c.Request().Context(), tenant(c), id, controller.AgentState(state))
	if err != nil {
		return err
	}
	c.Set(ctxKeyAuditDetail, "state "+string(out.State))
	return c.JSON(http.StatusOK, shownAgent(c, out))
}

// wrapUpAgent ends an agent's wrap-up with the call's disposition and
// tags: 200 with the agent, available again; 409 when they are not in
// wrap-up.
func (s *Server) wrapUpAgent(c echo.Context) error {
	as, id, err := s.agentCallOn(c)
	if err != nil {
		return err
	}
	obj, err := readObject(c, false, "disposition", "tags")
	if err != nil {
		return err
	}
	var (
		disposition string
		tags        map[string]string
	)
	if err := firstErr(obj.str("disposition", &disposition), obj.stringMap("tags", &tags)); err != nil {
		return err
	}
	if disposition == "" {
		return controller.FieldError("disposition", "is required: the outcome of the call, such as \"sale\"")
	}
	if err := controller.CheckTags(tags, disposition); err != nil {
		return err
	}
	out, err := as.WrapUp(c.Request().Context(), tenant(c), id, disposition, tags)
	if err != nil {
		return err
	}
	c.Set(ctxKeyAuditDetail, "disposition "+redact(disposition)) // a word, but the log holds no number
	return c.JSON(http.StatusOK, shownAgent(c, out))
}

// shownAgent is an agent as the request's principal sees it, with
// campaign_ids [] (every campaign) rather than null.
func shownAgent(c echo.Context, a controller.Agent) controller.Agent {
	a.CampaignIDs = orEmpty(a.CampaignIDs)
	return viewOf(c).agent(a)
}

// previewAgent returns the service and the agent of a preview route, after
// checking its body is empty or {}.
func (s *Server) previewAgent(c echo.Context) (controller.AgentService, string, error) {
	as, err := s.agentCall(c)
	if err != nil {
		return nil, "", err
	}
	id, err := uuidParam(c, "id", "agent")
	if err != nil {
		return nil, "", err
	}
	if _, err := readObject(c, true); err != nil {
		return nil, "", err
	}
	return as, id, nil
}

// previewNext offers an available agent the next lead of their preview
// campaigns: 200 with the lead (reserved for them, numbers masked for
// every role but admin), 204 when none is due; 409 when the agent is not
// available.
func (s *Server) previewNext(c echo.Context) error {
	as, id, err := s.previewAgent(c)
	if err != nil {
		return err
	}
	lead, ok, err := as.NextPreviewLead(c.Request().Context(), tenant(c), id)
	if err != nil {
		return err
	}
	if !ok {
		return c.NoContent(http.StatusNoContent)
	}
	c.Set(ctxKeyAuditDetail, fmt.Sprintf("offered lead %d of campaign %s", lead.ID, lead.CampaignID))
	lead.CampaignLead = viewOf(c).campaignLead(lead.CampaignLead)
	return c.JSON(http.StatusOK, lead)
}

// previewAccept dials the lead on offer; the answered call is connected to
// the agent: 200 with the lead; 409 when nothing is on offer.
func (s *Server) previewAccept(c echo.Context) error {
	as, id, err := s.previewAgent(c)
	if err != nil {
		return err
	}
	lead, err := as.AcceptPreviewLead(c.Request().Context(), tenant(c), id)
	if err != nil {
		return err
	}
	c.Set(ctxKeyAuditDetail, fmt.Sprintf("accepted lead %d of campaign %s", lead.ID, lead.CampaignID))
	lead.CampaignLead = viewOf(c).campaignLead(lead.CampaignLead)
	return c.JSON(http.StatusOK, lead)
}

// previewSkip gives the lead on offer back, offered again later: 204; 409
// when nothing is on offer.
func (s *Server) previewSkip(c echo.Context) error {
	as, id, err := s.previewAgent(c)
	if err != nil {
		return err
	}
	if err := as.SkipPreviewLead(c.Request().Context(), tenant(c), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
