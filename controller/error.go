package controller

import (
	"errors"
	"fmt"
)

// Error codes. The HTTP layer maps each to a status in exactly one place.
const (
	ECONFLICT    = "conflict"    // the request conflicts with the current state
	EINTERNAL    = "internal"    // a bug or an unexpected failure
	EINVALID     = "invalid"     // the request is malformed or breaks a rule
	ENOTFOUND    = "not_found"   // the thing does not exist (or is not visible)
	EUNAVAILABLE = "unavailable" // a dependency (switch, database) is down
	EREFUSED     = "refused"     // a switch or a limit refused the work
	ETOOLARGE    = "too_large"   // the request body is too large
)

// Error is callgate's one error type: a code for programs, a message for
// people, and optional details naming the offending field.
type Error struct {
	Code    string
	Message string
	Field   string // the input field at fault, if any
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Is lets errors.Is match on code and message, so sentinel errors built
// with Errorf work through wrapping.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Message == e.Message && t.Field == e.Field
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns an EINVALID error that names the input field at fault.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns the message of the first *Error in err's chain and a
// generic text for anything else, so internal details never reach a client.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// ErrorField returns the field named by the first *Error in err's chain.
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
