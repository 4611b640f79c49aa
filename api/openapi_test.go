package api_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// readSpec returns api/openapi.yaml as it is on disk.
func readSpec(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("openapi.yaml")
	require.NoError(t, err)
	return b
}

// parseSpec parses the document into generic YAML values.
func parseSpec(t testing.TB) map[string]any {
	t.Helper()
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(readSpec(t), &doc))
	return doc
}

var operationMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// echoParam matches an echo path parameter, :id, to rewrite it as {id}.
var echoParam = regexp.MustCompile(`:([A-Za-z_][A-Za-z0-9_]*)`)

// TestOpenAPIMatchesRoutes fails when a registered route is missing from
// openapi.yaml or the document describes a route that is not registered.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	e, ok := setup(t).h.(*echo.Echo)
	require.True(t, ok, "Handler() must be the *echo.Echo")

	var registered []string
	for _, r := range e.Routes() {
		registered = append(registered, r.Method+" "+echoParam.ReplaceAllString(r.Path, "{$1}"))
	}

	paths, ok := parseSpec(t)["paths"].(map[string]any)
	require.True(t, ok, "paths must be a map")
	var documented []string
	for path, item := range paths {
		ops, ok := item.(map[string]any)
		require.True(t, ok, "path item %s must be a map", path)
		for method := range ops {
			if slices.Contains(operationMethods, method) {
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(registered)
	slices.Sort(documented)

	var undocumented, unregistered []string
	for _, r := range registered {
		if !slices.Contains(documented, r) {
			undocumented = append(undocumented, r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(registered, d) {
			unregistered = append(unregistered, d)
		}
	}
	require.True(t, len(undocumented) == 0 && len(unregistered) == 0,
		"openapi.yaml and the routes disagree:\n registered, not documented: %v\n documented, not registered: %v",
		undocumented, unregistered)
	require.Len(t, registered, 76)
}

// TestOpenAPIDocumentsPolicies fails when an operation's x-callgate-roles
// (and x-callgate-agent-scoped, x-callgate-agent-self) differ from the
// route's policy, or an open route is not marked security: [].
func TestOpenAPIDocumentsPolicies(t *testing.T) {
	t.Parallel()
	paths := parseSpec(t)["paths"].(map[string]any)
	for _, rp := range setup(t).srv.Policies() {
		name := rp.Method + " " + rp.Path
		op, ok := paths[echoParam.ReplaceAllString(rp.Path, "{$1}")].(map[string]any)[strings.ToLower(rp.Method)].(map[string]any)
		require.True(t, ok, name)
		if rp.Policy.Open {
			require.Equal(t, []any{}, op["security"], "%s is open: security: []", name)
			continue
		}
		var documented []string
		for _, r := range op["x-callgate-roles"].([]any) {
			documented = append(documented, r.(string))
		}
		var roles []string
		for _, r := range rp.Policy.Roles {
			roles = append(roles, string(r))
		}
		require.ElementsMatch(t, roles, documented, name)
		scoped, _ := op["x-callgate-agent-scoped"].(bool)
		require.Equal(t, rp.Policy.AgentScoped, scoped, name)
		self, _ := op["x-callgate-agent-self"].(bool)
		require.Equal(t, rp.Policy.AgentSelf, self, name)
		responses := op["responses"].(map[string]any)
		require.Contains(t, responses, "401", name)
		require.Contains(t, responses, "403", name)
	}
}

// TestOpenAPIDocument checks the document is OpenAPI 3.0.3, every $ref
// resolves, every path parameter is declared and every error response uses
// the one error shape.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	doc := parseSpec(t)
	require.Equal(t, "3.0.3", doc["openapi"])

	var refs []string
	collectRefs(doc, &refs)
	require.NotEmpty(t, refs)
	for _, ref := range refs {
		_, ok := resolve(doc, ref)
		require.True(t, ok, "unresolved $ref %s", ref)
	}

	paths := doc["paths"].(map[string]any)
	for path, item := range paths {
		for method, op := range item.(map[string]any) {
			if !slices.Contains(operationMethods, method) {
				continue
			}
			name := strings.ToUpper(method) + " " + path
			opMap := op.(map[string]any)
			require.NotEmpty(t, opMap["operationId"], name)

			// Every {param} in the path is declared as a path parameter.
			declared := map[string]bool{}
			params, _ := opMap["parameters"].([]any)
			for _, p := range params {
				pm := deref(t, doc, p)
				if pm["in"] == "path" {
					declared[pm["name"].(string)] = true
					require.Equal(t, true, pm["required"], "%s: path parameters are required", name)
				}
			}
			for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(path, -1) {
				require.True(t, declared[m[1]], "%s: path parameter %s not declared", name, m[1])
			}

			responses := opMap["responses"].(map[string]any)
			require.NotEmpty(t, responses, name)
			for status, resp := range responses {
				if status[0] != '4' && status[0] != '5' {
					continue
				}
				rm := deref(t, doc, resp)
				schema := rm["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
				require.Equal(t, "#/components/schemas/Error", schema["$ref"], "%s %s must use the error shape", name, status)
			}
		}
	}

	// The documented error shape is the one the handlers write.
	errSchema := doc["components"].(map[string]any)["schemas"].(map[string]any)["Error"].(map[string]any)
	detail := errSchema["properties"].(map[string]any)["error"].(map[string]any)["properties"].(map[string]any)
	var fields []string
	for k := range detail {
		fields = append(fields, k)
	}
	require.ElementsMatch(t, []string{"code", "message", "field", "request_id"}, fields)
	var codes []string
	for _, c := range detail["code"].(map[string]any)["enum"].([]any) {
		codes = append(codes, c.(string))
	}
	require.ElementsMatch(t, validErrorCodes, codes)
}

func collectRefs(v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if s, ok := child.(string); ok && k == "$ref" {
				*out = append(*out, s)
				continue
			}
			collectRefs(child, out)
		}
	case []any:
		for _, child := range v {
			collectRefs(child, out)
		}
	}
}

// resolve follows a local JSON pointer such as #/components/schemas/Call.
func resolve(doc map[string]any, ref string) (any, bool) {
	ptr, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false
	}
	var cur any = doc
	for _, tok := range strings.Split(ptr, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// deref returns v, or what its $ref points at.
func deref(t testing.TB, doc map[string]any, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	require.True(t, ok)
	if ref, ok := m["$ref"].(string); ok {
		target, ok := resolve(doc, ref)
		require.True(t, ok, ref)
		return deref(t, doc, target)
	}
	return m
}
