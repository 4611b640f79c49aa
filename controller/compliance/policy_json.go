package compliance

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/callgate/callgate/controller"
)

// DecodePolicy decodes one JSON object into a policy, rejecting unknown
// fields and trailing data. Returns EINVALID naming the field at fault.
func DecodePolicy(body []byte) (Policy, error) {
	var p Policy
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(&p)
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case err == nil:
	case errors.As(err, &syn):
		return p, controller.Errorf(controller.EINVALID, "malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return p, controller.FieldError(typ.Field, "must be %s", typ.Type.String())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, uerr := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		if uerr != nil {
			name = "body"
		}
		return p, controller.FieldError(name, "unknown field")
	default:
		return p, controller.Errorf(controller.EINVALID, "policy must be a JSON object: %v", err)
	}
	if dec.More() {
		return p, controller.Errorf(controller.EINVALID, "malformed JSON: unexpected data after the object")
	}
	return p, nil
}
