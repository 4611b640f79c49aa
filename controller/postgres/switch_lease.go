package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/callgate/callgate/controller"
)

// UpsertSwitch records a configured switch, keeping its lease. Returns
// EINVALID if the name is empty.
func (s *Store) UpsertSwitch(ctx context.Context, sw controller.SwitchRecord) error {
	if sw.Name == "" {
		return controller.FieldError("name", "a switch needs a name")
	}
	_, err := s.db.pool.Exec(ctx, `
		INSERT INTO switches (name, kind, address, max_sessions, max_cps)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, address = excluded.address,
			max_sessions = excluded.max_sessions, max_cps = excluded.max_cps, updated_at = now()`,
		sw.Name, sw.Kind, sw.Address, sw.MaxSessions, sw.MaxCPS)
	if err != nil {
		return fmt.Errorf("saving switch %s: %w", sw.Name, translate(err))
	}
	return nil
}

// GetSwitch returns a switch with its lease. Returns ENOTFOUND if it is not
// recorded.
func (s *Store) GetSwitch(ctx context.Context, name string) (controller.SwitchRecord, error) {
	sw := controller.SwitchRecord{Name: name}
	var leaseUntil *time.Time
	err := s.db.pool.QueryRow(ctx, `
		SELECT kind, address, max_sessions, max_cps, coalesce(owner, ''), lease_until
		FROM switches WHERE name = $1`, name,
	).Scan(&sw.Kind, &sw.Address, &sw.MaxSessions, &sw.MaxCPS, &sw.Owner, &leaseUntil)
	if errors.Is(err, pgx.ErrNoRows) {
		return sw, controller.Errorf(controller.ENOTFOUND, "switch %s not found", name)
	}
	if err != nil {
		return sw, fmt.Errorf("getting switch %s: %w", name, translate(err))
	}
	if leaseUntil != nil {
		sw.LeaseUntil = *leaseUntil
	}
	return sw, nil
}

// AcquireSwitchLease takes the lease on a switch for owner until now+ttl (by
// the database's clock) if it is free, expired or already owner's, recording
// the switch if it is not yet. It reports whether owner now holds it; false
// means another owner's lease is still running.
func (s *Store) AcquireSwitchLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	if name == "" || owner == "" {
		return false, controller.Errorf(controller.EINVALID, "a switch lease needs a switch name and an owner")
	}
	rows, err := s.db.pool.Query(ctx, `
		INSERT INTO switches AS s (name, owner, lease_until)
		VALUES ($1, $2, now() + $3 * interval '1 microsecond')
		ON CONFLICT (name) DO UPDATE
		SET owner = excluded.owner, lease_until = excluded.lease_until, updated_at = now()
		WHERE s.owner IS NULL OR s.owner = excluded.owner OR s.lease_until IS NULL OR s.lease_until < now()
		RETURNING 1`, name, owner, ttl.Microseconds())
	if err != nil {
		return false, fmt.Errorf("acquiring lease on switch %s: %w", name, translate(err))
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return false, fmt.Errorf("acquiring lease on switch %s: %w", name, translate(err))
	}
	return len(got) == 1, nil
}

// ReleaseSwitchLease gives up owner's lease on a switch; it does nothing if
// owner does not hold it.
func (s *Store) ReleaseSwitchLease(ctx context.Context, name, owner string) error {
	_, err := s.db.pool.Exec(ctx, `
		UPDATE switches SET owner = NULL, lease_until = NULL, updated_at = now()
		WHERE name = $1 AND owner = $2`, name, owner)
	if err != nil {
		return fmt.Errorf("releasing lease on switch %s: %w", name, translate(err))
	}
	return nil
}
