package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"regexp"
	"slices"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/callgate/callgate/controller"
)

// promptPath is the route of a prompt upload: it has its own body limit
// and the upload timeout.
const promptPath = "/v1/prompts/:name"

// maxFlowBytes is the largest flow document (controller/ivr.MaxFlowBytes).
const maxFlowBytes = 256 << 10

var (
	errNoFlows      = controller.Errorf(controller.EUNAVAILABLE, "IVR flows are not enabled on this controller")
	errNoRecordings = controller.Errorf(controller.EUNAVAILABLE, "recordings are not enabled on this controller")
)

// SetMedia connects the flow and recording administration (either may be
// nil: its routes then answer 503). Call it before serving.
func (s *Server) SetMedia(flows controller.FlowAdmin, recordings controller.RecordingAdmin) {
	s.flows, s.recordings = flows, recordings
}

// RecordingAccess decides whether a request may hear a recording: it returns
// nil to allow, an error (ENOTFOUND to hide the recording, or a refusal) to
// deny. It runs before any audio is decrypted. Authorisation by role (who
// may stream, who may download) plugs in here.
type RecordingAccess func(r *http.Request, rec controller.Recording) error

// SetRecordingAccess installs the check run before a recording is streamed;
// without one every request that reaches the route may stream. Call it
// before serving.
func (s *Server) SetRecordingAccess(f RecordingAccess) { s.recordingAccess = f }

// registerMedia adds the flow, prompt and recording routes. They are always
// registered (so the OpenAPI document is exact).
func (s *Server) registerMedia(limit echo.MiddlewareFunc) {
	// Flows and prompts: admin writes; agents and QA read them (an agent
	// names a flow when placing a call, QA reads the flow a run took).
	s.route(http.MethodPut, "/v1/flows/:id", s.putFlow, allow(admin), s.limitFlow)
	s.route(http.MethodPost, "/v1/flows/validate", s.validateFlow, allow(admin), s.limitFlow)
	s.route(http.MethodGet, "/v1/flows", s.listFlows, allow(admin, agent, qa))
	s.route(http.MethodGet, "/v1/flows/:id", s.getFlow, allow(admin, agent, qa))
	s.route(http.MethodGet, "/v1/calls/:id/flow-run", s.getFlowRun, ownCalls(admin, agent, qa))
	s.route(http.MethodPost, promptPath, s.uploadPrompt, allow(admin), s.limitPrompt)
	s.route(http.MethodGet, "/v1/prompts", s.listPrompts, allow(admin, agent, qa))
	s.route(http.MethodGet, "/v1/prompts/:name", s.getPrompt, allow(admin, agent, qa))
	// Recordings: QA lists and streams them; an agent sees the recordings
	// of their own calls but never the audio; only admin downloads.
	s.route(http.MethodGet, "/v1/calls/:id/recordings", s.listCallRecordings, ownCalls(admin, agent, qa))
	s.route(http.MethodGet, "/v1/recordings/:id", s.getRecording, ownCalls(admin, agent, qa))
	s.route(http.MethodGet, recordingAudioPath, s.recordingAudio, allow(admin, qa))
	// Pausing a recording keeps card data out of it: the agent on the call does it.
	s.route(http.MethodPost, "/v1/calls/:id/recording/pause", s.pauseRecording, ownCalls(admin, agent), limit)
	s.route(http.MethodPost, "/v1/calls/:id/recording/resume", s.resumeRecording, ownCalls(admin, agent), limit)
}

// recordingAudioPath is the route that streams a recording: every request
// to it is audited.
const recordingAudioPath = "/v1/recordings/:id/audio"

func (s *Server) flowCall(c echo.Context, query ...string) (controller.FlowAdmin, error) {
	if s.flows == nil {
		return nil, errNoFlows
	}
	return s.flows, checkQuery(c.QueryParams(), query...)
}

func (s *Server) recordingCall(c echo.Context, query ...string) (controller.RecordingAdmin, error) {
	if s.recordings == nil {
		return nil, errNoRecordings
	}
	return s.recordings, checkQuery(c.QueryParams(), query...)
}

// flowMembers are the top-level members of a flow document (openapi.yaml
// FlowDocument; controller/ivr decodes the rest strictly).
var flowMembers = []string{"name", "start", "opening_ms_max", "nodes"}

// readFlow reads a flow document body: one JSON object of flowMembers, at
// most maxFlowBytes. Unknown or duplicate top-level members are EINVALID
// naming the member.
func readFlow(c echo.Context) ([]byte, error) {
	if err := checkJSONContentType(c.Request().Header.Get(echo.HeaderContentType)); err != nil {
		return nil, err
	}
	body, err := readBody(c.Request())
	if err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
		return nil, controller.FieldError("flow", "the body must be a flow document: one JSON object")
	}
	if _, err := parseObject(trimmed, "", func(k string) bool { return slices.Contains(flowMembers, k) }); err != nil {
		return nil, err
	}
	return body, nil
}

// nameRE is the form of flow IDs and prompt names (the stores check the
// same).
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// nameParam returns the path parameter param if it is a valid flow ID or
// prompt name.
func nameParam(c echo.Context, param string) (string, error) {
	v := c.Param(param)
	if !nameRE.MatchString(v) {
		return "", controller.FieldError(param, "must be 1 to 63 lower-case letters, digits, _ or -, starting with a letter or digit")
	}
	return v, nil
}

// limitFlow is limitBody with maxFlowBytes.
func (s *Server) limitFlow(next echo.HandlerFunc) echo.HandlerFunc {
	return limitTo(maxFlowBytes, next)
}

// limitTo rejects bodies larger than n with 413, declared or streamed.
func limitTo(n int64, next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if req.ContentLength > n {
			return &http.MaxBytesError{Limit: n}
		}
		if req.Body != nil {
			req.Body = http.MaxBytesReader(c.Response().Writer, req.Body, n)
		}
		return next(c)
	}
}

// flowSaved is the body of PUT /v1/flows/{id}.
type flowSaved struct {
	controller.FlowRecord
	Warnings []controller.FlowProblem `json:"warnings"`
}

// flowRefused is the body of a refused flow: the error and every problem.
type flowRefused struct {
	Error    ErrorDetail              `json:"error"`
	Problems []controller.FlowProblem `json:"problems"`
}

// putFlow validates and stores the next version of a flow: 201 with it and
// its warnings, or 400 with every problem.
func (s *Server) putFlow(c echo.Context) error {
	adm, err := s.flowCall(c)
	if err != nil {
		return err
	}
	id, err := nameParam(c, "id")
	if err != nil {
		return err
	}
	body, err := readFlow(c)
	if err != nil {
		return err
	}
	rec, problems, err := adm.SaveFlow(c.Request().Context(), tenant(c), id, body)
	if err != nil {
		if controller.ErrorCode(err) == controller.EINVALID && len(problems) > 0 {
			d := s.describe(err, c)
			d.RequestID = requestIDOf(c)
			return c.JSON(http.StatusBadRequest, flowRefused{Error: d, Problems: problems})
		}
		return err
	}
	return c.JSON(http.StatusCreated, flowSaved{FlowRecord: rec, Warnings: orEmpty(problems)})
}

// validateFlow checks a flow document without storing it: 200 with its
// problems (an empty list for a flow that may be saved as is).
func (s *Server) validateFlow(c echo.Context) error {
	adm, err := s.flowCall(c)
	if err != nil {
		return err
	}
	body, err := readFlow(c)
	if err != nil {
		return err
	}
	problems, err := adm.ValidateFlow(c.Request().Context(), tenant(c), body)
	if err != nil {
		return err
	}
	valid := true
	for _, p := range problems {
		if p.Severity == "error" {
			valid = false
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"valid": valid, "problems": orEmpty(problems)})
}

func (s *Server) listFlows(c echo.Context) error {
	adm, err := s.flowCall(c)
	if err != nil {
		return err
	}
	list, err := adm.ListFlows(c.Request().Context(), tenant(c))
	return listed(c, "flows", list, err)
}

// versionQuery reads the optional ?version= (0: the newest).
func versionQuery(c echo.Context) (int, error) {
	v := c.QueryParam("version")
	if v == "" {
		return 0, nil
	}
	n, err := wholeNumber("version", v, 1, math.MaxInt32)
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// getVersion answers GET of one version (?version=, the newest if absent)
// of a flow or prompt named by the path parameter param.
func getVersion[T any](s *Server, c echo.Context, param string, get func(adm controller.FlowAdmin, ctx context.Context, tenant, name string, version int) (T, error)) error {
	adm, err := s.flowCall(c, "version")
	if err != nil {
		return err
	}
	v, err := versionQuery(c)
	if err != nil {
		return err
	}
	out, err := get(adm, c.Request().Context(), tenant(c), c.Param(param), v)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// listed answers 200 with {key: list} (an empty list, never null), or err.
func listed[T any](c echo.Context, key string, list []T, err error) error {
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string][]T{key: orEmpty(list)})
}

func (s *Server) getFlow(c echo.Context) error {
	return getVersion(s, c, "id", controller.FlowAdmin.GetFlow)
}

func (s *Server) getFlowRun(c echo.Context) error {
	adm, err := s.flowCall(c)
	if err != nil {
		return err
	}
	if err := s.scopeToAgent(c); err != nil {
		return err
	}
	run, err := adm.FlowRun(c.Request().Context(), tenant(c), controller.CallID(c.Param("id")))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewOf(c).flowRun(run))
}

// limitPrompt is limitBody with MaxPromptBytes.
func (s *Server) limitPrompt(next echo.HandlerFunc) echo.HandlerFunc {
	return limitTo(s.cfg.MaxPromptBytes, next)
}

// uploadPrompt stores the next version of a prompt from a
// multipart/form-data body: what it says in "text", optionally "language",
// then the WAV file in "audio", which must be the last part (it is stored
// as it streams in; anything after it is not read). 201 with the prompt.
func (s *Server) uploadPrompt(c echo.Context) error {
	adm, err := s.flowCall(c)
	if err != nil {
		return err
	}
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if err != nil || mt != echo.MIMEMultipartForm {
		return &controller.Error{Code: codeUnsupportedMediaType, Field: "Content-Type",
			Message: "the body must be multipart/form-data with the parts text, language (optional) and audio, in that order"}
	}
	mr, err := c.Request().MultipartReader()
	if err != nil {
		return controller.Errorf(controller.EINVALID, "reading multipart body: %v", err)
	}
	name, err := nameParam(c, "name")
	if err != nil {
		return err
	}
	p := controller.Prompt{Name: name, TenantID: tenant(c)}
	seen := map[string]bool{}
	bodyErr := func(what string, err error) error {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return controller.Errorf(controller.EINVALID, "reading %s: %v", what, err)
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return controller.FieldError("audio", "is required, as the last part: a PCM WAV file")
		}
		if err != nil {
			return bodyErr("multipart body", err)
		}
		name := part.FormName()
		switch {
		case name == "":
			return controller.Errorf(controller.EINVALID, "a multipart part has no form name")
		case seen[name]:
			return controller.FieldError(name, "given more than once")
		}
		seen[name] = true
		switch name {
		case "text", "language":
			v, err := io.ReadAll(io.LimitReader(part, 8<<10+1))
			if err != nil {
				return bodyErr(name, err)
			}
			if len(v) > 8<<10 {
				return controller.FieldError(name, "longer than 8 KiB")
			}
			if err := plainText(name, string(v)); err != nil {
				return err
			}
			if err := controller.CheckText(name, string(v)); err != nil {
				return err
			}
			if name == "text" {
				p.Text = string(v)
			} else {
				p.Language = string(v)
			}
		case "audio":
			if file, ok := partFileName(part); ok {
				if err := checkFileName("audio", file); err != nil {
					return err
				}
			}
			if p.Text == "" {
				return controller.FieldError("text", "is required, before the audio part: the words the prompt speaks")
			}
			out, err := adm.UploadPrompt(c.Request().Context(), p, part)
			if err != nil {
				return err
			}
			return c.JSON(http.StatusCreated, out)
		default:
			return controller.FieldError(name, "unknown form field")
		}
	}
}

// partFileName returns the file name a part's Content-Disposition gives,
// as sent: mime/multipart's FileName keeps only its last element, which
// would hide a path.
func partFileName(part *multipart.Part) (string, bool) {
	_, params, err := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
	if err != nil {
		return "", false
	}
	name, ok := params["filename"]
	return name, ok
}

func (s *Server) listPrompts(c echo.Context) error {
	adm, err := s.flowCall(c)
	if err != nil {
		return err
	}
	list, err := adm.ListPrompts(c.Request().Context(), tenant(c))
	return listed(c, "prompts", list, err)
}

func (s *Server) getPrompt(c echo.Context) error {
	return getVersion(s, c, "name", controller.FlowAdmin.GetPrompt)
}

func (s *Server) listCallRecordings(c echo.Context) error {
	adm, err := s.recordingCall(c)
	if err != nil {
		return err
	}
	if err := s.scopeToAgent(c); err != nil {
		return err
	}
	list, err := adm.ListRecordings(c.Request().Context(), tenant(c), controller.CallID(c.Param("id")))
	return listed(c, "recordings", viewOf(c).recordings(list), err)
}

func (s *Server) getRecording(c echo.Context) error {
	adm, err := s.recordingCall(c)
	if err != nil {
		return err
	}
	r, err := adm.GetRecording(c.Request().Context(), tenant(c), c.Param("id"))
	if err != nil {
		return err
	}
	if agentOnly(c) != "" {
		if _, err := s.visibleCall(c, r.CallID); err != nil {
			return controller.Errorf(controller.ENOTFOUND, "recording not found")
		}
	}
	return c.JSON(http.StatusOK, viewOf(c).recording(r))
}

// recordingAudio streams a recording decrypted, as audio/wav. Whether the
// caller may hear or download it is the authorisation's decision (the
// route's policy); here it is served to whoever reaches it.
func (s *Server) recordingAudio(c echo.Context) error {
	adm, err := s.recordingCall(c)
	if err != nil {
		return err
	}
	if s.recordingAccess != nil {
		meta, err := adm.GetRecording(c.Request().Context(), tenant(c), c.Param("id"))
		if err != nil {
			return err
		}
		if err := s.recordingAccess(c.Request(), meta); err != nil {
			return err
		}
	}
	r, audio, err := adm.OpenRecording(c.Request().Context(), tenant(c), c.Param("id"))
	if err != nil {
		return err
	}
	defer audio.Close()
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	// QA listens, admin downloads. The difference is advisory: it tells a
	// browser to play or to save, but any HTTP client can keep the bytes.
	disposition := "inline"
	if p, _ := principalOf(c); p.Role == controller.RoleAdmin {
		disposition = "attachment"
	}
	h.Set("Content-Disposition", disposition+`; filename="`+r.ID+`.wav"`)
	if r.Size > 0 {
		h.Set(echo.HeaderContentLength, strconv.FormatInt(r.Size, 10))
	}
	c.Response().Header().Set(echo.HeaderContentType, "audio/wav")
	c.Response().WriteHeader(http.StatusOK)
	if _, err := io.Copy(c.Response(), audio); err != nil {
		// The status is sent: all that is left is to cut the stream short,
		// which the client sees as a truncated body.
		s.requestLogger(c).Error("streaming recording failed", "recording_id", r.ID, "err", err)
		return err
	}
	return nil
}

func (s *Server) pauseRecording(c echo.Context) error {
	return s.maskRecording(c, controller.RecordingAdmin.PauseRecording, "paused")
}

func (s *Server) resumeRecording(c echo.Context) error {
	return s.maskRecording(c, controller.RecordingAdmin.ResumeRecording, "resumed")
}

// maskRecording pauses or resumes the call's active recording: 200 with
// {"recording": state}.
func (s *Server) maskRecording(c echo.Context, do func(controller.RecordingAdmin, context.Context, string, controller.CallID) error, state string) error {
	adm, err := s.recordingCall(c)
	if err != nil {
		return err
	}
	if _, err := readObject(c, true); err != nil { // no body, or an empty JSON object
		return err
	}
	if err := s.scopeToAgent(c); err != nil {
		return err
	}
	if err := do(adm, c.Request().Context(), tenant(c), controller.CallID(c.Param("id"))); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"recording": state})
}
