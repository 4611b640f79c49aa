package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/callgate/callgate/controller"
)

// checkFields are the members POST /v1/compliance/check accepts.
var checkFields = []string{"to", "from", "purpose", "region", "at"}

// checkCompliance runs the compliance gate as a dry run: 200 with the
// decision and every rule's verdict; nothing is created.
func (s *Server) checkCompliance(c echo.Context) error {
	if err := checkQuery(c.QueryParams()); err != nil {
		return err
	}
	obj, err := readObject(c, false, checkFields...)
	if err != nil {
		return err
	}
	req := controller.CheckRequest{TenantID: tenant(c)}
	var purpose, at string
	for _, err := range []error{
		obj.str("to", &req.To),
		obj.str("from", &req.From),
		obj.str("purpose", &purpose),
		obj.str("region", &req.Region),
		obj.str("at", &at),
	} {
		if err != nil {
			return err
		}
	}
	if req.To == "" {
		return controller.FieldError("to", "is required")
	}
	req.Purpose = controller.Purpose(purpose)
	if err := checkPhone("to", req.To); err != nil {
		return err
	}
	if req.From != "" {
		if err := checkCallerID("from", req.From); err != nil {
			return err
		}
	}
	if err := checkPurpose("purpose", req.Purpose); err != nil {
		return err
	}
	if req.Region != "" && !regionRE.MatchString(req.Region) {
		return controller.FieldError("region", "must be an ISO 3166 alpha-2 region such as US")
	}
	if at != "" {
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return controller.FieldError("at", "must be an RFC 3339 time such as 2026-11-21T10:00:00Z")
		}
		req.At = t
	}
	d, err := s.svc.CheckCompliance(c.Request().Context(), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewOf(c).decision(&d))
}

// getAttempt returns a call's attempt with the compliance gate's decisions
// (at creation and at dial time). The id is the call's.
func (s *Server) getAttempt(c echo.Context) error {
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
	a, err := s.svc.GetAttempt(c.Request().Context(), tenant(c), controller.CallID(id))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewOf(c).attempt(a))
}
