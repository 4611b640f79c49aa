package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/callgate/callgate/controller"
)

// AddOwnedNumber registers number as a caller ID the tenant owns and may
// present; registering it again changes nothing. Returns EINVALID if number
// is not E.164, EINVALID naming tenant_id for an unknown tenant.
func (s *Store) AddOwnedNumber(ctx context.Context, tenant, number string) error {
	if err := checkE164("number", number); err != nil {
		return fmt.Errorf("adding owned number: %w", err)
	}
	if err := checkStoredText("tenant_id", tenant); err != nil {
		return fmt.Errorf("adding owned number: %w", err)
	}
	_, err := s.db.pool.Exec(ctx, `INSERT INTO owned_numbers (tenant_id, number) VALUES ($1, $2)
		ON CONFLICT DO NOTHING`, tenant, number)
	if err != nil {
		err = translate(err)
		if isForeignKeyViolation(err) {
			return fmt.Errorf("adding owned number: %w", controller.FieldError("tenant_id", "unknown tenant %q", tenant))
		}
		return fmt.Errorf("adding owned number: %w", err)
	}
	return nil
}

// RemoveOwnedNumber withdraws a caller ID from the tenant. Returns ENOTFOUND
// if the tenant does not own it.
func (s *Store) RemoveOwnedNumber(ctx context.Context, tenant, number string) error {
	tag, err := s.db.pool.Exec(ctx, `DELETE FROM owned_numbers WHERE tenant_id = $1 AND number = $2`, tenant, number)
	if err != nil {
		return fmt.Errorf("removing owned number: %w", translate(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("removing owned number: %w",
			controller.Errorf(controller.ENOTFOUND, "number %s is not owned by the tenant", controller.MaskNumber(number)))
	}
	return nil
}

// ListOwnedNumbers returns the tenant's caller IDs in order.
func (s *Store) ListOwnedNumbers(ctx context.Context, tenant string) ([]string, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT number FROM owned_numbers WHERE tenant_id = $1 ORDER BY number`, tenant)
	if err != nil {
		return nil, fmt.Errorf("listing owned numbers: %w", translate(err))
	}
	numbers, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("listing owned numbers: %w", translate(err))
	}
	if numbers == nil {
		numbers = []string{}
	}
	return numbers, nil
}
