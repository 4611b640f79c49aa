package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/callgate/callgate/controller"
)

// numberField is the field phone numbers are sealed as, in every table, so
// a sealed number can be copied from one table to another.
const numberField = "number"

// errNoPersonalData is what a store without PersonalData answers when asked
// to store or read a personal field: it never falls back to the clear.
var errNoPersonalData = controller.Errorf(controller.EINTERNAL,
	"personal data keys are not configured (the keyring: keys_file)")

// SetPersonalData gives the store the keys it seals and indexes personal
// data with (controller/pii). Call it before the store is used; without it,
// every method that stores or reads a phone number fails.
func (s *Store) SetPersonalData(pd controller.PersonalData) { s.pd = pd }

// sealNumber returns the blind index and the sealed form of number.
func sealNumber(pd controller.PersonalData, number string) (index, sealed []byte, err error) {
	if pd == nil {
		return nil, nil, errNoPersonalData
	}
	if index, err = pd.NumberIndex(number); err != nil {
		return nil, nil, err
	}
	if sealed, err = pd.Seal(numberField, number); err != nil {
		return nil, nil, err
	}
	return index, sealed, nil
}

// numberIndex returns the blind index of number with the store's keys.
func (s *Store) numberIndex(number string) ([]byte, error) {
	if s.pd == nil {
		return nil, errNoPersonalData
	}
	return s.pd.NumberIndex(number)
}

// numberIndexes returns the blind indexes of numbers, in order.
func numberIndexes(pd controller.PersonalData, numbers []string) ([][]byte, error) {
	if pd == nil {
		return nil, errNoPersonalData
	}
	out := make([][]byte, len(numbers))
	for i, n := range numbers {
		idx, err := pd.NumberIndex(n)
		if err != nil {
			return nil, err
		}
		out[i] = idx
	}
	return out, nil
}

// openNumber returns a stored number: opened from its sealed form, or the
// clear value of a row written before numbers were sealed (SealClearNumbers
// seals those at start-up).
func openNumber(pd controller.PersonalData, clear string, sealed []byte) (string, error) {
	if sealed == nil {
		return clear, nil
	}
	if pd == nil {
		return "", errNoPersonalData
	}
	return pd.Open(numberField, sealed)
}

// CheckIndexKey makes sure every controller of the database indexes numbers
// with the same key: the first records its key's fingerprint, the others
// must match it. Returns EINVALID if they do not (every number would be
// unfindable: refusals and consents included).
func (s *Store) CheckIndexKey(ctx context.Context, fingerprint []byte) error {
	var stored []byte
	err := s.db.pool.QueryRow(ctx, `
		WITH i AS (
			INSERT INTO pii_index_key (fingerprint) VALUES ($1)
			ON CONFLICT (one) DO NOTHING RETURNING fingerprint)
		SELECT fingerprint FROM i UNION ALL SELECT fingerprint FROM pii_index_key`, fingerprint).Scan(&stored)
	if err != nil {
		return fmt.Errorf("checking the index key: %w", translate(err))
	}
	if string(stored) != string(fingerprint) {
		return controller.Errorf(controller.EINVALID, "the keyring's index key is not the one this database's "+
			"phone numbers were indexed with: give this controller the same keyring file as the others")
	}
	return nil
}

// clearNumberTables are the tables whose phone numbers are sealed, with
// with a uuid id, number, number_index and number_sealed.
var clearNumberTables = []string{"consents", "refusals"}

// SealClearNumbers seals the phone numbers of rows written in the clear
// before numbers were sealed (migration 016), in batches, and returns how
// many it sealed. Controllers run it at start, one at a time (an advisory
// lock), before they dial.
func (s *Store) SealClearNumbers(ctx context.Context) (int, error) {
	if s.pd == nil {
		return 0, errNoPersonalData
	}
	conn, err := s.db.pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("sealing clear numbers: %w", translate(err))
	}
	defer conn.Release()
	const lockSQL = `hashtextextended('callgate seal clear numbers ' || current_schema(), 0)`
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(`+lockSQL+`)`); err != nil {
		return 0, fmt.Errorf("sealing clear numbers: %w", translate(err))
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(`+lockSQL+`)`) }()
	total := 0
	for _, t := range clearNumberTables {
		for {
			n, err := s.sealClearBatch(ctx, conn, t)
			total += n
			if err != nil {
				return total, fmt.Errorf("sealing clear numbers in %s: %w", t, err)
			}
			if n == 0 {
				break
			}
		}
	}
	return total, nil
}

// sealClearBatch seals up to 1000 clear numbers of table.
func (s *Store) sealClearBatch(ctx context.Context, conn *pgxpool.Conn, table string) (int, error) {
	var ids, numbers []string
	rows, err := conn.Query(ctx, `SELECT id::text, number FROM `+table+` WHERE number IS NOT NULL LIMIT 1000`)
	if err != nil {
		return 0, translate(err)
	}
	var id, number string
	if _, err := pgx.ForEachRow(rows, []any{&id, &number}, func() error {
		ids, numbers = append(ids, id), append(numbers, number)
		return nil
	}); err != nil {
		return 0, translate(err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	indexes, sealed := make([][]byte, len(ids)), make([][]byte, len(ids))
	for i, n := range numbers {
		if indexes[i], sealed[i], err = sealNumber(s.pd, n); err != nil {
			return 0, err
		}
	}
	// Only rows still clear with the number read: a concurrent writer
	// cannot have changed them (numbers are never updated), but be exact.
	tag, err := conn.Exec(ctx, `
		UPDATE `+table+` t SET number = NULL, number_index = u.idx, number_sealed = u.sealed
		FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::bytea[]) AS u(id, number, idx, sealed)
		WHERE t.id = u.id AND t.number = u.number`, ids, numbers, indexes, sealed)
	if err != nil {
		return 0, translate(err)
	}
	if tag.RowsAffected() == 0 {
		return 0, errors.New("no row could be sealed")
	}
	return int(tag.RowsAffected()), nil
}

// ResealNumbers re-seals with the store's keys every sealed number that
// does not start with current — the prefix of values sealed under the
// current master key (pii.SealedPrefix) — and returns how many it re-sealed.
// A key rotation runs it before retiring the old keys.
func (s *Store) ResealNumbers(ctx context.Context, current []byte) (int, error) {
	if s.pd == nil {
		return 0, errNoPersonalData
	}
	total := 0
	for _, table := range clearNumberTables {
		for {
			n, err := s.resealBatch(ctx, table, current)
			total += n
			if err != nil {
				return total, fmt.Errorf("re-sealing numbers in %s: %w", table, err)
			}
			if n == 0 {
				break
			}
		}
	}
	return total, nil
}

// resealBatch re-seals up to 1000 numbers of table not sealed under current.
func (s *Store) resealBatch(ctx context.Context, table string, current []byte) (int, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT id::text, number_sealed FROM `+table+`
		WHERE number_sealed IS NOT NULL AND substring(number_sealed FROM 1 FOR $2) <> $1 LIMIT 1000`,
		current, len(current))
	if err != nil {
		return 0, translate(err)
	}
	var (
		ids        []string
		old, fresh [][]byte
		id         string
		sealed     []byte
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &sealed}, func() error {
		number, err := s.pd.Open(numberField, sealed)
		if err != nil {
			return fmt.Errorf("row %s: %w", id, err)
		}
		again, err := s.pd.Seal(numberField, number)
		if err != nil {
			return err
		}
		if !bytes.HasPrefix(again, current) {
			return controller.Errorf(controller.EINTERNAL, "the keys seal under another master key than the current one: reload the keyring")
		}
		ids, old, fresh = append(ids, id), append(old, bytes.Clone(sealed)), append(fresh, again)
		return nil
	}); err != nil {
		return 0, translate(err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	// A row changed meanwhile (it cannot: numbers are never updated) keeps
	// its value and is found again by the next batch.
	tag, err := s.db.pool.Exec(ctx, `
		UPDATE `+table+` t SET number_sealed = u.fresh
		FROM unnest($1::uuid[], $2::bytea[], $3::bytea[]) AS u(id, old, fresh)
		WHERE t.id = u.id AND t.number_sealed = u.old`, ids, old, fresh)
	if err != nil {
		return 0, translate(err)
	}
	return int(tag.RowsAffected()), nil
}
