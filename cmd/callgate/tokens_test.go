package main

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/postgres/pgtest"
)

var (
	secretLine = regexp.MustCompile(`(?m)^secret: (cg_[A-Za-z0-9_-]{43})$`)
	idLine     = regexp.MustCompile(`(?m)^id: +([0-9a-f-]{36})$`)
)

// tokenCmd runs `callgate token args… --database-url dsn` and returns its output.
func tokenCmd(t *testing.T, dsn string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	full := append([]string{"token", args[0], "--database-url", dsn}, args[1:]...)
	err := run(context.Background(), full, func(string) string { return "" }, &out, &out)
	return out.String(), err
}

// createToken runs token create and returns the token's id and secret.
func createToken(t *testing.T, dsn string, args ...string) (id, secret string) {
	t.Helper()
	out, err := tokenCmd(t, dsn, append([]string{"create"}, args...)...)
	require.NoError(t, err, out)
	m, s := idLine.FindStringSubmatch(out), secretLine.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	require.NotNil(t, s, out)
	return m[1], s[1]
}

func TestTokenCommands(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	id, secret := createToken(t, dsn, "--role", "agent", "--tenant", "default", "--agent", "a1", "--name", "desk 1", "--expires", "720h")
	_, adminSecret := createToken(t, dsn, "--role", "admin", "--tenant", "default")

	out, err := tokenCmd(t, dsn, "list", "--tenant", "default")
	require.NoError(t, err)
	require.Contains(t, out, id)
	require.Contains(t, out, "a1")
	require.Contains(t, out, "expires ")
	require.NotContains(t, out, secret, "list never prints a secret")
	require.NotContains(t, out, adminSecret)
	require.NotContains(t, out, "cg_")

	out, err = tokenCmd(t, dsn, "revoke", id)
	require.NoError(t, err, out)
	require.Contains(t, out, "revoked "+id)
	out, err = tokenCmd(t, dsn, "list")
	require.NoError(t, err)
	require.Regexp(t, id+`.*revoked`, out)

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "--role", "root", "--tenant", "default"}, "--role"},
		{[]string{"create", "--role", "agent", "--tenant", "default"}, "--agent"},
		{[]string{"create", "--role", "qa", "--tenant", "nope"}, "--tenant"},
		{[]string{"create", "--role", "qa", "--tenant", "default", "--expires", "-1h"}, "--expires"},
		{[]string{"revoke", "00000000-0000-0000-0000-000000000000"}, "not found"},
		{[]string{"revoke"}, "id"},
		{[]string{"rename"}, "unknown subcommand"},
	} {
		_, err := tokenCmd(t, dsn, tt.args...)
		require.ErrorContains(t, err, tt.want, "%v", tt.args)
	}
}

// TestE2EAuth: through the whole stack, an agent's calls are theirs, other
// roles are refused, and revoking with the command locks the token out on
// its next request.
func TestE2EAuth(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, simOptions{})
	dsn := e.m.Config.DatabaseURL
	agentID, agent := createToken(t, dsn, "--role", "agent", "--tenant", "default", "--agent", "a1")
	_, other := createToken(t, dsn, "--role", "agent", "--tenant", "default", "--agent", "a2")
	_, auditor := createToken(t, dsn, "--role", "auditor", "--tenant", "default")
	as := func(secret string) map[string]string { return map[string]string{"Authorization": "Bearer " + secret} }

	var c controller.Call
	require.Equal(t, http.StatusAccepted, e.do(t, "POST", "/v1/calls", as(agent),
		map[string]any{"to": "+12125551004", "from": "+12125550100", "purpose": "service", "timeout_seconds": 2}, &c))
	require.Equal(t, "a1", c.AgentID)
	var back controller.Call
	require.Equal(t, http.StatusOK, e.do(t, "GET", "/v1/calls/"+string(c.ID), nil, nil, &back), "admin sees it")
	require.Equal(t, "a1", back.AgentID, "stored with the call")
	require.Equal(t, http.StatusOK, e.do(t, "GET", "/v1/calls/"+string(c.ID), as(agent), nil, nil))
	require.Equal(t, http.StatusNotFound, e.do(t, "GET", "/v1/calls/"+string(c.ID), as(other), nil, nil), "another agent's call does not exist")
	var page struct {
		Calls []controller.Call `json:"calls"`
	}
	require.Equal(t, http.StatusOK, e.do(t, "GET", "/v1/calls", as(other), nil, &page))
	require.Empty(t, page.Calls)
	require.Equal(t, http.StatusForbidden, e.do(t, "GET", "/v1/calls", as(auditor), nil, nil))
	require.Equal(t, http.StatusOK, e.do(t, "GET", "/v1/attempts/"+string(c.ID), as(auditor), nil, nil))
	require.Equal(t, http.StatusUnauthorized, e.do(t, "GET", "/v1/calls", map[string]string{"Authorization": "Bearer cg_nope"}, nil, nil))

	out, err := tokenCmd(t, dsn, "revoke", agentID)
	require.NoError(t, err, out)
	require.Contains(t, out, "in effect on every running controller (1)", "the controller dropped its cached token")
	require.Equal(t, http.StatusUnauthorized, e.do(t, "GET", "/v1/calls/"+string(c.ID), as(agent), nil, nil), "revoked at once")
	require.True(t, strings.HasPrefix(e.admin, "cg_"))
}
