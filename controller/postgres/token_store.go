package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/callgate/callgate/controller"
)

var (
	_ controller.TokenStore   = (*Store)(nil)
	_ controller.TokenToucher = (*Store)(nil)
)

// tokenColumns are the columns scanToken reads, in its order.
const tokenColumns = `id::text, tenant_id, role, coalesce(agent_id, ''), name, created_at,
	expires_at, revoked_at, last_used_at`

func scanToken(row pgx.Row) (controller.Token, error) {
	var t controller.Token
	err := row.Scan(&t.ID, &t.TenantID, &t.Role, &t.AgentID, &t.Name, &t.CreatedAt,
		&t.ExpiresAt, &t.RevokedAt, &t.LastUsed)
	return t, err
}

func tokenNotFound() error {
	return controller.Errorf(controller.ENOTFOUND, "token not found")
}

// CreateToken stores t under the SHA-256 of its secret and returns it with
// its ID and creation time (t.ID, when set, must be a UUID). Returns
// EINVALID naming the field for a bad role, a missing or superfluous
// agent, an unknown tenant, an expiry in the past or a hash that is not 32
// bytes; ECONFLICT if the hash is taken.
func (s *Store) CreateToken(ctx context.Context, t controller.Token, secretHash []byte) (controller.Token, error) {
	if err := checkToken(t, secretHash); err != nil {
		return t, fmt.Errorf("creating token: %w", err)
	}
	if t.ID == "" {
		t.ID = uuid.NewString()
	} else if _, err := uuid.Parse(t.ID); err != nil {
		return t, fmt.Errorf("creating token: %w", controller.FieldError("id", "not a UUID"))
	}
	out, err := scanToken(s.db.pool.QueryRow(ctx, `
		INSERT INTO api_tokens (id, tenant_id, role, agent_id, name, secret_hash, expires_at)
		VALUES ($1, $2, $3, nullif($4, ''), $5, $6, $7)
		RETURNING `+tokenColumns, t.ID, t.TenantID, string(t.Role), t.AgentID, t.Name, secretHash, t.ExpiresAt))
	if err != nil {
		err = translate(err)
		if controller.ErrorCode(err) == controller.ENOTFOUND {
			return t, fmt.Errorf("creating token: %w", controller.FieldError("tenant", "unknown tenant %q", t.TenantID))
		}
		return t, fmt.Errorf("creating token: %w", err)
	}
	return out, nil
}

// checkToken validates a token before it is stored.
func checkToken(t controller.Token, secretHash []byte) error {
	switch {
	case !t.Role.Valid():
		return controller.FieldError("role", "must be admin, agent, qa or auditor")
	case t.TenantID == "":
		return controller.FieldError("tenant", "is required")
	case t.Role == controller.RoleAgent && t.AgentID == "":
		return controller.FieldError("agent", "is required for the agent role")
	case t.Role != controller.RoleAgent && t.AgentID != "":
		return controller.FieldError("agent", "only an agent token names an agent")
	case t.ExpiresAt != nil && !t.ExpiresAt.After(time.Now()):
		return controller.FieldError("expires", "must be in the future")
	case len(secretHash) != 32:
		return controller.FieldError("secret_hash", "must be a SHA-256 (32 bytes)")
	}
	for field, v := range map[string]string{"tenant": t.TenantID, "agent": t.AgentID, "name": t.Name} {
		check := controller.CheckText // IDs end up in calls and logs
		if field == "name" {
			check = checkStoredText // a label for people
		}
		if err := check(field, v); err != nil {
			return err
		}
		if len(v) > 200 {
			return controller.FieldError(field, "must be at most 200 characters")
		}
	}
	return nil
}

// TokenBySecretHash returns the token whose secret hashes to h, revoked
// and expired ones included (the caller decides). Returns ENOTFOUND for
// none.
func (s *Store) TokenBySecretHash(ctx context.Context, h []byte) (controller.Token, error) {
	t, err := scanToken(s.db.pool.QueryRow(ctx,
		`SELECT `+tokenColumns+` FROM api_tokens WHERE secret_hash = $1`, h))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, tokenNotFound()
	}
	if err != nil {
		return t, fmt.Errorf("looking up token: %w", translate(err))
	}
	return t, nil
}

// RevokeToken revokes a token at at (a token revoked before keeps its
// first revocation time) and returns it. Returns ENOTFOUND.
func (s *Store) RevokeToken(ctx context.Context, id string, at time.Time) (controller.Token, error) {
	if _, err := uuid.Parse(id); err != nil {
		return controller.Token{}, tokenNotFound()
	}
	t, err := scanToken(s.db.pool.QueryRow(ctx, `
		UPDATE api_tokens SET revoked_at = coalesce(revoked_at, $2)
		WHERE id = $1
		RETURNING `+tokenColumns, id, at))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, tokenNotFound()
	}
	if err != nil {
		return t, fmt.Errorf("revoking token %s: %w", id, translate(err))
	}
	return t, nil
}

// ListTokens returns the tokens of a tenant ("" for all), newest first.
func (s *Store) ListTokens(ctx context.Context, tenant string) ([]controller.Token, error) {
	rows, err := s.db.pool.Query(ctx, `
		SELECT `+tokenColumns+` FROM api_tokens
		WHERE $1 = '' OR tenant_id = $1
		ORDER BY created_at DESC, id DESC`, tenant)
	if err != nil {
		return nil, fmt.Errorf("listing tokens: %w", translate(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (controller.Token, error) { return scanToken(r) })
	if err != nil {
		return nil, fmt.Errorf("listing tokens: %w", translate(err))
	}
	return out, nil
}

// TouchToken sets a token's last use to at unless it is already within a
// minute of it, so a busy token writes at most once a minute. Returns
// ENOTFOUND for an unknown token.
func (s *Store) TouchToken(ctx context.Context, id string, at time.Time) error {
	if _, err := uuid.Parse(id); err != nil {
		return tokenNotFound()
	}
	var found bool
	err := s.db.pool.QueryRow(ctx, `
		WITH u AS (
			UPDATE api_tokens SET last_used_at = $2
			WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2::timestamptz - interval '1 minute')
			RETURNING 1
		)
		SELECT EXISTS (SELECT 1 FROM api_tokens WHERE id = $1)`, id, at).Scan(&found)
	if err != nil {
		return fmt.Errorf("recording use of token %s: %w", id, translate(err))
	}
	if !found {
		return tokenNotFound()
	}
	return nil
}
