package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/callgate/callgate/controller"
)

// consentColumns are the columns scanConsent reads, in its order.
var consentColumns = consentColumnsOf("")

// consentColumnsOf returns consentColumns of the table aliased alias ("" for
// none).
func consentColumnsOf(alias string) string {
	if alias != "" {
		alias += "."
	}
	return strings.NewReplacer("$.", alias).Replace(`$.id::text, $.tenant_id, coalesce($.number, ''), $.number_sealed,
	$.purpose, $.source, $.proof_ref, $.prompt_id, $.prompt_version, $.digit, coalesce($.call_id::text, ''),
	$.given_at, $.expires_at, $.revoked_at`)
}

// scanConsent scans consentColumns (then extra) and opens the number with pd.
func scanConsent(pd controller.PersonalData, row pgx.Row, extra ...any) (controller.Consent, error) {
	var (
		c      controller.Consent
		sealed []byte
	)
	err := row.Scan(append([]any{&c.ID, &c.TenantID, &c.Number, &sealed, &c.Purpose, &c.Source, &c.ProofRef,
		&c.PromptID, &c.PromptVersion, &c.Digit, &c.CallID, &c.GivenAt, &c.ExpiresAt, &c.RevokedAt},
		extra...)...)
	if err == nil {
		c.Number, err = openNumber(pd, c.Number, sealed)
	}
	return c, err
}

// consentSources are the ways consent can be obtained.
var consentSources = []string{"ivr", "sms_link", "api_import", "agent"}

// purposes are the purposes consent can be given for.
var purposes = []controller.Purpose{controller.PurposeMarketing, controller.PurposeService, controller.PurposeTransactional}

// checkStoredText returns an EINVALID error naming field if s cannot be
// stored as text: invalid UTF-8 or a NUL byte.
func checkStoredText(field, s string) error {
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return controller.FieldError(field, "must be valid UTF-8 without NUL bytes")
	}
	return nil
}

func oneOf[T ~string](v T, allowed []T) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

// CreateConsent records consent evidence and returns its ID (c.ID if set,
// else a new UUID). An empty tenant is the default tenant; a zero GivenAt is
// now. Returns EINVALID naming the field for a number that is not E.164, an
// unknown purpose or source, an expiry not after GivenAt, a malformed ID or
// call ID, text that cannot be stored, or an unknown tenant.
func (s *Store) CreateConsent(ctx context.Context, c controller.Consent) (string, error) {
	if c.ID == "" {
		c.ID = uuid.NewString()
	} else if _, err := uuid.Parse(c.ID); err != nil {
		return "", fmt.Errorf("creating consent: %w", controller.FieldError("id", "not a UUID"))
	}
	if c.TenantID == "" {
		c.TenantID = controller.DefaultTenant
	}
	var callID *string
	if c.CallID != "" {
		if _, err := uuid.Parse(string(c.CallID)); err != nil {
			return "", fmt.Errorf("creating consent: %w", controller.FieldError("call_id", "not a UUID"))
		}
		callID = (*string)(&c.CallID)
	}
	if err := checkE164("number", c.Number); err != nil {
		return "", fmt.Errorf("creating consent: %w", err)
	}
	if !oneOf(c.Purpose, purposes) {
		return "", fmt.Errorf("creating consent: %w", controller.FieldError("purpose", "must be one of %v", purposes))
	}
	if !oneOf(c.Source, consentSources) {
		return "", fmt.Errorf("creating consent: %w", controller.FieldError("source", "must be one of %v", consentSources))
	}
	if c.GivenAt.IsZero() {
		c.GivenAt = time.Now()
	}
	if c.ExpiresAt != nil && !c.ExpiresAt.After(c.GivenAt) {
		return "", fmt.Errorf("creating consent: %w", controller.FieldError("expires_at", "must be after given_at"))
	}
	for field, v := range map[string]string{"tenant_id": c.TenantID, "proof_ref": c.ProofRef,
		"prompt_id": c.PromptID, "prompt_version": c.PromptVersion, "digit": c.Digit} {
		if err := checkStoredText(field, v); err != nil {
			return "", fmt.Errorf("creating consent: %w", err)
		}
	}
	index, sealed, err := sealNumber(s.pd, c.Number)
	if err != nil {
		return "", fmt.Errorf("creating consent: %w", err)
	}
	_, err = s.db.pool.Exec(ctx, `
		INSERT INTO consents (id, tenant_id, number_index, number_sealed, purpose, source, proof_ref, prompt_id,
			prompt_version, digit, call_id, given_at, expires_at, revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		c.ID, c.TenantID, index, sealed, string(c.Purpose), c.Source, c.ProofRef, c.PromptID,
		c.PromptVersion, c.Digit, callID, c.GivenAt, c.ExpiresAt, c.RevokedAt)
	if err != nil {
		err = translate(err)
		if isForeignKeyViolation(err) {
			return "", fmt.Errorf("creating consent: %w", controller.FieldError("tenant_id", "unknown tenant %q", c.TenantID))
		}
		return "", fmt.Errorf("creating consent: %w", err)
	}
	return c.ID, nil
}

// isForeignKeyViolation reports whether a translated error is a missing
// referenced row (the only ENOTFOUND an insert can produce).
func isForeignKeyViolation(err error) bool {
	return controller.ErrorCode(err) == controller.ENOTFOUND
}

// GetConsent returns a consent record. Returns ENOTFOUND if it does not exist
// for the tenant.
func (s *Store) GetConsent(ctx context.Context, tenant, id string) (controller.Consent, error) {
	if _, err := uuid.Parse(id); err != nil {
		return controller.Consent{}, consentNotFound(id)
	}
	c, err := scanConsent(s.pd, s.db.pool.QueryRow(ctx,
		`SELECT `+consentColumns+` FROM consents WHERE id = $1 AND tenant_id = $2`, id, tenant))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, consentNotFound(id)
	}
	if err != nil {
		return c, fmt.Errorf("getting consent %s: %w", id, translate(err))
	}
	return c, nil
}

func consentNotFound(id string) error {
	return controller.Errorf(controller.ENOTFOUND, "consent %s not found", id)
}

// RevokeConsent marks a consent revoked at at (now if zero) and returns it.
// Returns ENOTFOUND if it does not exist for the tenant, ECONFLICT if it was
// already revoked.
func (s *Store) RevokeConsent(ctx context.Context, tenant, id string, at time.Time) (controller.Consent, error) {
	if _, err := uuid.Parse(id); err != nil {
		return controller.Consent{}, consentNotFound(id)
	}
	// The second branch reads the row as it was before the update (the
	// statement's snapshot), so one round trip tells a missing consent from
	// an already revoked one.
	var revoked bool
	c, err := scanConsent(s.pd, s.db.pool.QueryRow(ctx, `
		WITH u AS (
			UPDATE consents SET revoked_at = coalesce($3, statement_timestamp())
			WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL
			RETURNING `+consentColumns+`
		)
		SELECT u.*, true FROM u
		UNION ALL
		SELECT `+consentColumns+`, false FROM consents
		WHERE id = $1 AND tenant_id = $2 AND NOT EXISTS (SELECT 1 FROM u)`,
		id, tenant, nullTime(at)), &revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, consentNotFound(id)
	}
	if err != nil {
		return c, fmt.Errorf("revoking consent %s: %w", id, translate(err))
	}
	if !revoked {
		return c, fmt.Errorf("revoking consent %s: %w", id,
			controller.Errorf(controller.ECONFLICT, "consent was already revoked"))
	}
	return c, nil
}

// ListConsents returns the tenant's consents for number, every purpose,
// newest first. Returns EINVALID if number is not E.164.
func (s *Store) ListConsents(ctx context.Context, tenant, number string) ([]controller.Consent, error) {
	if err := checkE164("number", number); err != nil {
		return nil, fmt.Errorf("listing consents: %w", err)
	}
	index, err := s.numberIndex(number)
	if err != nil {
		return nil, fmt.Errorf("listing consents: %w", err)
	}
	rows, err := s.db.pool.Query(ctx, `SELECT `+consentColumnsOf("k")+` FROM (
			SELECT * FROM consents WHERE tenant_id = $1 AND number_index = $2
			UNION ALL
			SELECT * FROM consents WHERE tenant_id = $1 AND number = $3) k
		ORDER BY k.given_at DESC, k.id`, tenant, index, number)
	if err != nil {
		return nil, fmt.Errorf("listing consents: %w", translate(err))
	}
	consents, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (controller.Consent, error) {
		return scanConsent(s.pd, row)
	})
	if err != nil {
		return nil, fmt.Errorf("listing consents: %w", translate(err))
	}
	if consents == nil {
		consents = []controller.Consent{}
	}
	return consents, nil
}
