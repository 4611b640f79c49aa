package api

import (
	"encoding/json"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
)

// importPath is the route of a do-not-call upload: it has its own body
// limit and timeout.
const importPath = "/v1/dnc/lists/:id/import"

// errNoAdmin answers the administration routes when the CallService
// offers no compliance administration.
var errNoAdmin = controller.Errorf(controller.EUNAVAILABLE, "compliance administration is not available")

// adminProvider is what a CallService offers when it can administer
// compliance data (controller/dialer.Service does).
type adminProvider interface {
	Admin() controller.ComplianceAdmin
}

// registerComplianceAdmin adds the compliance administration routes. They
// are always registered (so the OpenAPI document is exact) and answer 503
// when there is no administration behind them.
func (s *Server) registerComplianceAdmin(limit echo.MiddlewareFunc) {
	if p, ok := s.svc.(adminProvider); ok {
		s.admin = p.Admin()
	}
	// Compliance data is administration: admin only. Agents read the
	// tenant's caller IDs (the numbers they may present when placing a call).
	s.route(http.MethodPost, "/v1/consents", s.createConsent, allow(admin), limit)
	s.route(http.MethodGet, "/v1/consents", s.listConsents, allow(admin))
	s.route(http.MethodGet, "/v1/consents/:id", s.getConsent, allow(admin))
	s.route(http.MethodPost, "/v1/consents/:id/revoke", s.revokeConsent, allow(admin), limit)
	s.route(http.MethodPost, "/v1/refusals", s.createRefusal, allow(admin), limit)
	s.route(http.MethodGet, "/v1/refusals", s.listRefusals, allow(admin))
	s.route(http.MethodPost, "/v1/refusals/:id/lift", s.liftRefusal, allow(admin), limit)
	s.route(http.MethodPost, "/v1/dnc/lists", s.createDNCList, allow(admin), limit)
	s.route(http.MethodGet, "/v1/dnc/lists", s.listDNCLists, allow(admin))
	s.route(http.MethodPost, "/v1/dnc/lists/:id/numbers", s.addDNCNumber, allow(admin), limit)
	s.route(http.MethodDelete, "/v1/dnc/lists/:id/numbers/:number", s.removeDNCNumber, allow(admin))
	s.route(http.MethodPost, importPath, s.importDNC, allow(admin), s.limitImport)
	s.route(http.MethodPut, "/v1/policies/:id", s.putPolicy, allow(admin), limit)
	s.route(http.MethodGet, "/v1/policies", s.listPolicies, allow(admin))
	s.route(http.MethodGet, "/v1/policies/:id", s.getPolicy, allow(admin))
	s.route(http.MethodPost, "/v1/policies/:id/assign", s.assignPolicy, allow(admin), limit)
	s.route(http.MethodDelete, "/v1/policies/:id", s.deletePolicy, allow(admin))
	s.route(http.MethodPost, "/v1/caller-ids", s.addCallerID, allow(admin), limit)
	s.route(http.MethodGet, "/v1/caller-ids", s.listCallerIDs, allow(admin, agent))
	s.route(http.MethodDelete, "/v1/caller-ids/:number", s.removeCallerID, allow(admin))
}

// adminCall returns the administration for a request, after checking its
// query parameters against those allowed. Returns EUNAVAILABLE without an
// administration, EINVALID for an unexpected parameter.
func (s *Server) adminCall(c echo.Context, query ...string) (controller.ComplianceAdmin, error) {
	adm, err := s.complianceAdmin()
	if err != nil {
		return nil, err
	}
	return adm, checkQuery(c.QueryParams(), query...)
}

// complianceAdmin returns the administration, or EUNAVAILABLE.
func (s *Server) complianceAdmin() (controller.ComplianceAdmin, error) {
	if s.admin == nil {
		return nil, errNoAdmin
	}
	return s.admin, nil
}

// limitImport is limitBody with MaxImportBytes: an upload may be large.
func (s *Server) limitImport(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if req.ContentLength > s.cfg.MaxImportBytes {
			return &http.MaxBytesError{Limit: s.cfg.MaxImportBytes}
		}
		if req.Body != nil {
			req.Body = http.MaxBytesReader(c.Response().Writer, req.Body, s.cfg.MaxImportBytes)
		}
		return next(c)
	}
}

// boolean decodes member name as true or false into dst; absent and null
// leave dst unchanged.
func (o object) boolean(name string, dst *bool) error {
	raw, ok := o[name]
	if !ok {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return controller.FieldError(name, "must be true or false")
	}
	return nil
}

// timestamp decodes member name as an RFC 3339 time; absent, null and ""
// leave dst nil.
func (o object) timestamp(name string, dst **time.Time) error {
	var v string
	if err := o.str(name, &v); err != nil || v == "" {
		return err
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return controller.FieldError(name, "must be an RFC 3339 time such as 2026-11-21T10:00:00Z")
	}
	*dst = &t
	return nil
}

// firstErr returns the first non-nil error.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// numberQuery returns the required ?number= of a listing.
func numberQuery(c echo.Context) (string, error) {
	if err := checkQuery(c.QueryParams(), "number"); err != nil {
		return "", err
	}
	n := c.QueryParam("number")
	if n == "" {
		return "", controller.FieldError("number", "is required")
	}
	return n, checkPhone("number", n)
}

// consentFields are the members POST /v1/consents accepts.
var consentFields = []string{"number", "purpose", "source", "proof_ref", "prompt_id", "prompt_version",
	"digit", "call_id", "given_at", "expires_at"}

// createConsent records consent evidence: 201 with the stored consent.
func (s *Server) createConsent(c echo.Context) error {
	adm, err := s.adminCall(c)
	if err != nil {
		return err
	}
	obj, err := readObject(c, false, consentFields...)
	if err != nil {
		return err
	}
	var (
		in              controller.Consent
		purpose, callID string
		givenAt         *time.Time
	)
	if err := firstErr(
		obj.str("number", &in.Number),
		obj.str("purpose", &purpose),
		obj.str("source", &in.Source),
		obj.str("proof_ref", &in.ProofRef),
		obj.str("prompt_id", &in.PromptID),
		obj.str("prompt_version", &in.PromptVersion),
		obj.str("digit", &in.Digit),
		obj.str("call_id", &callID),
		obj.timestamp("given_at", &givenAt),
		obj.timestamp("expires_at", &in.ExpiresAt),
	); err != nil {
		return err
	}
	if in.Number == "" {
		return controller.FieldError("number", "is required")
	}
	in.Purpose, in.CallID = controller.Purpose(purpose), controller.CallID(callID)
	if err := checkConsent(in); err != nil {
		return err
	}
	if givenAt != nil {
		in.GivenAt = *givenAt
	}
	out, err := adm.CreateConsent(c.Request().Context(), tenant(c), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, viewOf(c).consent(out))
}

// getConsent returns one consent.
func (s *Server) getConsent(c echo.Context) error {
	adm, err := s.adminCall(c)
	if err != nil {
		return err
	}
	out, err := adm.GetConsent(c.Request().Context(), tenant(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewOf(c).consent(out))
}

// revokeConsent revokes a consent now: 200 with it.
func (s *Server) revokeConsent(c echo.Context) error {
	adm, err := s.adminCall(c)
	if err != nil {
		return err
	}
	if _, err := readObject(c, true); err != nil {
		return err
	}
	out, err := adm.RevokeConsent(c.Request().Context(), tenant(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewOf(c).consent(out))
}

// consentList is the body of GET /v1/consents.
type consentList struct {
	Consents []controller.Consent `json:"consents"`
}

// listConsents returns the tenant's consents for ?number=, newest first.
func (s *Server) listConsents(c echo.Context) error {
	adm, err := s.complianceAdmin()
	if err != nil {
		return err
	}
	n, err := numberQuery(c)
	if err != nil {
		return err
	}
	list, err := adm.ListConsents(c.Request().Context(), tenant(c), n)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, consentList{Consents: viewOf(c).consents(orEmpty(list))})
}

// refusalFields are the members POST /v1/refusals accepts.
var refusalFields = []string{"number", "source", "call_id", "until", "forever"}

// createRefusal locks a number (manual refusal) and cancels its queued
// calls: 201 with the refusal and how many calls were canceled.
func (s *Server) createRefusal(c echo.Context) error {
	adm, err := s.adminCall(c)
	if err != nil {
		return err
	}
	obj, err := readObject(c, false, refusalFields...)
	if err != nil {
		return err
	}
	var (
		req    controller.RefusalRequest
		callID string
	)
	if err := firstErr(
		obj.str("number", &req.Number),
		obj.str("source", &req.Source),
		obj.str("call_id", &callID),
		obj.timestamp("until", &req.Until),
		obj.boolean("forever", &req.Forever),
	); err != nil {
		return err
	}
	if req.Number == "" {
		return controller.FieldError("number", "is required")
	}
	if err := checkPhone("number", req.Number); err != nil {
		return err
	}
	if req.Source != "" {
		if err := checkOneOf("source", req.Source, refusalSources...); err != nil {
			return err
		}
	}
	if callID != "" {
		if err := checkUUID("call_id", callID); err != nil {
			return err
		}
	}
	req.CallID = controller.CallID(callID)
	out, err := adm.LockNumber(c.Request().Context(), tenant(c), req)
	if err != nil {
		return err
	}
	out.Refusal = viewOf(c).refusal(out.Refusal)
	return c.JSON(http.StatusCreated, out)
}

// refusalList is the body of GET /v1/refusals.
type refusalList struct {
	Refusals []controller.Refusal `json:"refusals"`
}

// listRefusals returns every refusal of ?number=, newest first.
func (s *Server) listRefusals(c echo.Context) error {
	adm, err := s.complianceAdmin()
	if err != nil {
		return err
	}
	n, err := numberQuery(c)
	if err != nil {
		return err
	}
	list, err := adm.ListRefusals(c.Request().Context(), n)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, refusalList{Refusals: viewOf(c).refusals(orEmpty(list))})
}

// liftRefusal ends a refusal lock now: 200 with it.
func (s *Server) liftRefusal(c echo.Context) error {
	adm, err := s.adminCall(c)
	if err != nil {
		return err
	}
	if _, err := readObject(c, true); err != nil {
		return err
	}
	out, err := adm.LiftRefusal(c.Request().Context(), tenant(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewOf(c).refusal(out))
}

// dncListFields are the members POST /v1/dnc/lists accepts.
var dncListFields = []string{"id", "name", "kind", "source"}

// createDNCList records a do-not-call list of the tenant: 201 with it.
func (s *Server) createDNCList(c echo.Context) error {
	adm, err := s.adminCall(c)
	if err != nil {
		return err
	}
	obj, err := readObject(c, false, dncListFields...)
	if err != nil {
		return err
	}
	var l controller.DNCList
	if err := firstErr(
		obj.str("id", &l.ID),
		obj.str("name", &l.Name),
		obj.str("kind", &l.Kind),
		obj.str("source", &l.Source),
	); err != nil {
		return err
	}
	if err := checkDNCList(l); err != nil {
		return err
	}
	out, err := adm.CreateDNCList(c.Request().Context(), tenant(c), l)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, out)
}

// dncListList is the body of GET /v1/dnc/lists.
type dncListList struct {
	Lists []controller.DNCList `json:"lists"`
}

// listDNCLists returns the lists the tenant can see with their entry
// counts and last scrub times.
func (s *Server) listDNCLists(c echo.Context) error {
	adm, err := s.adminCall(c)
	if err != nil {
		return err
	}
	list, err := adm.ListDNCLists(c.Request().Context(), tenant(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, dncListList{Lists: orEmpty(list)})
}

// dncEntry is the body of POST /v1/dnc/lists/{id}/numbers.
type dncEntry struct {
	ListID string `json:"list_id"`
	Number string `json:"number"`
	Added  bool   `json:"added"` // false: it was on the list already
}

// addDNCNumber puts one number on a list: 201 when it is new there, 200
// when it was there already.
func (s *Server) addDNCNumber(c echo.Context) error {
	adm, err := s.adminCall(c)
	if err != nil {
		return err
	}
	n, err := readNumber(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	e164, added, err := adm.AddDNCNumber(c.Request().Context(), tenant(c), id, n)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if added {
		status = http.StatusCreated
	}
	return c.JSON(status, dncEntry{ListID: id, Number: viewOf(c).number(e164), Added: added})
}

// removeDNCNumber takes one number off a list: 204.
func (s *Server) removeDNCNumber(c echo.Context) error {
	adm, err := s.adminCall(c)
	if err != nil {
		return err
	}
	n, err := url.PathUnescape(c.Param("number"))
	if err != nil {
		return controller.FieldError("number", "malformed path escape")
	}
	if err := adm.RemoveDNCNumber(c.Request().Context(), tenant(c), c.Param("id"), n); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// importDNC streams a CSV upload into a list: 200 with the report, bad
// rows listed with their line numbers. ?scrub=true marks the list scrubbed.
func (s *Server) importDNC(c echo.Context) error {
	adm, err := s.adminCall(c, "scrub")
	if err != nil {
		return err
	}
	var opts controller.DNCImport
	if v, ok := c.QueryParams()["scrub"]; ok {
		if opts.Scrub, err = strconv.ParseBool(v[0]); err != nil || (v[0] != "true" && v[0] != "false") {
			return controller.FieldError("scrub", "must be true or false")
		}
	}
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if err != nil || mt != "text/csv" {
		return &controller.Error{Code: codeUnsupportedMediaType, Field: "Content-Type", Message: "the upload must be text/csv"}
	}
	body, err := nonBlank(c.Request().Body)
	if err != nil {
		return err
	}
	rep, err := adm.ImportDNC(c.Request().Context(), tenant(c), c.Param("id"), body, opts)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewOf(c).importResult(rep))
}

// readRawObject reads a request body that must be one JSON object and
// returns it undecoded, for a document the domain decodes strictly.
func readRawObject(c echo.Context) (json.RawMessage, error) {
	req := c.Request()
	body, err := readBody(req)
	if err != nil {
		return nil, err
	}
	if len(body) == 0 {
		return nil, controller.Errorf(controller.EINVALID, "request body is required: a JSON object")
	}
	if err := checkJSONContentType(req.Header.Get(echo.HeaderContentType)); err != nil {
		return nil, err
	}
	if !json.Valid(body) {
		var v any
		return nil, malformed(json.Unmarshal(body, &v))
	}
	if obj := object(nil); json.Unmarshal(body, &obj) != nil || obj == nil {
		return nil, controller.Errorf(controller.EINVALID, "request body must be a JSON object")
	}
	return body, nil
}

// putPolicy saves the body as the next version of a policy: 200 with the
// stored version.
func (s *Server) putPolicy(c echo.Context) error {
	adm, err := s.adminCall(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	if err := checkID("id", id); err != nil {
		return err
	}
	body, err := readRawObject(c)
	if err != nil {
		return err
	}
	// The service decodes the document too; decoding it here refuses
	// unknown members and wrong types before anything is stored.
	if _, err := compliance.DecodePolicy(body); err != nil {
		return err
	}
	out, err := adm.PutPolicy(c.Request().Context(), tenant(c), id, body)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// policyList is the body of GET /v1/policies.
type policyList struct {
	Policies []controller.PolicyRecord `json:"policies"`
}

// listPolicies returns the latest version of every policy the tenant can see.
func (s *Server) listPolicies(c echo.Context) error {
	adm, err := s.adminCall(c)
	if err != nil {
		return err
	}
	list, err := adm.ListPolicies(c.Request().Context(), tenant(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, policyList{Policies: orEmpty(list)})
}

// getPolicy returns a policy's latest version, or ?version=.
func (s *Server) getPolicy(c echo.Context) error {
	adm, err := s.adminCall(c, "version")
	if err != nil {
		return err
	}
	version := 0
	if v, ok := c.QueryParams()["version"]; ok {
		n, err := wholeNumber("version", v[0], 1, math.MaxInt32)
		if err != nil {
			return err
		}
		version = int(n)
	}
	out, err := adm.GetPolicy(c.Request().Context(), tenant(c), c.Param("id"), version)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// assignPolicy makes a policy govern a campaign, or with an empty or absent
// campaign_id the tenant's campaigns without their own: 200 with the
// assignment.
func (s *Server) assignPolicy(c echo.Context) error {
	adm, err := s.adminCall(c)
	if err != nil {
		return err
	}
	obj, err := readObject(c, true, "campaign_id")
	if err != nil {
		return err
	}
	a := controller.PolicyAssignment{PolicyID: c.Param("id")}
	if err := obj.str("campaign_id", &a.CampaignID); err != nil {
		return err
	}
	if a.CampaignID != "" {
		if err := checkID("campaign_id", a.CampaignID); err != nil {
			return err
		}
	}
	if err := adm.AssignPolicy(c.Request().Context(), tenant(c), a); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a)
}

// deletePolicy removes a policy the tenant owns: 204; 409 while assigned.
func (s *Server) deletePolicy(c echo.Context) error {
	adm, err := s.adminCall(c)
	if err != nil {
		return err
	}
	if err := adm.DeletePolicy(c.Request().Context(), tenant(c), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
