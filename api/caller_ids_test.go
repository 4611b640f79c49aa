package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

func TestCallerIDsAPI(t *testing.T) {
	t.Parallel()
	b := setupAdmin(t)

	rec := b.do(t, http.MethodPost, "/v1/caller-ids", `{"number":"+1 212 555 0100"}`)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	var got map[string]string
	decode(t, rec, &got)
	require.Equal(t, "+12125550100", got["number"])

	requireError(t, b.do(t, http.MethodPost, "/v1/caller-ids", `{"number":"call me"}`), http.StatusBadRequest, controller.EINVALID, "number")
	requireError(t, b.do(t, http.MethodPost, "/v1/caller-ids", `{}`), http.StatusBadRequest, controller.EINVALID, "number")
	requireError(t, b.do(t, http.MethodPost, "/v1/caller-ids", `{"number":"+12125550100","owner":"x"}`), http.StatusBadRequest, controller.EINVALID, "owner")

	rec = b.do(t, http.MethodGet, "/v1/caller-ids", "")
	require.Equal(t, http.StatusOK, rec.Code)
	require.JSONEq(t, `{"caller_ids":[]}`, rec.Body.String())

	require.Equal(t, http.StatusNoContent, b.do(t, http.MethodDelete, "/v1/caller-ids/%2B12125550100", "").Code)

	// Without an administration behind the service: 503 in the error shape.
	plain := setup(t)
	requireError(t, plain.do(t, http.MethodGet, "/v1/caller-ids", ""), http.StatusServiceUnavailable, controller.EUNAVAILABLE, "")
}

func TestDeletePolicyAPI(t *testing.T) {
	t.Parallel()
	b := setupAdmin(t)
	require.Equal(t, http.StatusNoContent, b.do(t, http.MethodDelete, "/v1/policies/strict", "").Code)
	requireError(t, b.do(t, http.MethodDelete, "/v1/policies/assigned", ""), http.StatusConflict, controller.ECONFLICT, "")
	requireError(t, b.do(t, http.MethodDelete, "/v1/policies/missing", ""), http.StatusNotFound, controller.ENOTFOUND, "")
}
