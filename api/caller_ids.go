package api

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/callgate/callgate/controller"
)

// CallerIDList is the body of GET /v1/caller-ids.
type CallerIDList struct {
	CallerIDs []string `json:"caller_ids"`
}

// addCallerID registers a number the tenant owns and may present: 201 with
// the number in E.164.
func (s *Server) addCallerID(c echo.Context) error {
	adm, err := s.adminCall(c)
	if err != nil {
		return err
	}
	n, err := readNumber(c)
	if err != nil {
		return err
	}
	e164, err := adm.AddCallerID(c.Request().Context(), tenant(c), n)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]string{"number": viewOf(c).number(e164)})
}

// listCallerIDs returns the tenant's owned caller IDs.
func (s *Server) listCallerIDs(c echo.Context) error {
	adm, err := s.adminCall(c)
	if err != nil {
		return err
	}
	ids, err := adm.ListCallerIDs(c.Request().Context(), tenant(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, CallerIDList{CallerIDs: viewOf(c).numbers(orEmpty(ids))})
}

// removeCallerID withdraws a caller ID: 204, or 404 if the tenant does not
// own it.
func (s *Server) removeCallerID(c echo.Context) error {
	adm, err := s.adminCall(c)
	if err != nil {
		return err
	}
	n, err := url.PathUnescape(c.Param("number"))
	if err != nil {
		return controller.FieldError("number", "malformed path escape")
	}
	if err := adm.RemoveCallerID(c.Request().Context(), tenant(c), n); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
