package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/api"
	"github.com/callgate/callgate/controller"
)

// privateWorld is the world with a number in every place a response can
// carry one: the call's decision and variables, its events, the attempt,
// the flow run's digits, webhook reply and tags, a recording's error.
type privateWorld struct{ *world }

// fullMarker is in every acme number and in none of their masked forms.
const fullMarker = "5557770"

func newPrivateWorld() *privateWorld {
	w := newWorld()
	c := w.calls[callAlice]
	c.Variables = map[string]string{"cg_callback": "+15557770123", "cg_ref": "order-42"}
	c.CallerIDName = "+15557770002"
	c.Decision = &controller.Decision{Allow: true, Stage: controller.StageCreate, Number: c.To, PolicyID: "lab", PolicyVersion: 1,
		Verdicts: []controller.Verdict{{Rule: "consent", Allow: true, Detail: "consent of +15557770100 on file", Evidence: []string{consentA}}}}
	w.calls[callAlice] = c
	run := w.runs[callAlice]
	run.Path = json.RawMessage(`{"outcome":"completed","tags":{"callback":"+15557770124"},"path":[` +
		`{"node":"ask","type":"gather","at":"2025-03-14T09:26:53.123456789Z","duration_ms":1500,"digits":"15557770125","result":"success"},` +
		`{"node":"hook","type":"webhook","webhook":"{\"echo\":\"+15557770100\"}","result":"next"},` +
		`{"node":"menu","type":"gather","digits":"2","result":"success"}]}`)
	w.runs[callAlice] = run
	r := w.recs[recAlice]
	r.Error = "spool file for 15557770100 unreadable"
	w.recs[recAlice] = r
	return &privateWorld{w}
}

func (w *privateWorld) CallEvents(ctx context.Context, tenant string, id controller.CallID) ([]controller.CallEventRecord, error) {
	if _, err := w.GetCall(ctx, tenant, id); err != nil {
		return nil, err
	}
	return []controller.CallEventRecord{{ID: 1, CallID: id, FromState: controller.CallQueued, ToState: controller.CallFailed,
		Event: controller.ChannelEvent{Kind: controller.EventOriginateFailed, Detail: "-ERR dialing sofia/gateway/carrier/+15557770100 failed"}}}, nil
}

func (w *privateWorld) GetAttempt(ctx context.Context, tenant string, id controller.CallID) (controller.Attempt, error) {
	c, err := w.GetCall(ctx, tenant, id)
	if err != nil {
		return controller.Attempt{}, err
	}
	return controller.Attempt{ID: 1, CallID: id, TenantID: tenant, Status: "done", ToNumber: c.To, Decision: c.Decision, DialDecision: c.Decision}, nil
}

func setupPrivate(t *testing.T) (*bundle, *privateWorld) {
	t.Helper()
	w := newPrivateWorld()
	b := setup(t)
	b.srv = api.New(api.Config{Auth: b.tokens}, w, nil, nil)
	b.srv.SetMedia(w, w)
	b.srv.SetAudit(w.audit)
	b.h = b.srv.Handler()
	return b, w
}

// readable are the requests each role may make that answer with a number.
func readable(role controller.Role) []struct{ method, path, body string } {
	call := "/v1/calls/" + string(callAlice)
	type req = struct{ method, path, body string }
	calls := []req{
		{"GET", "/v1/calls", ""},
		{"GET", call + "?include=events", ""},
		{"GET", call + "/events", ""},
		{"GET", call + "/flow-run", ""},
		{"GET", call + "/recordings", ""},
		{"GET", "/v1/recordings/" + recAlice, ""},
	}
	switch role {
	case controller.RoleAgent, controller.RoleAdmin:
		return append(calls,
			req{"POST", "/v1/calls", `{"to":"+15557770300","from":"+15557770002","variables":{"cg_x":"+15557770301"}}`},
			req{"GET", "/v1/attempts/" + string(callAlice), ""},
			req{"POST", "/v1/compliance/check", `{"to":"+15557770302"}`},
			req{"GET", "/v1/caller-ids", ""},
			req{"POST", call + "/hangup", `{}`},
		)
	case controller.RoleQA:
		return calls
	case controller.RoleAuditor:
		return []req{
			{"GET", "/v1/attempts/" + string(callAlice), ""},
			{"POST", "/v1/compliance/check", `{"to":"+15557770302"}`},
			{"GET", "/v1/audit", ""},
		}
	}
	return nil
}

func TestResponsesMaskNumbersByRole(t *testing.T) {
	t.Parallel()
	for _, role := range []controller.Role{controller.RoleAgent, controller.RoleQA, controller.RoleAuditor} {
		t.Run(string(role), func(t *testing.T) {
			t.Parallel()
			b, _ := setupPrivate(t)
			agentID := ""
			if role == controller.RoleAgent {
				agentID = agentAlice
			}
			auth := "Bearer " + b.tokens.issue(t, tenantA, role, agentID)
			for _, r := range readable(role) {
				rec := b.do(t, r.method, r.path, r.body, "Authorization", auth)
				require.True(t, rec.Code >= 200 && rec.Code < 300, "%s %s: %d %s", r.method, r.path, rec.Code, rec.Body)
				require.NotContains(t, rec.Body.String(), fullMarker, "%s %s as %s", r.method, r.path, role)
				if role != controller.RoleAuditor && strings.HasPrefix(r.path, "/v1/calls/"+string(callAlice)+"?") {
					var c api.CallResource
					decode(t, rec, &c)
					require.Equal(t, "****0100", c.To)
					require.Equal(t, "****0002", c.From)
					require.Equal(t, "****0100", c.Decision.Number)
					require.Equal(t, "****0123", c.Variables["cg_callback"], "a variable holding a number")
					require.Equal(t, "order-42", c.Variables["cg_ref"], "other variables as they are")
					require.Contains(t, c.Events[0].Event.Detail, "sofia/gateway/carrier/****0100")
				}
				if strings.HasSuffix(r.path, "/flow-run") {
					var run controller.FlowRun
					decode(t, rec, &run)
					var res struct {
						Tags map[string]string
						Path []struct{ Node, Digits, Webhook, At string }
					}
					require.NoError(t, json.Unmarshal(run.Path, &res))
					require.Equal(t, "****0124", res.Tags["callback"])
					require.Equal(t, "****0125", res.Path[0].Digits)
					require.Equal(t, "2025-03-14T09:26:53.123456789Z", res.Path[0].At, "times are not numbers")
					require.Equal(t, `{"echo":"****0100"}`, res.Path[1].Webhook)
					require.Equal(t, "2", res.Path[2].Digits, "a menu choice stays")
				}
			}
		})
	}
}

func TestAdminSeesFullNumbers(t *testing.T) {
	t.Parallel()
	b, w := setupPrivate(t)
	auth := "Bearer " + b.tokens.issue(t, tenantA, controller.RoleAdmin, "")
	rec := b.do(t, "GET", "/v1/calls/"+string(callAlice)+"?include=events", "", "Authorization", auth)
	require.Equal(t, http.StatusOK, rec.Code)
	var c api.CallResource
	decode(t, rec, &c)
	require.Equal(t, "+15557770100", c.To)
	require.Equal(t, "+15557770100", c.Decision.Number)
	require.Equal(t, "+15557770123", c.Variables["cg_callback"])
	require.Contains(t, c.Events[0].Event.Detail, "+15557770100")

	rec = b.do(t, "GET", "/v1/calls/"+string(callAlice)+"/flow-run", "", "Authorization", auth)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), "15557770125")
	rec = b.do(t, "GET", "/v1/consents?number=%2B15557770001", "", "Authorization", auth)
	require.Contains(t, rec.Body.String(), `"number":"+15557770001"`)

	// Masking copies: the service's data is untouched.
	require.Equal(t, "+15557770100", w.calls[callAlice].Decision.Number)
}

func TestAgentPlacesFullNumberSeesItMasked(t *testing.T) {
	t.Parallel()
	b, w := setupPrivate(t)
	auth := "Bearer " + b.tokens.issue(t, tenantA, controller.RoleAgent, "alice")
	rec := b.do(t, "POST", "/v1/calls", `{"to":"+15557770300","from":"+15557770002"}`, "Authorization", auth)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	var c api.CallResource
	decode(t, rec, &c)
	require.Equal(t, "****0300", c.To)
	require.Equal(t, "+15557770300", w.calls[c.ID].To, "the call was placed to the whole number")
}

func TestErrorsNeverEchoNumbers(t *testing.T) {
	t.Parallel()
	b, _ := setupPrivate(t)
	for _, role := range []controller.Role{controller.RoleAdmin, controller.RoleAgent} {
		agentID := map[controller.Role]string{controller.RoleAgent: "alice"}[role]
		auth := "Bearer " + b.tokens.issue(t, tenantA, role, agentID)
		// An unknown query parameter and an unknown member are named in the error.
		rec := b.do(t, "GET", "/v1/calls?15557770001=1", "", "Authorization", auth)
		d := requireError(t, rec, http.StatusBadRequest, "invalid", "****0001")
		require.NotContains(t, d.Message, fullMarker)
		rec = b.do(t, "POST", "/v1/calls", `{"to":"+15557770300","+15557770009":1}`, "Authorization", auth)
		require.Equal(t, http.StatusBadRequest, rec.Code)
		require.NotContains(t, rec.Body.String(), fullMarker, role)
	}
}
