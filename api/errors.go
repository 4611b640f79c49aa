package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/callgate/callgate/controller"
)

// Error codes that exist only at the HTTP layer: they describe the request's
// method or media type, which the domain never sees.
const (
	codeMethodNotAllowed     = "method_not_allowed"
	codeUnsupportedMediaType = "unsupported_media_type"
)

// statusByCode maps every error code to its HTTP status. It is the only
// place in callgate that does; a code missing here is answered as internal.
var statusByCode = map[string]int{
	controller.EINVALID:      http.StatusBadRequest,
	controller.ENOTFOUND:     http.StatusNotFound,
	controller.ECONFLICT:     http.StatusConflict,
	controller.EUNAVAILABLE:  http.StatusServiceUnavailable,
	controller.EREFUSED:      http.StatusServiceUnavailable,
	controller.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	controller.EUNAUTHORIZED: http.StatusUnauthorized,
	controller.EFORBIDDEN:    http.StatusForbidden,
	controller.EINTERNAL:     http.StatusInternalServerError,
	codeMethodNotAllowed:     http.StatusMethodNotAllowed,
	codeUnsupportedMediaType: http.StatusUnsupportedMediaType,
	codeRateLimited:          statusRateLimited,
}

// ErrorResponse is the body of every error the API returns, whatever went
// wrong and wherever: handlers, the router (404, 405), the body limit (413),
// the JSON decoder (400) and recovered panics (500).
type ErrorResponse struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail describes one error.
type ErrorDetail struct {
	Code      string `json:"code"`            // a controller error code, method_not_allowed or unsupported_media_type
	Message   string `json:"message"`         // for people; "internal error" for every internal failure
	Field     string `json:"field,omitempty"` // the input at fault: a JSON field, query parameter or header
	RequestID string `json:"request_id"`      // the X-Request-Id of the request
}

// maxFieldLen caps the field name echoed back, which may come from input.
const maxFieldLen = 100

// handleError is echo's HTTPErrorHandler: it writes any error in the one
// error shape and logs what a client must not see.
func (s *Server) handleError(err error, c echo.Context) {
	d := s.describe(err, c)
	status, ok := statusByCode[d.Code]
	if !ok {
		s.requestLogger(c).Error("error code without HTTP status", "code", d.Code, "err", redact(err.Error()))
		d = ErrorDetail{Code: controller.EINTERNAL, Message: "internal error"}
		status = http.StatusInternalServerError
	}
	d.RequestID = requestIDOf(c)
	d.Field = truncate(d.Field, maxFieldLen)

	if c.Response().Committed {
		// The status line is gone already; all that is left is to say so.
		s.requestLogger(c).Warn("error after response was committed", "code", d.Code, "err", redact(err.Error()))
		return
	}
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(status)
	} else {
		err = c.JSON(status, ErrorResponse{Error: d})
	}
	if err != nil {
		s.requestLogger(c).Warn("writing error response", "err", err)
	}
}

// describe turns any error into the client-facing detail, logging the ones
// whose real cause must stay private. No error ever echoes a phone number,
// whoever asks: a message or a field name that quotes input (an unknown
// member, a bad number) has every number-like run masked.
func (s *Server) describe(err error, c echo.Context) ErrorDetail {
	d := s.describeRaw(err, c)
	if tooBig := (*http.MaxBytesError)(nil); !errors.As(err, &tooBig) { // our own text: a byte count, not a number to hide
		d.Message, d.Field = redact(d.Message), redact(d.Field)
	}
	return d
}

func (s *Server) describeRaw(err error, c echo.Context) ErrorDetail {
	var (
		tooBig  *http.MaxBytesError
		domain  *controller.Error
		httpErr *echo.HTTPError
	)
	switch {
	case errors.As(err, &tooBig):
		return ErrorDetail{Code: controller.ETOOLARGE, Message: fmt.Sprintf("request body is larger than %d bytes", tooBig.Limit)}
	case errors.As(err, &domain):
		if domain.Code == controller.EINTERNAL {
			break
		}
		if domain.Code == controller.EUNAVAILABLE || domain.Code == controller.EREFUSED {
			s.requestLogger(c).Warn("request not served", "code", domain.Code, "err", redact(err.Error()))
		}
		return ErrorDetail{Code: domain.Code, Message: domain.Message, Field: domain.Field}
	case errors.As(err, &httpErr):
		if d, ok := describeHTTPError(httpErr); ok {
			return d
		}
	}
	s.requestLogger(c).Error("internal error", logErr(err))
	return ErrorDetail{Code: controller.EINTERNAL, Message: "internal error"}
}

// describeHTTPError translates the errors echo itself raises (router 404
// and 405, mostly). It reports false for server errors, which are internal.
func describeHTTPError(he *echo.HTTPError) (ErrorDetail, bool) {
	switch he.Code {
	case http.StatusNotFound:
		return ErrorDetail{Code: controller.ENOTFOUND, Message: "no such route"}, true
	case http.StatusMethodNotAllowed:
		return ErrorDetail{Code: codeMethodNotAllowed, Message: "method not allowed on this route"}, true
	case http.StatusRequestEntityTooLarge:
		return ErrorDetail{Code: controller.ETOOLARGE, Message: "request body is too large"}, true
	case http.StatusUnsupportedMediaType:
		return ErrorDetail{Code: codeUnsupportedMediaType, Message: "unsupported media type"}, true
	case http.StatusServiceUnavailable:
		return ErrorDetail{Code: controller.EUNAVAILABLE, Message: "service unavailable"}, true
	}
	if he.Code >= 400 && he.Code < 500 {
		msg, _ := he.Message.(string)
		if msg == "" {
			msg = http.StatusText(he.Code)
		}
		return ErrorDetail{Code: controller.EINVALID, Message: msg}, true
	}
	return ErrorDetail{}, false
}

// logErr is the attribute an internal error is logged with: its text with
// phone numbers masked, and the stack when it was a panic.
func logErr(err error) slog.Attr {
	var p *panicError
	if errors.As(err, &p) {
		return slog.Group("panic", "value", redact(fmt.Sprint(p.value)), "stack", string(p.stack))
	}
	return slog.String("err", redact(err.Error()))
}

// panicError is a recovered panic, carried to the error handler as an error.
type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.value) }

// truncate shortens s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
