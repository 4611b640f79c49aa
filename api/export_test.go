package api_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/api"
	"github.com/callgate/callgate/controller"
)

const tracePeriod = "from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z"

// setupExport serves the world with the trace exporter and audit connected.
func setupExport(t *testing.T) (*bundle, *world, string) {
	t.Helper()
	w := newWorld()
	c := w.calls[callAlice]
	ended := fixedTime.Add(time.Minute)
	c.EndedAt, c.State, c.HangupCause = &ended, controller.CallCompleted, "NORMAL_CLEARING"
	c.Decision = &controller.Decision{Allow: true, PolicyID: "lab", PolicyVersion: 3, Number: c.To}
	w.calls[callAlice] = c
	b := setupWorld(t, w)
	return b, w, "Bearer " + b.tokens.issue(t, tenantA, controller.RoleAdmin, "")
}

func TestExportTraceCSV(t *testing.T) {
	t.Parallel()
	b, w, admin := setupExport(t)
	rec := b.do(t, "GET", "/v1/exports/trace?"+tracePeriod+"&format=csv", "", "Authorization", admin)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "text/csv; charset=utf-8", rec.Header().Get("Content-Type"))
	require.Equal(t, `attachment; filename="trace-20250101T000000Z-20260101T000000Z.csv"`, rec.Header().Get("Content-Disposition"))
	require.True(t, rec.Flushed, "streamed")
	rows, err := csv.NewReader(rec.Body).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 3, "a header and acme's two calls")
	require.Equal(t, []string{"call_id", "tenant_id", "source", "created_at", "ended_at", "to", "caller_id",
		"purpose", "state", "hangup_cause", "decision_allow", "decision_reasons", "decision_policy",
		"dial_decision_allow", "dial_decision_reasons", "consent_ids", "recording_ids"}, rows[0])
	byID := map[string][]string{rows[1][0]: rows[1], rows[2][0]: rows[2]}
	alice := byID[string(callAlice)]
	require.Equal(t, []string{string(callAlice), tenantA, "api", "2025-03-14T09:26:53Z", "2025-03-14T09:27:53Z",
		"+15557770100", callerA, "", "completed", "NORMAL_CLEARING", "true", "", "lab@3", "", "", "", recAlice}, alice,
		"full numbers: exports are admin only")

	// Audited: who, what period, how many rows; never a number.
	entries := w.audit.all()
	last := entries[len(entries)-1]
	require.Equal(t, "export.trace", last.Action)
	require.Equal(t, "ok", last.Outcome)
	require.Equal(t, tenantA, last.TenantID)
	require.Equal(t, "period 2025-01-01T00:00:00Z/2026-01-01T00:00:00Z; format csv; 2 rows", last.Detail)
}

func TestExportTraceJSONAndNDJSON(t *testing.T) {
	t.Parallel()
	b, _, admin := setupExport(t)
	rec := b.do(t, "GET", "/v1/exports/trace?"+tracePeriod+"&format=json", "", "Authorization", admin)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var rows []controller.TraceRow
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &rows))
	require.Len(t, rows, 2)

	rec = b.do(t, "GET", "/v1/exports/trace?"+tracePeriod+"&format=ndjson", "", "Authorization", admin)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "application/x-ndjson", rec.Header().Get("Content-Type"))
	lines := strings.Split(strings.TrimSpace(rec.Body.String()), "\n")
	require.Len(t, lines, 2)
	for _, l := range lines {
		var r controller.TraceRow
		require.NoError(t, json.Unmarshal([]byte(l), &r))
		require.Equal(t, tenantA, r.TenantID)
		require.NotNil(t, r.ConsentIDs, "lists are [] rather than null")
	}

	// A period without calls is an empty export, not an error.
	rec = b.do(t, "GET", "/v1/exports/trace?from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z&format=json", "", "Authorization", admin)
	require.Equal(t, http.StatusOK, rec.Code)
	require.JSONEq(t, `[]`, rec.Body.String())
}

func TestExportTraceRefusals(t *testing.T) {
	t.Parallel()
	b, w, admin := setupExport(t)
	for _, tt := range []struct{ query, field string }{
		{"", "from"},
		{"from=2025-01-01T00:00:00Z", "to"},
		{"from=2025-01-01T00:00:00Z&to=2025-01-01T00:00:00Z", "to"},
		{"from=yesterday&to=2026-01-01T00:00:00Z", "from"},
		{tracePeriod + "&format=xml", "format"},
		{tracePeriod + "&tenant=globex", "tenant"},
	} {
		requireError(t, b.do(t, "GET", "/v1/exports/trace?"+tt.query, "", "Authorization", admin), http.StatusBadRequest, "invalid", tt.field)
	}
	for _, role := range []controller.Role{controller.RoleAgent, controller.RoleQA, controller.RoleAuditor} {
		agentID := map[controller.Role]string{controller.RoleAgent: "alice"}[role]
		rec := b.do(t, "GET", "/v1/exports/trace?"+tracePeriod, "", "Authorization", "Bearer "+b.tokens.issue(t, tenantA, role, agentID))
		requireError(t, rec, http.StatusForbidden, "forbidden", "")
		last := w.audit.all()[len(w.audit.all())-1]
		require.Equal(t, "denied", last.Outcome)
	}

	// Without an exporter, or without an audit log, there is no export.
	s := api.New(api.Config{Auth: b.tokens}, w, nil, nil)
	s.SetAudit(w.audit)
	b.h = s.Handler()
	requireError(t, b.do(t, "GET", "/v1/exports/trace?"+tracePeriod, "", "Authorization", admin), http.StatusServiceUnavailable, "unavailable", "")
	s = api.New(api.Config{Auth: b.tokens}, w, nil, nil)
	s.SetTraceExporter(w)
	b.h = s.Handler()
	requireError(t, b.do(t, "GET", "/v1/exports/trace?"+tracePeriod, "", "Authorization", admin), http.StatusServiceUnavailable, "unavailable", "")
}

// failingExporter fails after n rows.
type failingExporter struct {
	*world
	n int
}

func (f failingExporter) ExportTrace(ctx context.Context, tenant string, from, to time.Time, fn func(controller.TraceRow) error) error {
	i := 0
	err := f.world.ExportTrace(ctx, tenant, from, to, func(r controller.TraceRow) error {
		if i == f.n {
			return errors.New("database went away")
		}
		i++
		return fn(r)
	})
	if err == nil && i == f.n {
		return errors.New("database went away")
	}
	return err
}

func TestExportTraceFailure(t *testing.T) {
	t.Parallel()
	b, w, admin := setupExport(t)
	// Before the first row: an ordinary error response.
	b.srv.SetTraceExporter(failingExporter{w, 0})
	requireError(t, b.do(t, "GET", "/v1/exports/trace?"+tracePeriod, "", "Authorization", admin), http.StatusInternalServerError, "internal", "")
	// After it: the body is cut short, and the audit says so.
	b.srv.SetTraceExporter(failingExporter{w, 1})
	rec := b.do(t, "GET", "/v1/exports/trace?"+tracePeriod+"&format=json", "", "Authorization", admin)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Error(t, json.Unmarshal(rec.Body.Bytes(), new([]controller.TraceRow)), "a truncated export does not parse")
	last := w.audit.all()[len(w.audit.all())-1]
	require.Equal(t, "export.trace", last.Action)
	require.Equal(t, "error", last.Outcome)
	require.Contains(t, last.Detail, "1 rows")
}
