package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/callgate/callgate/controller"
)

// object is a request body's top-level JSON object, member by member.
type object map[string]json.RawMessage

// readObject reads the request body as one JSON object whose members are
// all named in allowed. It rejects, with 400 in the error shape: an empty
// body (unless allowEmpty), malformed JSON, anything but an object at the
// top level, duplicate or unknown members and data after the object. A
// body over the limit yields *http.MaxBytesError (413); a declared media
// type other than JSON yields 415.
//
// Members are matched exactly: encoding/json would accept "TO" for "to".
func readObject(c echo.Context, allowEmpty bool, allowed ...string) (object, error) {
	req := c.Request()
	body, err := readBody(req)
	if err != nil {
		return nil, err
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		if allowEmpty {
			return object{}, nil
		}
		return nil, controller.Errorf(controller.EINVALID, "request body is required: a JSON object")
	}
	if err := checkJSONContentType(req.Header.Get(echo.HeaderContentType)); err != nil {
		return nil, err
	}
	if body[0] != '{' {
		return nil, controller.Errorf(controller.EINVALID, "request body must be a JSON object")
	}
	return parseObject(body, "", func(key string) bool { return slices.Contains(allowed, key) })
}

// parseObject reads body, which must start with '{', as one JSON object:
// malformed JSON, duplicate members, members known rejects (nil: any) and
// data after the object are EINVALID. Members are stored, and reported, as
// prefix+name: a nested object's members read as "schedule.start".
func parseObject(body []byte, prefix string, known func(string) bool) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // the opening brace
		return nil, malformed(err)
	}
	obj := object{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, malformed(err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, controller.Errorf(controller.EINVALID, "malformed JSON: object key is not a string")
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, malformed(err)
		}
		if known != nil && !known(key) {
			return nil, controller.FieldError(prefix+key, "unknown field")
		}
		if _, dup := obj[prefix+key]; dup {
			return nil, controller.FieldError(prefix+key, "field given more than once")
		}
		obj[prefix+key] = raw
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, malformed(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, controller.Errorf(controller.EINVALID, "malformed JSON: unexpected data after the object")
	}
	return obj, nil
}

// nested decodes member name as a JSON object whose members known accepts
// (nil: any), keyed and reported as name.member; absent and null give nil.
func (o object) nested(name string, known func(string) bool) (object, error) {
	raw, ok := o[name]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	if len(raw) == 0 || raw[0] != '{' {
		return nil, controller.FieldError(name, "must be an object")
	}
	return parseObject(raw, name+".", known)
}

// malformed describes a JSON syntax error without echoing the input.
func malformed(err error) error {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return controller.Errorf(controller.EINVALID, "malformed JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return controller.Errorf(controller.EINVALID, "malformed JSON: unexpected end of input")
	default:
		return controller.Errorf(controller.EINVALID, "malformed JSON")
	}
}

// checkJSONContentType accepts no declared type, application/json and
// application/*+json; anything else is 415.
func checkJSONContentType(ct string) error {
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == echo.MIMEApplicationJSON || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))) {
		return nil
	}
	return &controller.Error{Code: codeUnsupportedMediaType, Field: "Content-Type", Message: "request body must be application/json"}
}

// str decodes member name as a string into dst; absent and null leave dst
// unchanged.
func (o object) str(name string, dst *string) error {
	raw, ok := o[name]
	if !ok {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return controller.FieldError(name, "must be a string")
	}
	return plainText(name, *dst)
}

// maxStringBytes bounds any string member of a request.
const maxStringBytes = 4096

// plainText rejects what no string member may carry, whatever it is for:
// control characters (a newline ends an ESL command line; NUL ends C
// strings), invalid UTF-8, and more than maxStringBytes. Members with a
// narrower form are checked further by the services.
func plainText(name, v string) error {
	if len(v) > maxStringBytes {
		return controller.FieldError(name, "must be at most %d bytes", maxStringBytes)
	}
	if !utf8.ValidString(v) {
		return controller.FieldError(name, "must be valid UTF-8")
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return controller.FieldError(name, "must not contain control characters (newlines, tabs, NUL)")
		}
	}
	return nil
}

// integer decodes member name as a whole number into dst; absent and null
// leave dst unchanged.
func (o object) integer(name string, dst *int) error {
	raw, ok := o[name]
	if !ok {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return controller.FieldError(name, "must be an integer")
	}
	return nil
}

// stringMap decodes member name as an object of strings into dst; absent
// and null leave dst unchanged. A value that is not a string is reported
// as name.key.
func (o object) stringMap(name string, dst *map[string]string) error {
	raw, ok := o[name]
	if !ok {
		return nil
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return controller.FieldError(name, "must be an object of string values")
	}
	if members == nil {
		return nil
	}
	keys := make([]string, 0, len(members))
	for k := range members {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make(map[string]string, len(members))
	for _, k := range keys {
		v := members[k]
		var s string
		if string(v) == "null" || json.Unmarshal(v, &s) != nil {
			return controller.FieldError(name+"."+k, "must be a string")
		}
		if err := plainText(name+"."+k, s); err != nil {
			return err
		}
		if err := plainText(name, k); err != nil {
			return err
		}
		out[k] = s
	}
	*dst = out
	return nil
}

// stringList decodes member name as an array of strings into dst; absent
// and null leave dst unchanged. An element that is not a string is
// reported as name[i].
func (o object) stringList(name string, dst *[]string) error {
	raw, ok := o[name]
	if !ok {
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return controller.FieldError(name, "must be an array of strings")
	}
	if items == nil {
		return nil
	}
	out := make([]string, 0, len(items))
	for i, item := range items {
		field := fmt.Sprintf("%s[%d]", name, i)
		var v string
		if string(item) == "null" || json.Unmarshal(item, &v) != nil {
			return controller.FieldError(field, "must be a string")
		}
		if err := plainText(field, v); err != nil {
			return err
		}
		out = append(out, v)
	}
	*dst = out
	return nil
}

// float decodes member name as a number into dst; absent and null leave
// dst unchanged.
func (o object) float(name string, dst *float64) error {
	raw, ok := o[name]
	if !ok {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return controller.FieldError(name, "must be a number")
	}
	return nil
}

// checkQuery rejects query parameters outside allowed and parameters given
// more than once, so a misspelt filter cannot silently widen a listing.
func checkQuery(q url.Values, allowed ...string) error {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			return controller.FieldError(k, "unknown query parameter")
		}
		if len(q[k]) > 1 {
			return controller.FieldError(k, "query parameter given more than once")
		}
	}
	return nil
}

// idempotencyKey returns the request's Idempotency-Key, "" when absent.
// A present key must be given once and be 1 to 255 printable ASCII
// characters.
func idempotencyKey(h http.Header) (string, error) {
	const name = "Idempotency-Key"
	vals, ok := h[name]
	if !ok {
		return "", nil
	}
	if len(vals) != 1 {
		return "", controller.FieldError(name, "header given more than once")
	}
	v := vals[0]
	bad := len(v) == 0 || len(v) > 255
	for i := 0; !bad && i < len(v); i++ {
		bad = v[i] < 0x20 || v[i] > 0x7e
	}
	if bad {
		return "", controller.FieldError(name, "must be 1 to 255 printable ASCII characters")
	}
	return v, nil
}

// validCallID reports whether id has the canonical UUID form
// (8-4-4-4-12 hex digits) that every call ID has; anything else cannot name
// a call and is answered 404 without asking the store.
func validCallID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i := 0; i < len(id); i++ {
		ch := id[i]
		switch i {
		case 8, 13, 18, 23:
			if ch != '-' {
				return false
			}
		default:
			if !('0' <= ch && ch <= '9' || 'a' <= ch && ch <= 'f' || 'A' <= ch && ch <= 'F') {
				return false
			}
		}
	}
	return true
}

// errCallNotFound answers a path whose ID cannot name a call.
var errCallNotFound = controller.Errorf(controller.ENOTFOUND, "call not found")

// readBody reads a request's whole body. A body over the limit yields
// *http.MaxBytesError (413); any other read failure is EINVALID.
func readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, err
		}
		return nil, controller.Errorf(controller.EINVALID, "reading request body: %v", err)
	}
	return body, nil
}

// readNumber reads a body that is {"number": "…"} and returns the number.
// Returns EINVALID naming "number" when it is missing, empty or not of a
// phone number's form (checkPhone).
func readNumber(c echo.Context) (string, error) {
	obj, err := readObject(c, false, "number")
	if err != nil {
		return "", err
	}
	var n string
	if err := obj.str("number", &n); err != nil {
		return "", err
	}
	if n == "" {
		return "", controller.FieldError("number", "is required")
	}
	return n, checkPhone("number", n)
}

// orEmpty returns s, or an empty slice for nil, so a list encodes as [].
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// wholeNumber parses a query parameter written as plain decimal digits — no
// sign, no leading zero, at most 18 digits — between lo and hi.
func wholeNumber(name, v string, lo, hi int64) (int64, error) {
	bad := controller.FieldError(name, "must be a whole number from %d to %d, in plain digits", lo, hi)
	if v == "" || len(v) > 18 || (len(v) > 1 && v[0] == '0') {
		return 0, bad
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, bad
		}
		n = n*10 + int64(c-'0')
	}
	if n < lo || n > hi {
		return 0, bad
	}
	return n, nil
}

// errEmptyDNCCSV answers an upload with no row at all.
var errEmptyDNCCSV = controller.FieldError("csv", "the upload is empty: a number per row is needed")

// maxBlankPeek bounds the white space nonBlank holds before it gives up
// looking and hands the upload on.
const maxBlankPeek = 64 << 10

// nonBlank returns a reader of the whole of body once it has seen a byte
// that is not white space, so an upload of nothing is refused before a
// service sees it. Returns errEmptyDNCCSV for an empty or blank body,
// *http.MaxBytesError past the body limit.
func nonBlank(body io.Reader) (io.Reader, error) {
	if body == nil {
		return nil, errEmptyDNCCSV
	}
	br := bufio.NewReader(body)
	var lead bytes.Buffer // the white space read, handed on: line numbers count it
	for lead.Len() < maxBlankPeek {
		b, err := br.ReadByte()
		switch {
		case errors.Is(err, io.EOF):
			return nil, errEmptyDNCCSV
		case err != nil:
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return nil, err
			}
			return nil, controller.Errorf(controller.EINVALID, "reading the upload: %v", err)
		}
		if b != ' ' && b != '\t' && b != '\r' && b != '\n' {
			if err := br.UnreadByte(); err != nil {
				return nil, fmt.Errorf("reading the upload: %w", err)
			}
			return io.MultiReader(&lead, br), nil
		}
		lead.WriteByte(b)
	}
	return io.MultiReader(&lead, br), nil
}
