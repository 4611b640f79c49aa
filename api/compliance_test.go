package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

func TestCheckCompliance(t *testing.T) {
	t.Parallel()
	b := setup(t)

	rec := b.do(t, http.MethodPost, "/v1/compliance/check", `{"to":"+12125551006","purpose":"service","at":"2026-11-21T15:00:00Z"}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var d controller.Decision
	decode(t, rec, &d)
	require.True(t, d.Allow)
	require.Equal(t, "+12125551006", d.Number)

	rec = b.do(t, http.MethodPost, "/v1/compliance/check", `{"to":"+12125550000"}`)
	require.Equal(t, http.StatusOK, rec.Code, "a block is an answer, not an error")
	decode(t, rec, &d)
	require.False(t, d.Allow)
	require.Equal(t, []string{controller.ReasonRefused}, d.Reasons)

	requireError(t, b.do(t, http.MethodPost, "/v1/compliance/check", `{}`), http.StatusBadRequest, controller.EINVALID, "to")
	requireError(t, b.do(t, http.MethodPost, "/v1/compliance/check", `{"to":"+12125551006","at":"yesterday"}`), http.StatusBadRequest, controller.EINVALID, "at")
	requireError(t, b.do(t, http.MethodPost, "/v1/compliance/check", `{"to":"+12125551006","dry":true}`), http.StatusBadRequest, controller.EINVALID, "dry")
}

func TestGetAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.svc.seed(controller.CallQueued)

	rec := b.do(t, http.MethodGet, "/v1/attempts/"+string(c.ID), "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var a controller.Attempt
	decode(t, rec, &a)
	require.Equal(t, c.ID, a.CallID)

	requireError(t, b.do(t, http.MethodGet, "/v1/attempts/not-a-uuid", ""), http.StatusNotFound, controller.ENOTFOUND, "")
	requireError(t, b.do(t, http.MethodGet, "/v1/attempts/00000000-0000-4000-8000-000000000000", ""), http.StatusNotFound, controller.ENOTFOUND, "")
}
