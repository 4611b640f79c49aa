package api

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/callgate/callgate/controller"
)

// maxListLimit is the largest page GET /v1/calls returns.
const maxListLimit = 200

// CallResource is a call as the API shows it.
type CallResource struct {
	ID             controller.CallID            `json:"id"`
	State          controller.CallState         `json:"state"`
	To             string                       `json:"to"`
	From           string                       `json:"from"`
	CallerIDName   string                       `json:"caller_id_name,omitempty"`
	Purpose        controller.Purpose           `json:"purpose,omitempty"`
	FlowID         string                       `json:"flow_id,omitempty"`
	Tags           map[string]string            `json:"tags,omitempty"`
	Disposition    string                       `json:"disposition,omitempty"`
	AgentID        string                       `json:"agent_id,omitempty"` // the agent the call is assigned to
	Switch         string                       `json:"switch,omitempty"`
	Trunk          string                       `json:"trunk,omitempty"` // the switch's trunk a routing rule chose; empty: its default
	TimeoutSeconds int                          `json:"timeout_seconds,omitzero"`
	Variables      map[string]string            `json:"variables,omitempty"`
	HangupCause    string                       `json:"hangup_cause,omitempty"`
	SIPStatus      int                          `json:"sip_status,omitempty"`
	Billsec        int                          `json:"billsec"`
	Duration       int                          `json:"duration"`
	Reconciled     bool                         `json:"reconciled,omitempty"`
	CreatedAt      time.Time                    `json:"created_at"`
	UpdatedAt      time.Time                    `json:"updated_at"`
	AnsweredAt     *time.Time                   `json:"answered_at,omitempty"`
	EndedAt        *time.Time                   `json:"ended_at,omitempty"`
	Decision       *controller.Decision         `json:"decision,omitempty"` // the compliance gate's, on creation
	Events         []controller.CallEventRecord `json:"events,omitzero"`    // only with ?include=events
}

// NewCallResource renders c; events, when not nil, are included.
func NewCallResource(c controller.Call, events []controller.CallEventRecord) CallResource {
	return CallResource{
		ID:             c.ID,
		State:          c.State,
		To:             c.To,
		From:           c.From,
		CallerIDName:   c.CallerIDName,
		Purpose:        c.Purpose,
		FlowID:         c.FlowID,
		Tags:           c.Tags,
		Disposition:    c.Disposition,
		AgentID:        c.AgentID,
		Decision:       c.Decision,
		Switch:         c.Switch,
		Trunk:          c.Trunk,
		TimeoutSeconds: int(c.Timeout / time.Second),
		Variables:      c.Variables,
		HangupCause:    c.HangupCause,
		SIPStatus:      c.SIPStatus,
		Billsec:        c.Billsec,
		Duration:       c.Duration,
		Reconciled:     c.Reconciled,
		CreatedAt:      c.CreatedAt,
		UpdatedAt:      c.UpdatedAt,
		AnsweredAt:     c.AnsweredAt,
		EndedAt:        c.EndedAt,
		Events:         events,
	}
}

// CallList is the body of GET /v1/calls.
type CallList struct {
	Calls      []CallResource `json:"calls"`
	NextCursor string         `json:"next_cursor,omitempty"` // absent on the last page
}

// EventList is the body of GET /v1/calls/{id}/events.
type EventList struct {
	Events []controller.CallEventRecord `json:"events"`
}

// createCallFields are the members POST /v1/calls accepts.
var createCallFields = []string{"to", "from", "caller_id_name", "purpose", "flow_id", "switch", "timeout_seconds", "variables", "agent_id"}

// createCall queues a call: 202 with the call, or 200 with the call first
// created under the same Idempotency-Key.
func (s *Server) createCall(c echo.Context) error {
	if err := checkQuery(c.QueryParams()); err != nil {
		return err
	}
	key, err := idempotencyKey(c.Request().Header)
	if err != nil {
		return err
	}
	obj, err := readObject(c, false, createCallFields...)
	if err != nil {
		return err
	}
	req := controller.CreateCallRequest{TenantID: tenant(c), IdempotencyKey: key}
	var agentID string
	var purpose string
	for _, err := range []error{
		obj.str("purpose", &purpose),
		obj.str("flow_id", &req.FlowID),
		obj.str("to", &req.To),
		obj.str("from", &req.From),
		obj.str("caller_id_name", &req.CallerIDName),
		obj.str("switch", &req.Switch),
		obj.integer("timeout_seconds", &req.TimeoutSeconds),
		obj.stringMap("variables", &req.Variables),
		obj.str("agent_id", &agentID),
	} {
		if err != nil {
			return err
		}
	}
	req.Purpose = controller.Purpose(purpose)
	if err := checkCallRequest(req, agentID); err != nil {
		return err
	}
	// An agent's calls are assigned to them; an admin may assign a call
	// to an agent.
	req.AgentID = agentID
	if own := agentOnly(c); own != "" {
		if agentID != "" && agentID != own {
			c.Set(ctxKeyDenied, true)
			return &controller.Error{Code: controller.EFORBIDDEN, Field: "agent_id", Message: "an agent places calls only for themselves"}
		}
		req.AgentID = own
	}

	call, created, err := s.svc.CreateCall(c.Request().Context(), req)
	if err != nil {
		return err
	}
	if err := checkAgent(c, call); err != nil { // an idempotent replay of another agent's call
		return err
	}
	s.requestLogger(c).Info("call accepted",
		"call_id", call.ID, "to", maskPhone(call.To), "switch", call.Switch, "replayed", !created)

	h := c.Response().Header()
	h.Set(echo.HeaderLocation, callPath(call.ID))
	status := http.StatusAccepted
	if !created {
		status = http.StatusOK
		h.Set("Idempotent-Replayed", "true")
	}
	return c.JSON(status, viewOf(c).call(NewCallResource(call, nil)))
}

// maxTimeoutSeconds bounds timeout_seconds: the service's own maximum
// (300 s by default) is lower.
const maxTimeoutSeconds = 3600

// checkCallRequest checks the form of every member of a call request and
// the agent_id given: a number, a caller ID, the purpose, names of a flow,
// switch and agent, the timeout and the variables. Whether the number is
// valid in its region, the switch exists or a variable is allowed is the
// service's to say.
func checkCallRequest(req controller.CreateCallRequest, agentID string) error {
	if req.To == "" {
		return controller.FieldError("to", "is required")
	}
	if err := checkPhone("to", req.To); err != nil {
		return err
	}
	if req.From != "" {
		if err := checkCallerID("from", req.From); err != nil {
			return err
		}
	}
	if err := checkText("caller_id_name", req.CallerIDName, 64); err != nil {
		return err
	}
	if err := checkPurpose("purpose", req.Purpose); err != nil {
		return err
	}
	if req.FlowID != "" && !nameRE.MatchString(req.FlowID) {
		return controller.FieldError("flow_id", "must be a flow ID: 1 to 63 lower-case letters, digits, _ or -, starting with a letter or digit")
	}
	if req.Switch != "" {
		if err := checkSwitchName("switch", req.Switch); err != nil {
			return err
		}
	}
	if req.TimeoutSeconds < 0 || req.TimeoutSeconds > maxTimeoutSeconds {
		return controller.FieldError("timeout_seconds", "must be from 0 (the default) to %d", maxTimeoutSeconds)
	}
	if agentID != "" {
		if err := checkID("agent_id", agentID); err != nil {
			return err
		}
	}
	return checkVariables(req.Variables)
}

// maxVariables and maxVariableBytes bound a call's channel variables.
const (
	maxVariables     = 32
	maxVariableBytes = 256
)

// checkVariables checks the form of channel variables: at most 32, names
// of varNameRE's form, values plain text of at most 256 bytes.
func checkVariables(vars map[string]string) error {
	if len(vars) > maxVariables {
		return controller.FieldError("variables", "at most %d variables", maxVariables)
	}
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if !varNameRE.MatchString(k) {
			return controller.FieldError("variables", "variable names must match %s", varNameRE)
		}
		if err := checkText("variables."+k, vars[k], maxVariableBytes); err != nil {
			return err
		}
	}
	return nil
}

// getCall returns one call, with its events when ?include=events.
func (s *Server) getCall(c echo.Context) error {
	if err := checkQuery(c.QueryParams(), "include"); err != nil {
		return err
	}
	withEvents := false
	switch inc := c.QueryParam("include"); inc {
	case "":
	case "events":
		withEvents = true
	default:
		return controller.FieldError("include", "must be \"events\"")
	}
	id := c.Param("id")
	if !validCallID(id) {
		return errCallNotFound
	}
	ctx := c.Request().Context()
	call, err := s.visibleCall(c, controller.CallID(id))
	if err != nil {
		return err
	}
	var events []controller.CallEventRecord
	if withEvents {
		if events, err = s.svc.CallEvents(ctx, tenant(c), call.ID); err != nil {
			return err
		}
		events = orEmpty(events) // asked for: [] rather than absent
	}
	return c.JSON(http.StatusOK, viewOf(c).call(NewCallResource(call, events)))
}

// callEvents returns a call's CDR events in the switch's order.
func (s *Server) callEvents(c echo.Context) error {
	if err := checkQuery(c.QueryParams()); err != nil {
		return err
	}
	id := c.Param("id")
	if !validCallID(id) {
		return errCallNotFound
	}
	if err := s.scopeToAgent(c); err != nil {
		return err
	}
	events, err := s.svc.CallEvents(c.Request().Context(), tenant(c), controller.CallID(id))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, EventList{Events: viewOf(c).events(orEmpty(events))})
}

// e164ish is the form of a number in a filter: 2 to 15 digits, after a +
// the first not 0.
var e164ish = regexp.MustCompile(`^(\+[1-9][0-9]{1,14}|[0-9]{2,15})$`)

// listFilters are the query parameters GET /v1/calls accepts.
var listFilters = []string{"state", "switch", "to", "created_after", "created_before", "limit", "cursor"}

// listCalls returns one page of calls, newest first, with a Link header
// to the next page.
func (s *Server) listCalls(c echo.Context) error {
	q := c.QueryParams()
	if err := checkQuery(q, listFilters...); err != nil {
		return err
	}
	f := controller.CallFilter{
		TenantID: tenant(c),
		AgentID:  agentOnly(c),
		State:    controller.CallState(q.Get("state")),
		Switch:   q.Get("switch"),
		To:       plusFromQuery(q.Get("to")),
		Cursor:   q.Get("cursor"),
	}
	if f.State != "" && !f.State.Valid() {
		return controller.FieldError("state", "is not a call state")
	}
	for _, name := range []string{"switch", "to", "cursor"} {
		if err := plainText(name, q.Get(name)); err != nil {
			return err
		}
	}
	if f.To != "" && !e164ish.MatchString(f.To) {
		return controller.FieldError("to", "must be a phone number: digits with an optional leading +")
	}
	if f.Switch != "" {
		if err := checkSwitchName("switch", f.Switch); err != nil {
			return err
		}
	}
	if f.Cursor != "" && !cursorRE.MatchString(f.Cursor) {
		return controller.FieldError("cursor", "must be a next_cursor as a page gave it")
	}
	var err error
	if f.CreatedAfter, err = queryTime(q, "created_after"); err != nil {
		return err
	}
	if f.CreatedBefore, err = queryTime(q, "created_before"); err != nil {
		return err
	}
	if !f.CreatedAfter.IsZero() && !f.CreatedBefore.IsZero() && !f.CreatedAfter.Before(f.CreatedBefore) {
		return controller.FieldError("created_before", "must be later than created_after")
	}
	if v := q.Get("limit"); v != "" {
		n, err := wholeNumber("limit", v, 1, maxListLimit)
		if err != nil {
			return err
		}
		f.Limit = int(n)
	}

	page, err := s.svc.ListCalls(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := CallList{Calls: make([]CallResource, 0, len(page.Calls)), NextCursor: page.NextCursor}
	view := viewOf(c)
	for _, call := range page.Calls {
		out.Calls = append(out.Calls, view.call(NewCallResource(call, nil)))
	}
	if page.NextCursor != "" {
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("cursor", page.NextCursor)
		c.Response().Header().Set("Link", "</v1/calls?"+next.Encode()+`>; rel="next"`)
	}
	return c.JSON(http.StatusOK, out)
}

// queryTime parses an RFC 3339 query parameter; absent or empty is zero.
func queryTime(q url.Values, name string) (time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, controller.FieldError(name, "must be an RFC 3339 timestamp such as 2025-01-31T09:00:00Z")
	}
	return t, nil
}

// plusFromQuery restores the leading + of an E.164 number sent unencoded
// in a query string, where it arrives as a space.
func plusFromQuery(v string) string {
	if rest, ok := strings.CutPrefix(v, " "); ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
		return "+" + rest
	}
	return v
}

// hangupFields are the members POST /v1/calls/{id}/hangup accepts.
var hangupFields = []string{"cause"}

// hangupCall cancels a queued call or hangs up a live one: 200 with the
// call when it has ended, 202 when the hangup is sent and the end will
// follow.
func (s *Server) hangupCall(c echo.Context) error {
	if err := checkQuery(c.QueryParams()); err != nil {
		return err
	}
	id := c.Param("id")
	if !validCallID(id) {
		return errCallNotFound
	}
	obj, err := readObject(c, true, hangupFields...)
	if err != nil {
		return err
	}
	var cause string
	if err := obj.str("cause", &cause); err != nil {
		return err
	}
	if cause != "" && !controller.ValidHangupCause(cause) {
		return controller.FieldError("cause", "must be a Q.850 cause name such as NORMAL_CLEARING")
	}
	if err := s.scopeToAgent(c); err != nil {
		return err
	}
	call, err := s.svc.HangupCall(c.Request().Context(), tenant(c), controller.CallID(id), cause)
	if err != nil {
		return err
	}
	status := http.StatusAccepted
	if call.State.Terminal() {
		status = http.StatusOK
	}
	return c.JSON(status, viewOf(c).call(NewCallResource(call, nil)))
}

// tagCall merges tags into a call and sets its disposition: 200 with the
// call. Body {"tags": {"interest": "high"}, "disposition": "callback"}; an
// empty tag value removes the tag.
func (s *Server) tagCall(c echo.Context) error {
	if err := checkQuery(c.QueryParams()); err != nil {
		return err
	}
	id := c.Param("id")
	if !validCallID(id) {
		return errCallNotFound
	}
	obj, err := readObject(c, false, "tags", "disposition")
	if err != nil {
		return err
	}
	var (
		tags        map[string]string
		disposition string
	)
	if err := firstErr(obj.stringMap("tags", &tags), obj.str("disposition", &disposition)); err != nil {
		return err
	}
	if err := controller.CheckTags(tags, disposition); err != nil {
		return err
	}
	if err := s.scopeToAgent(c); err != nil {
		return err
	}
	call, err := s.svc.TagCall(c.Request().Context(), tenant(c), controller.CallID(id), tags, disposition)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewOf(c).call(NewCallResource(call, nil)))
}

// callPath is the URL path of a call.
func callPath(id controller.CallID) string {
	return "/v1/calls/" + url.PathEscape(string(id))
}
