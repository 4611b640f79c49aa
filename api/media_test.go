package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/api"
	"github.com/callgate/callgate/controller"
)

// fakeFlows is an in-memory controller.FlowAdmin. SaveFlow and
// ValidateFlow "find" problems: what is set in problems.
type fakeFlows struct {
	mu       sync.Mutex
	flows    map[string][]controller.FlowRecord
	prompts  map[string][]controller.Prompt
	runs     map[controller.CallID]controller.FlowRun
	problems []controller.FlowProblem

	uploads    int
	lastPrompt controller.Prompt
	lastAudio  []byte
}

var _ controller.FlowAdmin = (*fakeFlows)(nil)

func newFakeFlows() *fakeFlows {
	return &fakeFlows{flows: map[string][]controller.FlowRecord{}, prompts: map[string][]controller.Prompt{},
		runs: map[controller.CallID]controller.FlowRun{}}
}

// with runs fn holding the fake's lock, to set it up or inspect it.
func (f *fakeFlows) with(fn func(f *fakeFlows)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// check is the fake validation: a body that is not a JSON object cannot be
// decoded at all; otherwise the configured problems are found, and any
// error among them refuses the flow as controller/ivr does.
func (f *fakeFlows) check(body []byte) (string, []controller.FlowProblem, error) {
	var doc struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", nil, controller.FieldError("flow", "malformed JSON")
	}
	problems := append([]controller.FlowProblem(nil), f.problems...)
	for _, p := range problems {
		if p.Severity == "error" {
			return "", problems, &controller.Error{Code: controller.EINVALID, Field: "nodes." + p.Node + "." + p.Field,
				Message: "flow has 1 error: " + p.Message}
		}
	}
	return doc.Name, problems, nil
}

func (f *fakeFlows) SaveFlow(_ context.Context, tenant, id string, body []byte) (controller.FlowRecord, []controller.FlowProblem, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name, problems, err := f.check(body)
	if err != nil {
		return controller.FlowRecord{}, problems, err
	}
	rec := controller.FlowRecord{ID: id, TenantID: tenant, Name: name, Version: len(f.flows[id]) + 1,
		Body: json.RawMessage(body), CreatedAt: fixedTime}
	f.flows[id] = append(f.flows[id], rec)
	return rec, problems, nil
}

func (f *fakeFlows) ValidateFlow(_ context.Context, _ string, body []byte) ([]controller.FlowProblem, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, problems, err := f.check(body)
	if err != nil && problems == nil {
		return nil, err
	}
	return problems, nil
}

func (f *fakeFlows) GetFlow(_ context.Context, _, id string, version int) (controller.FlowRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vs := f.flows[id]
	switch {
	case len(vs) == 0 || version > len(vs):
		return controller.FlowRecord{}, controller.Errorf(controller.ENOTFOUND, "flow %s not found", id)
	case version == 0:
		return vs[len(vs)-1], nil
	}
	return vs[version-1], nil
}

func (f *fakeFlows) ListFlows(context.Context, string) ([]controller.FlowRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []controller.FlowRecord
	for _, vs := range f.flows {
		out = append(out, vs[len(vs)-1])
	}
	return out, nil
}

func (f *fakeFlows) FlowRun(_ context.Context, _ string, call controller.CallID) (controller.FlowRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.runs[call]
	if !ok {
		return r, controller.Errorf(controller.ENOTFOUND, "call %s ran no flow", call)
	}
	return r, nil
}

// UploadPrompt reads the whole upload and, like controller/ivr, wraps a
// read failure (a body over the limit among them) with %w.
func (f *fakeFlows) UploadPrompt(_ context.Context, p controller.Prompt, wav io.Reader) (controller.Prompt, error) {
	audio, err := io.ReadAll(wav)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.uploads++
	f.lastPrompt, f.lastAudio = p, audio
	if err != nil {
		return controller.Prompt{}, fmt.Errorf("uploading prompt %s: %w", p.Name, err)
	}
	p.Version = len(f.prompts[p.Name]) + 1
	p.ID = fmt.Sprintf("%s.v%d", p.Name, p.Version)
	p.Size, p.DurationMS, p.SHA256, p.File = int64(len(audio)), 1500, strings.Repeat("ab", 32), p.Name+".wav"
	p.CreatedAt = fixedTime
	f.prompts[p.Name] = append(f.prompts[p.Name], p)
	return p, nil
}

func (f *fakeFlows) GetPrompt(_ context.Context, _, name string, version int) (controller.Prompt, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vs := f.prompts[name]
	switch {
	case len(vs) == 0 || version > len(vs):
		return controller.Prompt{}, controller.Errorf(controller.ENOTFOUND, "prompt %s not found", name)
	case version == 0:
		return vs[len(vs)-1], nil
	}
	return vs[version-1], nil
}

func (f *fakeFlows) ListPrompts(context.Context, string) ([]controller.Prompt, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []controller.Prompt
	for _, vs := range f.prompts {
		out = append(out, vs[len(vs)-1])
	}
	return out, nil
}

// fakeRecordings is an in-memory controller.RecordingAdmin.
type fakeRecordings struct {
	mu      sync.Mutex
	recs    map[string]controller.Recording
	audio   map[string][]byte
	failAt  map[string]int // the audio stream fails after this many bytes
	active  map[controller.CallID]bool
	actions []string // "pause <call>", "resume <call>"
	opened  int
	closed  int
}

var _ controller.RecordingAdmin = (*fakeRecordings)(nil)

func newFakeRecordings() *fakeRecordings {
	return &fakeRecordings{recs: map[string]controller.Recording{}, audio: map[string][]byte{},
		failAt: map[string]int{}, active: map[controller.CallID]bool{}}
}

// with runs fn holding the fake's lock, to set it up or inspect it.
func (f *fakeRecordings) with(fn func(f *fakeRecordings)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeRecordings) GetRecording(_ context.Context, _, id string) (controller.Recording, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.recs[id]
	if !ok {
		return r, controller.Errorf(controller.ENOTFOUND, "recording %s not found", id)
	}
	return r, nil
}

func (f *fakeRecordings) ListRecordings(_ context.Context, _ string, call controller.CallID) ([]controller.Recording, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []controller.Recording
	for _, r := range f.recs {
		if r.CallID == call {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeRecordings) OpenRecording(_ context.Context, _, id string) (controller.Recording, io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.recs[id]
	switch {
	case !ok:
		return r, nil, controller.Errorf(controller.ENOTFOUND, "recording %s not found", id)
	case r.Status != controller.RecordingStored:
		return r, nil, controller.Errorf(controller.ECONFLICT, "recording %s is %s, not stored", id, r.Status)
	}
	f.opened++
	var rd io.Reader = bytes.NewReader(f.audio[id])
	if n, ok := f.failAt[id]; ok {
		rd = io.MultiReader(bytes.NewReader(f.audio[id][:n]), errReader{errors.New("decrypting: message authentication failed")})
	}
	return r, &trackedCloser{Reader: rd, f: f}, nil
}

func (f *fakeRecordings) mask(call controller.CallID, action string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.active[call] {
		return controller.Errorf(controller.ENOTFOUND, "call %s has no active recording", call)
	}
	f.actions = append(f.actions, action+" "+string(call))
	return nil
}

func (f *fakeRecordings) PauseRecording(_ context.Context, _ string, call controller.CallID) error {
	return f.mask(call, "pause")
}

func (f *fakeRecordings) ResumeRecording(_ context.Context, _ string, call controller.CallID) error {
	return f.mask(call, "resume")
}

// trackedCloser counts Close calls on its fake.
type trackedCloser struct {
	io.Reader
	f *fakeRecordings
}

func (c *trackedCloser) Close() error {
	c.f.with(func(f *fakeRecordings) { f.closed++ })
	return nil
}

type errReader struct{ err error }

func base64Of(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// mediaBundle is a bundle whose server has flow and recording administration.
type mediaBundle struct {
	*bundle
	flows *fakeFlows
	recs  *fakeRecordings
}

func setupMedia(t testing.TB, cfg ...api.Config) *mediaBundle {
	t.Helper()
	b := &mediaBundle{bundle: setup(t, cfg...), flows: newFakeFlows(), recs: newFakeRecordings()}
	b.srv.SetMedia(b.flows, b.recs)
	return b
}

// formPart is one part of a multipart/form-data body; a file name makes it
// a file part.
type formPart struct {
	name, filename string
	data           []byte
}

func textPart(name, value string) formPart { return formPart{name: name, data: []byte(value)} }

func audioPart(data []byte) formPart {
	return formPart{name: "audio", filename: "prompt.wav", data: data}
}

// multipartBody encodes parts in order and returns the body and its
// Content-Type.
func multipartBody(t testing.TB, parts ...formPart) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		var (
			pw  io.Writer
			err error
		)
		if p.filename != "" {
			pw, err = w.CreateFormFile(p.name, p.filename)
		} else {
			pw, err = w.CreateFormField(p.name)
		}
		require.NoError(t, err)
		_, err = pw.Write(p.data)
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	return buf.Bytes(), w.FormDataContentType()
}

// upload POSTs parts to /v1/prompts/{name}.
func (b *mediaBundle) upload(t testing.TB, name string, parts ...formPart) *httptest.ResponseRecorder {
	t.Helper()
	body, ct := multipartBody(t, parts...)
	req := httptest.NewRequest(http.MethodPost, "/v1/prompts/"+name, bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	return b.serve(req)
}

// wav is a stand-in WAV file: the fake does not parse it.
var wav = append([]byte("RIFF\x24\x00\x00\x00WAVEfmt "), bytes.Repeat([]byte{0x01, 0xfe}, 600)...)

const flowDoc = `{"name":"Reminder","start":"hello","nodes":{"hello":{"type":"play","prompt":"welcome","next":"bye"},"bye":{"type":"hangup"}}}`

// flowSaved is the body of PUT /v1/flows/{id}.
type flowSaved struct {
	controller.FlowRecord
	Warnings []controller.FlowProblem `json:"warnings"`
}

func TestFlowsAPI(t *testing.T) {
	t.Parallel()
	b := setupMedia(t)

	rec := b.do(t, http.MethodPut, "/v1/flows/reminder", flowDoc)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), `"warnings":[]`, "no warnings is an empty list, not null")
	var saved flowSaved
	decode(t, rec, &saved)
	require.Equal(t, "reminder", saved.ID)
	require.Equal(t, controller.DefaultTenant, saved.TenantID)
	require.Equal(t, "Reminder", saved.Name)
	require.Equal(t, 1, saved.Version)
	require.JSONEq(t, flowDoc, string(saved.Body))
	require.Empty(t, saved.Warnings)

	rec = b.do(t, http.MethodPut, "/v1/flows/reminder", flowDoc)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	decode(t, rec, &saved)
	require.Equal(t, 2, saved.Version)

	var got controller.FlowRecord
	rec = b.do(t, http.MethodGet, "/v1/flows/reminder", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	decode(t, rec, &got)
	require.Equal(t, 2, got.Version, "the newest by default")
	require.JSONEq(t, flowDoc, string(got.Body))

	rec = b.do(t, http.MethodGet, "/v1/flows/reminder?version=1", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	decode(t, rec, &got)
	require.Equal(t, 1, got.Version)

	rec = b.do(t, http.MethodGet, "/v1/flows", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var list struct {
		Flows []controller.FlowRecord `json:"flows"`
	}
	decode(t, rec, &list)
	require.Len(t, list.Flows, 1)
	require.Equal(t, 2, list.Flows[0].Version)

	for _, v := range []string{"0", "-1", "abc", "1.5", "%2B"} {
		requireError(t, b.do(t, http.MethodGet, "/v1/flows/reminder?version="+v, ""), http.StatusBadRequest, controller.EINVALID, "version")
	}
	requireError(t, b.do(t, http.MethodGet, "/v1/flows/reminder?version=1&version=2", ""), http.StatusBadRequest, controller.EINVALID, "version")
	requireError(t, b.do(t, http.MethodGet, "/v1/flows/reminder?version=9", ""), http.StatusNotFound, controller.ENOTFOUND, "")
	requireError(t, b.do(t, http.MethodGet, "/v1/flows/missing", ""), http.StatusNotFound, controller.ENOTFOUND, "")
	requireError(t, b.do(t, http.MethodGet, "/v1/flows/reminder?v=1", ""), http.StatusBadRequest, controller.EINVALID, "v")
	requireError(t, b.do(t, http.MethodGet, "/v1/flows?tenant=other", ""), http.StatusBadRequest, controller.EINVALID, "tenant")
	requireError(t, b.do(t, http.MethodPut, "/v1/flows/reminder?dry_run=true", flowDoc), http.StatusBadRequest, controller.EINVALID, "dry_run")
	requireError(t, b.do(t, http.MethodPut, "/v1/flows/reminder", `{"start":`), http.StatusBadRequest, controller.EINVALID, "flow")

	b.flows.with(func(f *fakeFlows) { require.Len(t, f.flows["reminder"], 2, "refused requests stored nothing") })
}

// TestPutFlowRefused: a flow with errors is not stored and the 400 carries
// the error shape and every problem.
func TestPutFlowRefused(t *testing.T) {
	t.Parallel()
	b := setupMedia(t)
	problems := []controller.FlowProblem{
		{Node: "menu", Field: "next", Severity: "error", Message: `names unknown node "nowhere"`},
		{Node: "hello", Field: "prompt_url", Severity: "warning", Message: "the text of a prompt URL is unknown"},
	}
	b.flows.with(func(f *fakeFlows) { f.problems = problems })

	rec := b.do(t, http.MethodPut, "/v1/flows/reminder", flowDoc, "X-Request-Id", "req-flow-1")
	require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
	var body struct {
		Error    api.ErrorDetail          `json:"error"`
		Problems []controller.FlowProblem `json:"problems"`
	}
	decode(t, rec, &body)
	require.Equal(t, controller.EINVALID, body.Error.Code)
	require.Equal(t, "nodes.menu.next", body.Error.Field)
	require.NotEmpty(t, body.Error.Message)
	require.Equal(t, "req-flow-1", body.Error.RequestID)
	require.Equal(t, "req-flow-1", rec.Header().Get("X-Request-Id"))
	require.Equal(t, problems, body.Problems, "every problem, warnings included")

	requireError(t, b.do(t, http.MethodGet, "/v1/flows/reminder", ""), http.StatusNotFound, controller.ENOTFOUND, "")
}

func TestPutFlowWarnings(t *testing.T) {
	t.Parallel()
	b := setupMedia(t)
	warnings := []controller.FlowProblem{
		{Node: "hello", Field: "prompt_url", Severity: "warning", Message: "the text of a prompt URL is unknown"},
		{Severity: "warning", Message: "the opening prompt is long"},
	}
	b.flows.with(func(f *fakeFlows) { f.problems = warnings })

	rec := b.do(t, http.MethodPut, "/v1/flows/reminder", flowDoc)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	var saved flowSaved
	decode(t, rec, &saved)
	require.Equal(t, 1, saved.Version)
	require.Equal(t, warnings, saved.Warnings)
}

func TestValidateFlow(t *testing.T) {
	t.Parallel()
	b := setupMedia(t)
	type validation struct {
		Valid    bool                     `json:"valid"`
		Problems []controller.FlowProblem `json:"problems"`
	}

	rec := b.do(t, http.MethodPost, "/v1/flows/validate", flowDoc)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.JSONEq(t, `{"valid":true,"problems":[]}`, rec.Body.String())

	warning := controller.FlowProblem{Node: "hello", Severity: "warning", Message: "long opening"}
	b.flows.with(func(f *fakeFlows) { f.problems = []controller.FlowProblem{warning} })
	rec = b.do(t, http.MethodPost, "/v1/flows/validate", flowDoc)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var v validation
	decode(t, rec, &v)
	require.Equal(t, validation{Valid: true, Problems: []controller.FlowProblem{warning}}, v, "warnings do not make a flow invalid")

	problems := []controller.FlowProblem{
		warning,
		{Node: "bye", Severity: "error", Message: `is unreachable from start "hello"`},
	}
	b.flows.with(func(f *fakeFlows) { f.problems = problems })
	rec = b.do(t, http.MethodPost, "/v1/flows/validate", flowDoc)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	decode(t, rec, &v)
	require.Equal(t, validation{Valid: false, Problems: problems}, v)

	requireError(t, b.do(t, http.MethodPost, "/v1/flows/validate", `not json`), http.StatusBadRequest, controller.EINVALID, "flow")
	requireError(t, b.do(t, http.MethodPost, "/v1/flows/validate?strict=1", flowDoc), http.StatusBadRequest, controller.EINVALID, "strict")
	b.flows.with(func(f *fakeFlows) { require.Empty(t, f.flows, "validation stores nothing") })
}

// TestFlowBodyLimit: flow documents have their own limit, 256 KiB (the
// largest flow controller/ivr decodes), whatever MaxBodyBytes says; and
// they must be JSON.
func TestFlowBodyLimit(t *testing.T) {
	t.Parallel()
	b := setupMedia(t, api.Config{MaxBodyBytes: 64})
	small := `{"name":"` + strings.Repeat("x", 100) + `","start":"a","nodes":{}}`
	rec := b.do(t, http.MethodPut, "/v1/flows/small", small)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	big := `{"name":"` + strings.Repeat("x", 256<<10) + `","start":"a","nodes":{}}`
	requireError(t, b.do(t, http.MethodPut, "/v1/flows/big", big), http.StatusRequestEntityTooLarge, controller.ETOOLARGE, "")
	requireError(t, b.do(t, http.MethodPost, "/v1/flows/validate", big), http.StatusRequestEntityTooLarge, controller.ETOOLARGE, "")
}

func TestFlowRunAPI(t *testing.T) {
	t.Parallel()
	b := setupMedia(t)
	call := newUUID()
	path := `{"outcome":"completed","path":[{"node":"hello","type":"play","at":"2025-03-14T09:26:53Z","duration_ms":1200,"prompt":"welcome.v1","result":"played"}],"disposition":"reached"}`
	ended := fixedTime.Add(5 * time.Second)
	run := controller.FlowRun{CallID: call, TenantID: controller.DefaultTenant, FlowID: "reminder", FlowVersion: 2,
		Outcome: "completed", Path: json.RawMessage(path), StartedAt: fixedTime, EndedAt: &ended}
	b.flows.with(func(f *fakeFlows) { f.runs[call] = run })

	rec := b.do(t, http.MethodGet, "/v1/calls/"+string(call)+"/flow-run", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var got controller.FlowRun
	decode(t, rec, &got)
	require.JSONEq(t, path, string(got.Path))
	got.Path = run.Path
	require.True(t, got.EndedAt.Equal(ended))
	got.EndedAt = run.EndedAt
	require.Equal(t, run, got)

	requireError(t, b.do(t, http.MethodGet, "/v1/calls/"+string(newUUID())+"/flow-run", ""), http.StatusNotFound, controller.ENOTFOUND, "")
	requireError(t, b.do(t, http.MethodGet, "/v1/calls/"+string(call)+"/flow-run?include=steps", ""), http.StatusBadRequest, controller.EINVALID, "include")
}

func TestUploadPrompt(t *testing.T) {
	t.Parallel()
	b := setupMedia(t)

	rec := b.upload(t, "welcome", textPart("text", "Hello, this is your reminder."), textPart("language", "en-US"), audioPart(wav))
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	var p controller.Prompt
	decode(t, rec, &p)
	require.Equal(t, "welcome.v1", p.ID)
	require.Equal(t, 1, p.Version)
	require.Equal(t, int64(len(wav)), p.Size)
	b.flows.with(func(f *fakeFlows) {
		require.Equal(t, 1, f.uploads)
		require.Equal(t, controller.Prompt{Name: "welcome", TenantID: controller.DefaultTenant,
			Text: "Hello, this is your reminder.", Language: "en-US"}, f.lastPrompt)
		require.Equal(t, wav, f.lastAudio, "the audio bytes reach the service exactly")
	})

	// language is optional; a second upload is the next version.
	rec = b.upload(t, "welcome", textPart("text", "Hello again."), audioPart(wav[:100]))
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	decode(t, rec, &p)
	require.Equal(t, 2, p.Version)
	b.flows.with(func(f *fakeFlows) {
		require.Equal(t, "", f.lastPrompt.Language)
		require.Equal(t, wav[:100], f.lastAudio)
	})

	rec = b.do(t, http.MethodGet, "/v1/prompts/welcome", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	decode(t, rec, &p)
	require.Equal(t, 2, p.Version)
	rec = b.do(t, http.MethodGet, "/v1/prompts/welcome?version=1", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	decode(t, rec, &p)
	require.Equal(t, "Hello, this is your reminder.", p.Text)
	rec = b.do(t, http.MethodGet, "/v1/prompts", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var list struct {
		Prompts []controller.Prompt `json:"prompts"`
	}
	decode(t, rec, &list)
	require.Len(t, list.Prompts, 1)
	require.Equal(t, "welcome.v2", list.Prompts[0].ID)

	requireError(t, b.do(t, http.MethodGet, "/v1/prompts/welcome?version=x", ""), http.StatusBadRequest, controller.EINVALID, "version")
	requireError(t, b.do(t, http.MethodGet, "/v1/prompts/welcome?version=3", ""), http.StatusNotFound, controller.ENOTFOUND, "")
	requireError(t, b.do(t, http.MethodGet, "/v1/prompts/missing", ""), http.StatusNotFound, controller.ENOTFOUND, "")
	requireError(t, b.do(t, http.MethodGet, "/v1/prompts?limit=1", ""), http.StatusBadRequest, controller.EINVALID, "limit")
}

// TestUploadPromptRefused: every malformed upload is a 400 naming the part
// at fault, and none reaches the service.
func TestUploadPromptRefused(t *testing.T) {
	t.Parallel()
	b := setupMedia(t)

	for _, tc := range []struct {
		name  string
		parts []formPart
		field string
	}{
		{"missing text", []formPart{audioPart(wav)}, "text"},
		{"empty text", []formPart{textPart("text", ""), audioPart(wav)}, "text"},
		{"audio before text", []formPart{audioPart(wav), textPart("text", "Hello.")}, "text"},
		{"missing audio", []formPart{textPart("text", "Hello.")}, "audio"},
		{"no parts", nil, "audio"},
		{"text twice", []formPart{textPart("text", "Hello."), textPart("text", "Bye."), audioPart(wav)}, "text"},
		{"unknown field", []formPart{textPart("text", "Hello."), textPart("voice", "alto"), audioPart(wav)}, "voice"},
		{"text over 8 KiB", []formPart{textPart("text", strings.Repeat("a", 8<<10+1)), audioPart(wav)}, "text"},
		{"language over 8 KiB", []formPart{textPart("text", "Hello."), textPart("language", strings.Repeat("a", 8<<10+1)), audioPart(wav)}, "language"},
	} {
		requireError(t, b.upload(t, "welcome", tc.parts...), http.StatusBadRequest, controller.EINVALID, tc.field)
	}

	// Not multipart: JSON, no Content-Type (415), and multipart without a
	// boundary (400).
	requireError(t, b.do(t, http.MethodPost, "/v1/prompts/welcome", `{"text":"Hello."}`), http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type")
	req := httptest.NewRequest(http.MethodPost, "/v1/prompts/welcome", bytes.NewReader(wav))
	requireError(t, b.serve(req), http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type")
	req = httptest.NewRequest(http.MethodPost, "/v1/prompts/welcome", bytes.NewReader(wav))
	req.Header.Set("Content-Type", "multipart/form-data")
	requireError(t, b.serve(req), http.StatusBadRequest, controller.EINVALID, "")
	// A truncated multipart body.
	body, ct := multipartBody(t, textPart("text", "Hello."))
	req = httptest.NewRequest(http.MethodPost, "/v1/prompts/welcome", bytes.NewReader(body[:len(body)-10]))
	req.Header.Set("Content-Type", ct)
	requireError(t, b.serve(req), http.StatusBadRequest, controller.EINVALID, "")

	body, ct = multipartBody(t, textPart("text", "Hello."), audioPart(wav))
	req = httptest.NewRequest(http.MethodPost, "/v1/prompts/welcome?overwrite=1", bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	requireError(t, b.serve(req), http.StatusBadRequest, controller.EINVALID, "overwrite")

	b.flows.with(func(f *fakeFlows) { require.Zero(t, f.uploads, "no refused upload reached the service") })
}

// TestUploadPromptTooLarge: an upload over MaxPromptBytes is a 413, whether
// Content-Length says so up front or the body turns out longer; the JSON
// body limit does not apply to it.
func TestUploadPromptTooLarge(t *testing.T) {
	t.Parallel()
	b := setupMedia(t, api.Config{MaxBodyBytes: 64, MaxPromptBytes: 2048})

	rec := b.upload(t, "welcome", textPart("text", "Hello."), audioPart(wav[:1024]))
	require.Equal(t, http.StatusCreated, rec.Code, "over the JSON limit, under the prompt limit: %s", rec.Body.String())

	big := bytes.Repeat([]byte{0x7f}, 4096)
	requireError(t, b.upload(t, "welcome", textPart("text", "Hello."), audioPart(big)),
		http.StatusRequestEntityTooLarge, controller.ETOOLARGE, "")
	b.flows.with(func(f *fakeFlows) { require.Equal(t, 1, f.uploads, "refused on Content-Length before reading") })

	// Without Content-Length the limit trips while the audio streams.
	body, ct := multipartBody(t, textPart("text", "Hello."), audioPart(big))
	req := httptest.NewRequest(http.MethodPost, "/v1/prompts/welcome", io.MultiReader(bytes.NewReader(body)))
	req.Header.Set("Content-Type", ct)
	require.EqualValues(t, -1, req.ContentLength)
	requireError(t, b.serve(req), http.StatusRequestEntityTooLarge, controller.ETOOLARGE, "")
	b.flows.with(func(f *fakeFlows) {
		require.Equal(t, 2, f.uploads)
		require.Less(t, len(f.lastAudio), len(big), "the service saw a cut-off upload and refused it")
		require.Len(t, f.prompts["welcome"], 1, "nothing stored")
	})
}

func TestRecordingsAPI(t *testing.T) {
	t.Parallel()
	b := setupMedia(t)
	call := newUUID()
	stored := fixedTime.Add(time.Minute)
	retain := fixedTime.AddDate(0, 0, 90)
	rec1 := controller.Recording{ID: "11111111-1111-4111-8111-111111111111", TenantID: controller.DefaultTenant, CallID: call,
		Status: controller.RecordingStored, SpoolPath: "/var/spool/callgate/secret.wav", BlobKey: "blob/secret",
		KeyID: "k1", WrappedKey: []byte("wrapped-data-key"), SHA256: strings.Repeat("cd", 32), Size: int64(len(wav)),
		DurationMS: 2000, Channels: 1, ConsentID: "c-1", CreatedAt: fixedTime, StoredAt: &stored, RetainUntil: &retain}
	b.recs.with(func(f *fakeRecordings) {
		f.recs[rec1.ID] = rec1
		f.audio[rec1.ID] = wav
	})

	rec := b.do(t, http.MethodGet, "/v1/recordings/"+rec1.ID, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	for _, secret := range []string{"secret", "spool", "blob", "wrapped", base64Of("wrapped-data-key")} {
		require.NotContains(t, rec.Body.String(), secret, "no storage detail or key material")
	}
	var got controller.Recording
	decode(t, rec, &got)
	want := rec1
	want.SpoolPath, want.BlobKey, want.WrappedKey = "", "", nil
	require.True(t, got.StoredAt.Equal(stored) && got.RetainUntil.Equal(retain))
	got.StoredAt, got.RetainUntil = want.StoredAt, want.RetainUntil
	require.Equal(t, want, got)

	rec = b.do(t, http.MethodGet, "/v1/calls/"+string(call)+"/recordings", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var list struct {
		Recordings []controller.Recording `json:"recordings"`
	}
	decode(t, rec, &list)
	require.Len(t, list.Recordings, 1)
	require.Equal(t, rec1.ID, list.Recordings[0].ID)

	rec = b.do(t, http.MethodGet, "/v1/calls/"+string(newUUID())+"/recordings", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.JSONEq(t, `{"recordings":[]}`, rec.Body.String())

	requireError(t, b.do(t, http.MethodGet, "/v1/recordings/22222222-2222-4222-8222-222222222222", ""), http.StatusNotFound, controller.ENOTFOUND, "")
	requireError(t, b.do(t, http.MethodGet, "/v1/recordings/"+rec1.ID+"?include=audio", ""), http.StatusBadRequest, controller.EINVALID, "include")
	requireError(t, b.do(t, http.MethodGet, "/v1/calls/"+string(call)+"/recordings?status=stored", ""), http.StatusBadRequest, controller.EINVALID, "status")
}

func TestRecordingAudio(t *testing.T) {
	t.Parallel()
	b := setupMedia(t)
	call := newUUID()
	ids := map[string]string{
		controller.RecordingStored:   "11111111-1111-4111-8111-111111111111",
		controller.RecordingActive:   "22222222-2222-4222-8222-222222222222",
		controller.RecordingFailed:   "33333333-3333-4333-8333-333333333333",
		controller.RecordingShredded: "44444444-4444-4444-8444-444444444444",
	}
	b.recs.with(func(f *fakeRecordings) {
		for status, id := range ids {
			f.recs[id] = controller.Recording{ID: id, TenantID: controller.DefaultTenant, CallID: call, Status: status,
				Size: int64(len(wav)), CreatedAt: fixedTime}
			f.audio[id] = wav
		}
	})
	stored := ids[controller.RecordingStored]

	rec := b.do(t, http.MethodGet, "/v1/recordings/"+stored+"/audio", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "audio/wav", rec.Header().Get("Content-Type"))
	require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	require.Equal(t, `attachment; filename="`+stored+`.wav"`, rec.Header().Get("Content-Disposition"), "admin downloads")
	require.Equal(t, fmt.Sprint(len(wav)), rec.Header().Get("Content-Length"))
	require.NotEmpty(t, rec.Header().Get("X-Request-Id"))
	require.Equal(t, wav, rec.Body.Bytes(), "the exact bytes")
	b.recs.with(func(f *fakeRecordings) { require.Equal(t, 1, f.closed, "the stream is closed") })

	for _, status := range []string{controller.RecordingActive, controller.RecordingFailed, controller.RecordingShredded} {
		requireError(t, b.do(t, http.MethodGet, "/v1/recordings/"+ids[status]+"/audio", ""), http.StatusConflict, controller.ECONFLICT, "")
	}
	requireError(t, b.do(t, http.MethodGet, "/v1/recordings/55555555-5555-4555-8555-555555555555/audio", ""), http.StatusNotFound, controller.ENOTFOUND, "")
	requireError(t, b.do(t, http.MethodGet, "/v1/recordings/"+stored+"/audio?download=1", ""), http.StatusBadRequest, controller.EINVALID, "download")
	b.recs.with(func(f *fakeRecordings) { require.Equal(t, f.opened, f.closed) })
}

// TestRecordingAudioCutShort: a stream that fails once the status is sent
// ends the body early, is logged, and still closes the stream.
func TestRecordingAudioCutShort(t *testing.T) {
	t.Parallel()
	b := setupMedia(t)
	id := "11111111-1111-4111-8111-111111111111"
	b.recs.with(func(f *fakeRecordings) {
		f.recs[id] = controller.Recording{ID: id, TenantID: controller.DefaultTenant, CallID: newUUID(),
			Status: controller.RecordingStored, CreatedAt: fixedTime}
		f.audio[id] = wav
		f.failAt[id] = 100
	})
	rec := b.do(t, http.MethodGet, "/v1/recordings/"+id+"/audio", "")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "audio/wav", rec.Header().Get("Content-Type"))
	require.Equal(t, wav[:100], rec.Body.Bytes(), "no error body appended to the audio")
	require.Contains(t, b.logs.String(), "streaming recording failed")
	b.recs.with(func(f *fakeRecordings) { require.Equal(t, 1, f.closed) })
}

func TestPauseResumeRecording(t *testing.T) {
	t.Parallel()
	b := setupMedia(t)
	call, idle := newUUID(), newUUID()
	b.recs.with(func(f *fakeRecordings) { f.active[call] = true })

	rec := b.do(t, http.MethodPost, "/v1/calls/"+string(call)+"/recording/pause", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Header().Get("Content-Type"), "application/json")
	require.JSONEq(t, `{"recording":"paused"}`, rec.Body.String())

	rec = b.do(t, http.MethodPost, "/v1/calls/"+string(call)+"/recording/resume", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.JSONEq(t, `{"recording":"resumed"}`, rec.Body.String())

	requireError(t, b.do(t, http.MethodPost, "/v1/calls/"+string(idle)+"/recording/pause", ""), http.StatusNotFound, controller.ENOTFOUND, "")
	requireError(t, b.do(t, http.MethodPost, "/v1/calls/"+string(idle)+"/recording/resume", ""), http.StatusNotFound, controller.ENOTFOUND, "")
	requireError(t, b.do(t, http.MethodPost, "/v1/calls/"+string(call)+"/recording/pause?for=30s", ""), http.StatusBadRequest, controller.EINVALID, "for")
	requireError(t, b.do(t, http.MethodGet, "/v1/calls/"+string(call)+"/recording/pause", ""), http.StatusMethodNotAllowed, "method_not_allowed", "")

	b.recs.with(func(f *fakeRecordings) {
		require.Equal(t, []string{"pause " + string(call), "resume " + string(call)}, f.actions)
	})
}

// mediaRoutes is one request to every media route.
var mediaRoutes = []struct {
	method, path, body string
	recordings         bool // served by the RecordingAdmin, else the FlowAdmin
}{
	{http.MethodPut, "/v1/flows/x", flowDoc, false},
	{http.MethodPost, "/v1/flows/validate", flowDoc, false},
	{http.MethodGet, "/v1/flows", "", false},
	{http.MethodGet, "/v1/flows/x", "", false},
	{http.MethodGet, "/v1/calls/00000000-0000-4000-8000-000000000001/flow-run", "", false},
	{http.MethodPost, "/v1/prompts/x", "", false},
	{http.MethodGet, "/v1/prompts", "", false},
	{http.MethodGet, "/v1/prompts/x", "", false},
	{http.MethodGet, "/v1/calls/00000000-0000-4000-8000-000000000001/recordings", "", true},
	{http.MethodGet, "/v1/recordings/x", "", true},
	{http.MethodGet, "/v1/recordings/x/audio", "", true},
	{http.MethodPost, "/v1/calls/00000000-0000-4000-8000-000000000001/recording/pause", "", true},
	{http.MethodPost, "/v1/calls/00000000-0000-4000-8000-000000000001/recording/resume", "", true},
}

// TestMediaUnavailable: without SetMedia every media route answers 503 in
// the error shape; with only one admin, only the other's routes do.
func TestMediaUnavailable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, r := range mediaRoutes {
		requireError(t, b.do(t, r.method, r.path, r.body), http.StatusServiceUnavailable, controller.EUNAVAILABLE, "")
	}

	flowsOnly, recsOnly := setup(t), setup(t)
	flowsOnly.srv.SetMedia(newFakeFlows(), nil)
	recsOnly.srv.SetMedia(nil, newFakeRecordings())
	for _, r := range mediaRoutes {
		off, on := flowsOnly, recsOnly
		if !r.recordings {
			off, on = recsOnly, flowsOnly
		}
		requireError(t, off.do(t, r.method, r.path, r.body), http.StatusServiceUnavailable, controller.EUNAVAILABLE, "")
		rec := on.do(t, r.method, r.path, r.body)
		require.NotEqual(t, http.StatusServiceUnavailable, rec.Code, "%s %s: %s", r.method, r.path, rec.Body.String())
	}
}

// TestRecordingAccessHook: the access check sees the recording and the
// request before anything is decrypted; a refusal is the answer.
func TestRecordingAccessHook(t *testing.T) {
	t.Parallel()
	b := setupMedia(t)
	id := "11111111-1111-4111-8111-111111111111"
	b.recs.with(func(f *fakeRecordings) {
		f.recs[id] = controller.Recording{ID: id, TenantID: controller.DefaultTenant, CallID: newUUID(),
			Status: controller.RecordingStored, CreatedAt: fixedTime}
		f.audio[id] = wav
	})
	var seen []string
	b.srv.SetRecordingAccess(func(r *http.Request, rec controller.Recording) error {
		seen = append(seen, rec.ID)
		if r.Header.Get("X-Role") != "qa" {
			return controller.Errorf(controller.ENOTFOUND, "recording %s not found", rec.ID)
		}
		return nil
	})
	requireError(t, b.do(t, http.MethodGet, "/v1/recordings/"+id+"/audio", ""), http.StatusNotFound, controller.ENOTFOUND, "")
	b.recs.with(func(f *fakeRecordings) { require.Zero(t, f.opened, "nothing decrypted for a refused request") })
	req := httptest.NewRequest(http.MethodGet, "/v1/recordings/"+id+"/audio", nil)
	req.Header.Set("X-Role", "qa")
	rec := b.serve(req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, wav, rec.Body.Bytes())
	require.Equal(t, []string{id, id}, seen)
}
