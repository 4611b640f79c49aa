package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/api"
	"github.com/callgate/callgate/controller"
)

// adminService is the fake CallService with a compliance administration.
type adminService struct {
	*fakeService
	adm *fakeAdmin
}

func (s adminService) Admin() controller.ComplianceAdmin { return s.adm }

// fakeAdmin is an in-memory controller.ComplianceAdmin.
type fakeAdmin struct {
	mu       sync.Mutex
	consents map[string]controller.Consent
	refusals map[string]controller.Refusal
	lists    map[string]*controller.DNCList
	entries  map[string]map[string]bool
	policies map[string][]controller.PolicyRecord
	lastLock controller.RefusalRequest
	lastOpts controller.DNCImport
	lastAsg  controller.PolicyAssignment
	seq      int
}

var _ controller.ComplianceAdmin = (*fakeAdmin)(nil)

func newFakeAdmin() *fakeAdmin {
	return &fakeAdmin{consents: map[string]controller.Consent{}, refusals: map[string]controller.Refusal{},
		lists: map[string]*controller.DNCList{}, entries: map[string]map[string]bool{},
		policies: map[string][]controller.PolicyRecord{}}
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)

func fakeNumber(raw string) (string, error) {
	n := strings.NewReplacer(" ", "", "-", "").Replace(raw)
	if !e164.MatchString(n) {
		return "", controller.FieldError("number", "not a valid phone number")
	}
	return n, nil
}

func (f *fakeAdmin) id() string {
	f.seq++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", f.seq)
}

func (f *fakeAdmin) CreateConsent(_ context.Context, tenant string, c controller.Consent) (controller.Consent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := fakeNumber(c.Number)
	if err != nil {
		return c, err
	}
	if c.Purpose != controller.PurposeMarketing && c.Purpose != controller.PurposeService && c.Purpose != controller.PurposeTransactional {
		return c, controller.FieldError("purpose", "unknown purpose")
	}
	c.ID, c.TenantID, c.Number = f.id(), tenant, n
	if c.GivenAt.IsZero() {
		c.GivenAt = fixedTime
	}
	f.consents[c.ID] = c
	return c, nil
}

func (f *fakeAdmin) GetConsent(_ context.Context, _, id string) (controller.Consent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.consents[id]
	if !ok {
		return c, controller.Errorf(controller.ENOTFOUND, "consent not found")
	}
	return c, nil
}

func (f *fakeAdmin) RevokeConsent(_ context.Context, _, id string) (controller.Consent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.consents[id]
	switch {
	case !ok:
		return c, controller.Errorf(controller.ENOTFOUND, "consent not found")
	case c.RevokedAt != nil:
		return c, controller.Errorf(controller.ECONFLICT, "consent was already revoked")
	}
	at := fixedTime
	c.RevokedAt = &at
	f.consents[id] = c
	return c, nil
}

func (f *fakeAdmin) ListConsents(_ context.Context, _, number string) ([]controller.Consent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := fakeNumber(number)
	if err != nil {
		return nil, err
	}
	var out []controller.Consent
	for _, c := range f.consents {
		if c.Number == n {
			out = append(out, c)
		}
	}
	return out, nil
}

func (f *fakeAdmin) LockNumber(_ context.Context, _ string, req controller.RefusalRequest) (controller.RefusalLock, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastLock = req
	n, err := fakeNumber(req.Number)
	if err != nil {
		return controller.RefusalLock{}, err
	}
	if req.Forever && req.Until != nil {
		return controller.RefusalLock{}, controller.FieldError("until", "must not be given with forever")
	}
	r := controller.Refusal{ID: f.id(), Number: n, Source: "api", At: fixedTime, Until: req.Until}
	f.refusals[r.ID] = r
	return controller.RefusalLock{Refusal: r, CanceledCalls: 2}, nil
}

func (f *fakeAdmin) ListRefusals(_ context.Context, number string) ([]controller.Refusal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := fakeNumber(number)
	if err != nil {
		return nil, err
	}
	var out []controller.Refusal
	for _, r := range f.refusals {
		if r.Number == n {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeAdmin) LiftRefusal(_ context.Context, _, id string) (controller.Refusal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.refusals[id]
	switch {
	case !ok:
		return r, controller.Errorf(controller.ENOTFOUND, "refusal not found")
	case r.LiftedAt != nil:
		return r, controller.Errorf(controller.ECONFLICT, "refusal was already lifted")
	}
	at := fixedTime
	r.LiftedAt = &at
	f.refusals[id] = r
	return r, nil
}

func (f *fakeAdmin) CreateDNCList(_ context.Context, tenant string, l controller.DNCList) (controller.DNCList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l.Name == "" {
		return l, controller.FieldError("name", "is required")
	}
	if l.ID == "" {
		l.ID = f.id()
	}
	if _, dup := f.lists[l.ID]; dup {
		return l, controller.Errorf(controller.ECONFLICT, "already exists")
	}
	l.TenantID = tenant
	f.lists[l.ID] = &l
	f.entries[l.ID] = map[string]bool{}
	return l, nil
}

func (f *fakeAdmin) ListDNCLists(context.Context, string) ([]controller.DNCList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []controller.DNCList
	for _, l := range f.lists {
		out = append(out, *l)
	}
	return out, nil
}

func (f *fakeAdmin) list(id string) (*controller.DNCList, error) {
	l, ok := f.lists[id]
	if !ok {
		return nil, controller.Errorf(controller.ENOTFOUND, "do-not-call list not found")
	}
	return l, nil
}

func (f *fakeAdmin) AddDNCNumber(_ context.Context, _, listID, number string) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := fakeNumber(number)
	if err != nil {
		return "", false, err
	}
	l, err := f.list(listID)
	if err != nil {
		return "", false, err
	}
	if f.entries[listID][n] {
		return n, false, nil
	}
	f.entries[listID][n] = true
	l.Entries++
	return n, true, nil
}

func (f *fakeAdmin) RemoveDNCNumber(_ context.Context, _, listID, number string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := fakeNumber(number)
	if err != nil {
		return err
	}
	l, err := f.list(listID)
	if err != nil {
		return err
	}
	if !f.entries[listID][n] {
		return controller.Errorf(controller.ENOTFOUND, "number is not on the list")
	}
	delete(f.entries[listID], n)
	l.Entries--
	return nil
}

func (f *fakeAdmin) MarkDNCScrubbed(_ context.Context, _, listID string) (controller.DNCList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.list(listID)
	if err != nil {
		return controller.DNCList{}, err
	}
	l.LastScrubAt = fixedTime
	return *l, nil
}

// ImportDNC reads one number a line (a first line that is not a number is
// a header), like the store.
func (f *fakeAdmin) ImportDNC(_ context.Context, _, listID string, r io.Reader, opts controller.DNCImport) (controller.DNCImportResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastOpts = opts
	res := controller.DNCImportResult{ListID: listID, RejectedRows: []controller.DNCRowError{}}
	l, err := f.list(listID)
	if err != nil {
		return res, err
	}
	sc := bufio.NewScanner(r)
	for line := int64(1); sc.Scan(); line++ {
		field, _, _ := strings.Cut(sc.Text(), ",")
		n, err := fakeNumber(field)
		switch {
		case err != nil && line == 1:
			res.Header = true
			continue
		case err != nil:
			res.Rows++
			res.Rejected++
			res.RejectedRows = append(res.RejectedRows, controller.DNCRowError{Line: line, Error: "invalid number"})
			continue
		}
		res.Rows++
		if f.entries[listID][n] {
			res.Duplicates++
			continue
		}
		f.entries[listID][n] = true
		l.Entries++
		res.Accepted++
	}
	if err := sc.Err(); err != nil {
		return res, err
	}
	if opts.Scrub {
		l.LastScrubAt = fixedTime
		res.LastScrubAt = fixedTime
	}
	res.Entries = l.Entries
	return res, nil
}

func (f *fakeAdmin) AddCallerID(_ context.Context, _, number string) (string, error) {
	return fakeNumber(number)
}

func (f *fakeAdmin) DeletePolicy(_ context.Context, _, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id == "assigned" {
		return controller.Errorf(controller.ECONFLICT, "policy is assigned")
	}
	if id == "missing" {
		return controller.Errorf(controller.ENOTFOUND, "policy not found")
	}
	return nil
}

func (f *fakeAdmin) RemoveCallerID(context.Context, string, string) error { return nil }

func (f *fakeAdmin) ListCallerIDs(context.Context, string) ([]string, error) { return []string{}, nil }

func (f *fakeAdmin) PutPolicy(_ context.Context, tenant, id string, body json.RawMessage) (controller.PolicyRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	var doc struct {
		Name            string `json:"name"`
		RefusalLockDays int    `json:"refusal_lock_days"`
	}
	if err := dec.Decode(&doc); err != nil {
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return controller.PolicyRecord{}, controller.FieldError(strings.Trim(name, `"`), "unknown field")
		}
		return controller.PolicyRecord{}, controller.Errorf(controller.EINVALID, "bad policy")
	}
	if doc.RefusalLockDays == 0 {
		return controller.PolicyRecord{}, controller.FieldError("refusal_lock_days", "must be ≥ 1 or -1")
	}
	p := controller.PolicyRecord{ID: id, Version: len(f.policies[id]) + 1, TenantID: tenant, Name: doc.Name,
		Body: body, CreatedAt: fixedTime}
	f.policies[id] = append(f.policies[id], p)
	return p, nil
}

func (f *fakeAdmin) GetPolicy(_ context.Context, _, id string, version int) (controller.PolicyRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vs := f.policies[id]
	switch {
	case len(vs) == 0 || version > len(vs):
		return controller.PolicyRecord{}, controller.Errorf(controller.ENOTFOUND, "policy not found")
	case version == 0:
		return vs[len(vs)-1], nil
	}
	return vs[version-1], nil
}

func (f *fakeAdmin) ListPolicies(context.Context, string) ([]controller.PolicyRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []controller.PolicyRecord
	for _, vs := range f.policies {
		out = append(out, vs[len(vs)-1])
	}
	return out, nil
}

func (f *fakeAdmin) AssignPolicy(_ context.Context, _ string, a controller.PolicyAssignment) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastAsg = a
	if len(f.policies[a.PolicyID]) == 0 {
		return controller.Errorf(controller.ENOTFOUND, "policy not found")
	}
	return nil
}

// adminBundle is a bundle whose service has a compliance administration.
type adminBundle struct {
	*bundle
	adm *fakeAdmin
}

func setupAdmin(t testing.TB, cfg ...api.Config) *adminBundle {
	t.Helper()
	var c api.Config
	if len(cfg) > 0 {
		c = cfg[0]
	}
	b := &bundle{svc: newFakeService(), reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	c, b.tokens, b.admin = withTokens(t, c)
	adm := newFakeAdmin()
	b.srv = api.New(c, adminService{fakeService: b.svc, adm: adm}, b.reg, nil)
	b.h = b.srv.Handler()
	return &adminBundle{bundle: b, adm: adm}
}

func (b *adminBundle) csv(t testing.TB, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	req.Header.Set("Content-Type", "text/csv; charset=utf-8")
	return b.serve(req)
}

func TestConsentsAPI(t *testing.T) {
	t.Parallel()
	b := setupAdmin(t)

	rec := b.do(t, http.MethodPost, "/v1/consents", `{"number":"+1 212 555 1001","purpose":"marketing","source":"agent","proof_ref":"rec-1","expires_at":"2027-01-01T00:00:00Z"}`)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	var c controller.Consent
	decode(t, rec, &c)
	require.Equal(t, "+12125551001", c.Number)
	require.Equal(t, controller.DefaultTenant, c.TenantID)
	require.NotNil(t, c.ExpiresAt)

	rec = b.do(t, http.MethodGet, "/v1/consents/"+c.ID, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	rec = b.do(t, http.MethodGet, "/v1/consents?number=%2B12125551001", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var list struct {
		Consents []controller.Consent `json:"consents"`
	}
	decode(t, rec, &list)
	require.Len(t, list.Consents, 1)

	rec = b.do(t, http.MethodPost, "/v1/consents/"+c.ID+"/revoke", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	decode(t, rec, &c)
	require.NotNil(t, c.RevokedAt)
	requireError(t, b.do(t, http.MethodPost, "/v1/consents/"+c.ID+"/revoke", `{}`), http.StatusConflict, controller.ECONFLICT, "")
	requireError(t, b.do(t, http.MethodPost, "/v1/consents/"+c.ID+"/revoke", `{"at":"now"}`), http.StatusBadRequest, controller.EINVALID, "at")

	for _, tc := range []struct {
		body, field string
	}{
		{`{"number":`, ""},
		{`[]`, ""},
		{`{"number":"+12125551001","purpose":"marketing","source":"agent","evidence":"x"}`, "evidence"},
		{`{"number":"12","purpose":"marketing","source":"agent"}`, "number"},
		{`{"purpose":"marketing","source":"agent"}`, "number"},
		{`{"number":"+12125551001","purpose":"other","source":"agent"}`, "purpose"},
		{`{"number":"+12125551001","purpose":"marketing","source":"agent","given_at":"yesterday"}`, "given_at"},
		{`{"number":12125551001}`, "number"},
	} {
		requireError(t, b.do(t, http.MethodPost, "/v1/consents", tc.body), http.StatusBadRequest, controller.EINVALID, tc.field)
	}
	requireError(t, b.do(t, http.MethodGet, "/v1/consents/00000000-0000-4000-8000-999999999999", ""), http.StatusNotFound, controller.ENOTFOUND, "")
	requireError(t, b.do(t, http.MethodPost, "/v1/consents/nope/revoke", ""), http.StatusNotFound, controller.ENOTFOUND, "")
	requireError(t, b.do(t, http.MethodGet, "/v1/consents", ""), http.StatusBadRequest, controller.EINVALID, "number")
	requireError(t, b.do(t, http.MethodGet, "/v1/consents?number=12", ""), http.StatusBadRequest, controller.EINVALID, "number")
	requireError(t, b.do(t, http.MethodGet, "/v1/consents?number=%2B12125551001&tenant=x", ""), http.StatusBadRequest, controller.EINVALID, "tenant")
}

func TestRefusalsAPI(t *testing.T) {
	t.Parallel()
	b := setupAdmin(t)

	rec := b.do(t, http.MethodPost, "/v1/refusals", `{"number":"+12125551005","until":"2027-02-01T00:00:00Z"}`)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	var lock controller.RefusalLock
	decode(t, rec, &lock)
	require.Equal(t, 2, lock.CanceledCalls)
	require.Equal(t, "+12125551005", lock.Refusal.Number)
	require.NotNil(t, b.adm.lastLock.Until)
	require.False(t, b.adm.lastLock.Forever)

	rec = b.do(t, http.MethodPost, "/v1/refusals", `{"number":"+12125551005","forever":true,"source":"agent"}`)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	require.True(t, b.adm.lastLock.Forever)
	require.Nil(t, b.adm.lastLock.Until)
	require.Equal(t, "agent", b.adm.lastLock.Source)

	rec = b.do(t, http.MethodGet, "/v1/refusals?number=%2B12125551005", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var list struct {
		Refusals []controller.Refusal `json:"refusals"`
	}
	decode(t, rec, &list)
	require.Len(t, list.Refusals, 2)

	rec = b.do(t, http.MethodPost, "/v1/refusals/"+lock.Refusal.ID+"/lift", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var r controller.Refusal
	decode(t, rec, &r)
	require.NotNil(t, r.LiftedAt)
	requireError(t, b.do(t, http.MethodPost, "/v1/refusals/"+lock.Refusal.ID+"/lift", ""), http.StatusConflict, controller.ECONFLICT, "")
	requireError(t, b.do(t, http.MethodPost, "/v1/refusals/nope/lift", ""), http.StatusNotFound, controller.ENOTFOUND, "")

	for _, tc := range []struct {
		body, field string
	}{
		{`{"number":"+12125551005"`, ""},
		{`{"number":"+12125551005","days":3}`, "days"},
		{`{"number":"555"}`, "number"},
		{`{}`, "number"},
		{`{"number":"+12125551005","forever":"yes"}`, "forever"},
		{`{"number":"+12125551005","until":"soon"}`, "until"},
		{`{"number":"+12125551005","until":"2027-02-01T00:00:00Z","forever":true}`, "until"},
	} {
		requireError(t, b.do(t, http.MethodPost, "/v1/refusals", tc.body), http.StatusBadRequest, controller.EINVALID, tc.field)
	}
	requireError(t, b.do(t, http.MethodGet, "/v1/refusals?number=abc", ""), http.StatusBadRequest, controller.EINVALID, "number")
}

func TestDNCAPI(t *testing.T) {
	t.Parallel()
	b := setupAdmin(t)

	rec := b.do(t, http.MethodPost, "/v1/dnc/lists", `{"id":"internal","name":"Internal","kind":"internal"}`)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	var l controller.DNCList
	decode(t, rec, &l)
	require.Equal(t, "internal", l.ID)
	requireError(t, b.do(t, http.MethodPost, "/v1/dnc/lists", `{"id":"internal","name":"Internal","kind":"internal"}`), http.StatusConflict, controller.ECONFLICT, "")
	requireError(t, b.do(t, http.MethodPost, "/v1/dnc/lists", `{"kind":"internal"}`), http.StatusBadRequest, controller.EINVALID, "name")
	requireError(t, b.do(t, http.MethodPost, "/v1/dnc/lists", `{"name":"x","global":true}`), http.StatusBadRequest, controller.EINVALID, "global")

	rec = b.do(t, http.MethodPost, "/v1/dnc/lists/internal/numbers", `{"number":"+1 212 555 1001"}`)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	var e struct {
		ListID string `json:"list_id"`
		Number string `json:"number"`
		Added  bool   `json:"added"`
	}
	decode(t, rec, &e)
	require.Equal(t, "+12125551001", e.Number)
	require.True(t, e.Added)
	rec = b.do(t, http.MethodPost, "/v1/dnc/lists/internal/numbers", `{"number":"+12125551001"}`)
	require.Equal(t, http.StatusOK, rec.Code, "already on the list")
	requireError(t, b.do(t, http.MethodPost, "/v1/dnc/lists/internal/numbers", `{"number":"x"}`), http.StatusBadRequest, controller.EINVALID, "number")
	requireError(t, b.do(t, http.MethodPost, "/v1/dnc/lists/internal/numbers", `{"numbers":["x"]}`), http.StatusBadRequest, controller.EINVALID, "numbers")
	requireError(t, b.do(t, http.MethodPost, "/v1/dnc/lists/internal/numbers", `{"number":`), http.StatusBadRequest, controller.EINVALID, "")
	requireError(t, b.do(t, http.MethodPost, "/v1/dnc/lists/nope/numbers", `{"number":"+12125551001"}`), http.StatusNotFound, controller.ENOTFOUND, "")

	// Import: a header, a good row, a duplicate, a bad row on line 4.
	rec = b.csv(t, "/v1/dnc/lists/internal/import?scrub=true", "number,name\n+12125551002,a\n+12125551001,b\nnot-a-number,c\n")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var rep controller.DNCImportResult
	decode(t, rec, &rep)
	require.True(t, rep.Header)
	require.EqualValues(t, 1, rep.Accepted)
	require.EqualValues(t, 1, rep.Duplicates)
	require.EqualValues(t, 1, rep.Rejected)
	require.Equal(t, []controller.DNCRowError{{Line: 4, Error: "invalid number"}}, rep.RejectedRows)
	require.EqualValues(t, 2, rep.Entries)
	require.True(t, b.adm.lastOpts.Scrub)

	requireError(t, b.do(t, http.MethodPost, "/v1/dnc/lists/internal/import", `{"number":"+12125551002"}`),
		http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type")
	requireError(t, b.csv(t, "/v1/dnc/lists/internal/import?scrub=yes", "+12125551002\n"), http.StatusBadRequest, controller.EINVALID, "scrub")
	requireError(t, b.csv(t, "/v1/dnc/lists/internal/import?replace=true", "+12125551002\n"), http.StatusBadRequest, controller.EINVALID, "replace")
	requireError(t, b.csv(t, "/v1/dnc/lists/nope/import", "+12125551002\n"), http.StatusNotFound, controller.ENOTFOUND, "")

	rec = b.do(t, http.MethodGet, "/v1/dnc/lists", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var lists struct {
		Lists []controller.DNCList `json:"lists"`
	}
	decode(t, rec, &lists)
	require.Len(t, lists.Lists, 1)
	require.EqualValues(t, 2, lists.Lists[0].Entries)
	require.Equal(t, fixedTime, lists.Lists[0].LastScrubAt)

	rec = b.do(t, http.MethodDelete, "/v1/dnc/lists/internal/numbers/%2B12125551002", "")
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	requireError(t, b.do(t, http.MethodDelete, "/v1/dnc/lists/internal/numbers/+12125551002", ""), http.StatusNotFound, controller.ENOTFOUND, "")
	requireError(t, b.do(t, http.MethodDelete, "/v1/dnc/lists/internal/numbers/abc", ""), http.StatusBadRequest, controller.EINVALID, "number")
	rec = b.do(t, http.MethodDelete, "/v1/dnc/lists/internal/numbers/+12125551001", "")
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
}

// TestDNCImportBodyLimit: an upload is not held to the small JSON body
// limit, but to its own.
func TestDNCImportBodyLimit(t *testing.T) {
	t.Parallel()
	b := setupAdmin(t, api.Config{MaxBodyBytes: 64, MaxImportBytes: 1024})
	require.Equal(t, http.StatusCreated, b.do(t, http.MethodPost, "/v1/dnc/lists", `{"id":"l","name":"L","kind":"internal"}`).Code)

	upload := strings.Repeat("+12125551002\n", 20) // 260 bytes: over the JSON limit
	rec := b.csv(t, "/v1/dnc/lists/l/import", upload)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	requireError(t, b.csv(t, "/v1/dnc/lists/l/import", strings.Repeat("+12125551002\n", 100)),
		http.StatusRequestEntityTooLarge, controller.ETOOLARGE, "")
	requireError(t, b.do(t, http.MethodPost, "/v1/dnc/lists/l/numbers", `{"number":"+12125551002","x":"`+strings.Repeat("a", 100)+`"}`),
		http.StatusRequestEntityTooLarge, controller.ETOOLARGE, "")
}

func TestPoliciesAPI(t *testing.T) {
	t.Parallel()
	b := setupAdmin(t)

	body := `{"name":"strict","refusal_lock_days":90}`
	rec := b.do(t, http.MethodPut, "/v1/policies/strict", body)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var p controller.PolicyRecord
	decode(t, rec, &p)
	require.Equal(t, 1, p.Version)
	rec = b.do(t, http.MethodPut, "/v1/policies/strict", body)
	decode(t, rec, &p)
	require.Equal(t, 2, p.Version)

	rec = b.do(t, http.MethodGet, "/v1/policies/strict?version=1", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	decode(t, rec, &p)
	require.Equal(t, 1, p.Version)
	rec = b.do(t, http.MethodGet, "/v1/policies/strict", "")
	decode(t, rec, &p)
	require.Equal(t, 2, p.Version)

	rec = b.do(t, http.MethodGet, "/v1/policies", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var list struct {
		Policies []controller.PolicyRecord `json:"policies"`
	}
	decode(t, rec, &list)
	require.Len(t, list.Policies, 1)

	rec = b.do(t, http.MethodPost, "/v1/policies/strict/assign", `{"campaign_id":"spring"}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, controller.PolicyAssignment{PolicyID: "strict", CampaignID: "spring"}, b.adm.lastAsg)
	rec = b.do(t, http.MethodPost, "/v1/policies/strict/assign", "")
	require.Equal(t, http.StatusOK, rec.Code, "no body: the tenant's default")
	require.Equal(t, "", b.adm.lastAsg.CampaignID)

	requireError(t, b.do(t, http.MethodPut, "/v1/policies/strict", `{"refusal_lock_days":90,"bogus":1}`), http.StatusBadRequest, controller.EINVALID, "bogus")
	requireError(t, b.do(t, http.MethodPut, "/v1/policies/strict", `{"refusal_lock_days":0}`), http.StatusBadRequest, controller.EINVALID, "refusal_lock_days")
	requireError(t, b.do(t, http.MethodPut, "/v1/policies/strict", `{"refusal_lock_days":`), http.StatusBadRequest, controller.EINVALID, "")
	requireError(t, b.do(t, http.MethodPut, "/v1/policies/strict", `[1]`), http.StatusBadRequest, controller.EINVALID, "")
	requireError(t, b.do(t, http.MethodPut, "/v1/policies/strict", ""), http.StatusBadRequest, controller.EINVALID, "")
	req := httptest.NewRequest(http.MethodPut, "/v1/policies/strict", strings.NewReader(body))
	req.Header.Set("Content-Type", "text/plain")
	requireError(t, b.serve(req), http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type")
	requireError(t, b.do(t, http.MethodGet, "/v1/policies/strict?version=0", ""), http.StatusBadRequest, controller.EINVALID, "version")
	requireError(t, b.do(t, http.MethodGet, "/v1/policies/strict?version=9", ""), http.StatusNotFound, controller.ENOTFOUND, "")
	requireError(t, b.do(t, http.MethodGet, "/v1/policies/missing", ""), http.StatusNotFound, controller.ENOTFOUND, "")
	requireError(t, b.do(t, http.MethodPost, "/v1/policies/missing/assign", `{}`), http.StatusNotFound, controller.ENOTFOUND, "")
	requireError(t, b.do(t, http.MethodPost, "/v1/policies/strict/assign", `{"campaign":"x"}`), http.StatusBadRequest, controller.EINVALID, "campaign")
}

// TestAdminUnavailable: without an administration behind the service every
// administration route answers 503 in the error shape.
func TestAdminUnavailable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, r := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/consents", `{}`},
		{http.MethodGet, "/v1/consents?number=%2B12125551001", ""},
		{http.MethodGet, "/v1/consents/x", ""},
		{http.MethodPost, "/v1/consents/x/revoke", ""},
		{http.MethodPost, "/v1/refusals", `{}`},
		{http.MethodGet, "/v1/refusals?number=%2B12125551001", ""},
		{http.MethodPost, "/v1/refusals/x/lift", ""},
		{http.MethodPost, "/v1/dnc/lists", `{}`},
		{http.MethodGet, "/v1/dnc/lists", ""},
		{http.MethodPost, "/v1/dnc/lists/x/numbers", `{}`},
		{http.MethodDelete, "/v1/dnc/lists/x/numbers/1", ""},
		{http.MethodPost, "/v1/dnc/lists/x/import", ""},
		{http.MethodPut, "/v1/policies/x", `{}`},
		{http.MethodGet, "/v1/policies", ""},
		{http.MethodGet, "/v1/policies/x", ""},
		{http.MethodPost, "/v1/policies/x/assign", ""},
	} {
		requireError(t, b.do(t, r.method, r.path, r.body), http.StatusServiceUnavailable, controller.EUNAVAILABLE, "")
	}
}
