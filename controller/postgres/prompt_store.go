package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/callgate/callgate/controller"
)

var _ controller.PromptStore = (*Store)(nil)

const promptColumns = `tenant_id, name, version, text, language, duration_ms, size, sha256, file, created_at`

func scanPrompt(row pgx.Row) (controller.Prompt, error) {
	var p controller.Prompt
	err := row.Scan(&p.TenantID, &p.Name, &p.Version, &p.Text, &p.Language, &p.DurationMS,
		&p.Size, &p.SHA256, &p.File, &p.CreatedAt)
	p.ID = promptID(p.Name, p.Version)
	return p, err
}

// promptID is the ID of a prompt version: "<name>.v<version>".
func promptID(name string, version int) string {
	return name + ".v" + strconv.Itoa(version)
}

func promptNotFound(name string) error {
	return controller.Errorf(controller.ENOTFOUND, "prompt %q not found", name)
}

// PutPrompt stores p as the next version of prompt p.Name (1 for a new name)
// and returns it with its tenant (the default one if empty), ID, version and
// creation time. Returns EINVALID naming the field for a malformed name, a
// negative duration or size, text that cannot be stored or an unknown tenant.
func (s *Store) PutPrompt(ctx context.Context, p controller.Prompt) (controller.Prompt, error) {
	if p.TenantID == "" {
		p.TenantID = controller.DefaultTenant
	}
	if err := checkMediaName("name", p.Name); err != nil {
		return p, fmt.Errorf("saving prompt: %w", err)
	}
	for field, v := range map[string]string{"tenant_id": p.TenantID, "text": p.Text,
		"language": p.Language, "sha256": p.SHA256, "file": p.File} {
		if err := checkStoredText(field, v); err != nil {
			return p, fmt.Errorf("saving prompt: %w", err)
		}
	}
	if p.DurationMS < 0 {
		return p, fmt.Errorf("saving prompt: %w", controller.FieldError("duration_ms", "must not be negative"))
	}
	if p.Size < 0 {
		return p, fmt.Errorf("saving prompt: %w", controller.FieldError("size", "must not be negative"))
	}
	var saved controller.Prompt
	err := s.putVersion(ctx, "prompt", p.TenantID, p.Name, func(tx pgx.Tx) error {
		var err error
		saved, err = scanPrompt(tx.QueryRow(ctx, `
			INSERT INTO prompts (tenant_id, name, version, text, language, duration_ms, size, sha256, file)
			SELECT $1, $2, coalesce(max(version), 0) + 1, $3, $4, $5, $6, $7, $8
			FROM prompts WHERE tenant_id = $1 AND name = $2
			RETURNING `+promptColumns,
			p.TenantID, p.Name, p.Text, p.Language, p.DurationMS, p.Size, p.SHA256, p.File))
		return err
	})
	if isForeignKeyViolation(err) {
		return p, fmt.Errorf("saving prompt: %w", controller.FieldError("tenant_id", "unknown tenant %q", p.TenantID))
	}
	if err != nil {
		return p, fmt.Errorf("saving prompt %s: %w", p.Name, err)
	}
	return saved, nil
}

// GetPrompt returns version of a prompt, the newest if version is 0. Returns
// ENOTFOUND if it does not exist for the tenant.
func (s *Store) GetPrompt(ctx context.Context, tenant, name string, version int) (controller.Prompt, error) {
	p, err := scanPrompt(s.db.pool.QueryRow(ctx, `SELECT `+promptColumns+` FROM prompts
		WHERE tenant_id = $1 AND name = $2 AND ($3 = 0 OR version = $3)
		ORDER BY version DESC LIMIT 1`, tenant, name, version))
	if errors.Is(err, pgx.ErrNoRows) {
		if version != 0 {
			return controller.Prompt{}, controller.Errorf(controller.ENOTFOUND, "prompt %q has no version %d", name, version)
		}
		return controller.Prompt{}, promptNotFound(name)
	}
	if err != nil {
		return controller.Prompt{}, fmt.Errorf("getting prompt %s: %w", name, translate(err))
	}
	return p, nil
}

// ListPrompts returns the newest version of each of the tenant's prompts,
// ordered by name.
func (s *Store) ListPrompts(ctx context.Context, tenant string) ([]controller.Prompt, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT DISTINCT ON (name) `+promptColumns+` FROM prompts
		WHERE tenant_id = $1 ORDER BY name, version DESC`, tenant)
	if err != nil {
		return nil, fmt.Errorf("listing prompts: %w", translate(err))
	}
	prompts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (controller.Prompt, error) {
		return scanPrompt(row)
	})
	if err != nil {
		return nil, fmt.Errorf("listing prompts: %w", translate(err))
	}
	if prompts == nil {
		prompts = []controller.Prompt{}
	}
	return prompts, nil
}
