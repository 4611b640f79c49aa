package ivr

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/audio"
)

// nameRE is the form of flow IDs and prompt names (the database checks the
// same).
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// MaxPromptDuration is the longest prompt accepted.
const MaxPromptDuration = 10 * 60 * 1000 // ms

// check decodes and validates a flow document of tenant.
func (s *Service) check(ctx context.Context, tenant string, body []byte) (*Flow, []controller.FlowProblem, error) {
	f, err := Decode(body)
	if err != nil {
		return nil, nil, err
	}
	pol, err := s.cfg.Policy(ctx, tenant)
	if err != nil {
		return nil, nil, fmt.Errorf("validating flow: finding the tenant's policy: %w", err)
	}
	var lookupErr error
	ps := Validate(f, Env{
		ForbiddenPhrases: pol.ForbiddenPhrases,
		Egress:           s.cfg.Egress,
		Prompt: func(name string) (controller.Prompt, bool) {
			p, err := s.cfg.Store.GetPrompt(ctx, tenant, name, 0)
			if err != nil && controller.ErrorCode(err) != controller.ENOTFOUND && lookupErr == nil {
				lookupErr = err
			}
			return p, err == nil
		},
	})
	if lookupErr != nil {
		return nil, nil, fmt.Errorf("validating flow: looking up prompts: %w", lookupErr)
	}
	out := make([]controller.FlowProblem, len(ps))
	for i, p := range ps {
		out[i] = controller.FlowProblem{Node: p.Node, Field: p.Field, Severity: p.Severity, Message: p.Message}
	}
	return f, out, ps.Err()
}

// SaveFlow implements controller.FlowAdmin.
func (s *Service) SaveFlow(ctx context.Context, tenant, id string, body []byte) (controller.FlowRecord, []controller.FlowProblem, error) {
	if !nameRE.MatchString(id) {
		return controller.FlowRecord{}, nil, controller.FieldError("id", "must match %s", nameRE)
	}
	f, problems, err := s.check(ctx, tenant, body)
	if err != nil {
		return controller.FlowRecord{}, problems, err
	}
	rec, err := s.cfg.Store.PutFlow(ctx, controller.FlowRecord{ID: id, TenantID: tenant, Name: f.Name, Body: body})
	if err != nil {
		return rec, problems, err
	}
	return rec, problems, nil
}

// ValidateFlow implements controller.FlowAdmin.
func (s *Service) ValidateFlow(ctx context.Context, tenant string, body []byte) ([]controller.FlowProblem, error) {
	_, problems, err := s.check(ctx, tenant, body)
	if err != nil && problems == nil {
		return nil, err
	}
	return problems, nil
}

// GetFlow implements controller.FlowAdmin.
func (s *Service) GetFlow(ctx context.Context, tenant, id string, version int) (controller.FlowRecord, error) {
	return s.cfg.Store.GetFlow(ctx, tenant, id, version)
}

// ListFlows implements controller.FlowAdmin.
func (s *Service) ListFlows(ctx context.Context, tenant string) ([]controller.FlowRecord, error) {
	return s.cfg.Store.ListFlows(ctx, tenant)
}

// FlowRun implements controller.FlowAdmin.
func (s *Service) FlowRun(ctx context.Context, tenant string, call controller.CallID) (controller.FlowRun, error) {
	return s.cfg.Store.GetFlowRun(ctx, tenant, call)
}

// GetPrompt implements controller.FlowAdmin.
func (s *Service) GetPrompt(ctx context.Context, tenant, name string, version int) (controller.Prompt, error) {
	return s.cfg.Store.GetPrompt(ctx, tenant, name, version)
}

// ListPrompts implements controller.FlowAdmin.
func (s *Service) ListPrompts(ctx context.Context, tenant string) ([]controller.Prompt, error) {
	return s.cfg.Store.ListPrompts(ctx, tenant)
}

// UploadPrompt implements controller.FlowAdmin: the WAV is written to the
// tenant's prompt directory under a name derived from its content, checked
// (a PCM WAV the switch can play, at most MaxPromptDuration), and recorded
// as the prompt's next version with its text. A file that fails the checks
// is removed.
func (s *Service) UploadPrompt(ctx context.Context, p controller.Prompt, wav io.Reader) (controller.Prompt, error) {
	if s.cfg.PromptDir == "" {
		return controller.Prompt{}, controller.Errorf(controller.EUNAVAILABLE, "prompt uploads need a prompt directory (CALLGATE_PROMPT_DIR)")
	}
	if !nameRE.MatchString(p.Name) {
		return controller.Prompt{}, controller.FieldError("name", "must match %s", nameRE)
	}
	if p.Text == "" {
		return controller.Prompt{}, controller.FieldError("text", "is required: the words the prompt speaks")
	}
	if err := controller.CheckText("text", p.Text); err != nil {
		return controller.Prompt{}, err
	}
	if err := controller.CheckText("language", p.Language); err != nil || len(p.Language) > 35 {
		return controller.Prompt{}, controller.FieldError("language", "must be a language tag such as en-US")
	}
	if p.TenantID == "" {
		p.TenantID = controller.DefaultTenant
	}
	dir := filepath.Join(s.cfg.PromptDir, p.TenantID)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return controller.Prompt{}, fmt.Errorf("uploading prompt %s: %w", p.Name, err)
	}
	tmp, err := os.CreateTemp(dir, ".upload-*")
	if err != nil {
		return controller.Prompt{}, fmt.Errorf("uploading prompt %s: %w", p.Name, err)
	}
	keep := false
	defer func() {
		if !keep {
			_ = os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), wav)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return controller.Prompt{}, fmt.Errorf("uploading prompt %s: %w", p.Name, err)
	}
	f, err := audio.ParseWAVFile(tmp.Name())
	if err != nil {
		return controller.Prompt{}, controller.FieldError("audio", "%s", strings.ReplaceAll(err.Error(), tmp.Name(), "the upload"))
	}
	if f.Duration().Milliseconds() > MaxPromptDuration {
		return controller.Prompt{}, controller.FieldError("audio", "longer than %d minutes", MaxPromptDuration/60000)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	p.SHA256, p.Size, p.DurationMS = sum, n, f.Duration().Milliseconds()
	p.File = p.Name + "-" + sum[:16] + ".wav"
	if err := os.Rename(tmp.Name(), filepath.Join(dir, p.File)); err != nil {
		return controller.Prompt{}, fmt.Errorf("uploading prompt %s: %w", p.Name, err)
	}
	keep = true
	return s.cfg.Store.PutPrompt(ctx, p)
}
