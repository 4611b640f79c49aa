package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"

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
	if index, err = numberIndexOf(pd, number); err != nil {
		return nil, nil, err
	}
	if sealed, err = pd.Seal(numberField, number); err != nil {
		return nil, nil, err
	}
	return index, sealed, nil
}

// numberIndexOf returns the blind index of number with pd's keys.
func numberIndexOf(pd controller.PersonalData, number string) ([]byte, error) {
	if pd == nil {
		return nil, errNoPersonalData
	}
	return pd.NumberIndex(number)
}

// numberIndex returns the blind index of number with the store's keys.
func (s *Store) numberIndex(number string) ([]byte, error) { return numberIndexOf(s.pd, number) }

// leadField is the field a lead's name and custom fields are sealed as.
const leadField = "lead"

// sealLeadDetails seals a lead's name and its custom fields (a JSON object)
// together; nil when there is nothing to seal.
func sealLeadDetails(pd controller.PersonalData, name string, fields []byte) ([]byte, error) {
	if name == "" && (len(fields) == 0 || string(fields) == "{}") {
		return nil, nil
	}
	if pd == nil {
		return nil, errNoPersonalData
	}
	// The name's length first, then the name, then the fields.
	b := binary.AppendUvarint(make([]byte, 0, 4+len(name)+len(fields)), uint64(len(name)))
	b = append(append(b, name...), fields...)
	return pd.Seal(leadField, string(b))
}

// openLeadDetails returns a lead's name and custom fields (JSON): opened
// from sealed, or as stored in the clear (rows from before sealing, or
// with nothing to seal).
func openLeadDetails(pd controller.PersonalData, name string, fields, sealed []byte) (string, []byte, error) {
	if sealed == nil {
		return name, fields, nil
	}
	if pd == nil {
		return "", nil, errNoPersonalData
	}
	plain, err := pd.Open(leadField, sealed)
	if err != nil {
		return "", nil, err
	}
	n, k := binary.Uvarint([]byte(plain))
	if k <= 0 || n > uint64(len(plain)-k) {
		return "", nil, controller.Errorf(controller.EINTERNAL, "malformed sealed lead details")
	}
	rest := plain[k:]
	return rest[:n], []byte(rest[n:]), nil
}

// dncKey is the do-not-call key of a blind index: its first 64 bits.
func dncKey(index []byte) int64 { return int64(binary.BigEndian.Uint64(index)) }

// digitsKey returns the do-not-call key of the E.164 number whose digits
// are d (how dnc_entries held numbers).
func digitsKey(pd controller.PersonalData, d int64) (int64, error) {
	var b [20]byte
	idx, err := pd.NumberIndex(string(strconv.AppendInt(append(b[:0], '+'), d, 10)))
	if err != nil {
		return 0, err
	}
	return dncKey(idx), nil
}

// digitsKeys returns the do-not-call keys of ds, on every core.
func digitsKeys(pd controller.PersonalData, ds []int64) ([]int64, error) {
	if pd == nil {
		return nil, errNoPersonalData
	}
	out := make([]int64, len(ds))
	return out, onEveryCore(len(ds), 1024, func(i int) (err error) {
		out[i], err = digitsKey(pd, ds[i])
		return err
	})
}

// onEveryCore runs fn(0…n-1) on up to GOMAXPROCS goroutines, each given at
// least perWorker values, and returns the first error of each (a goroutine
// stops at its first).
func onEveryCore(n, perWorker int, fn func(i int) error) error {
	workers := max(1, min(runtime.GOMAXPROCS(0), n/perWorker))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := fn(i); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
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

// numberColumns are the phone numbers sealed at rest: the clear column of
// rows written before (NULL once sealed), the blind index and the sealed
// value ("" for none: an attempt keeps only the index).
var numberColumns = []struct{ table, clear, index, sealed string }{
	{"consents", "number", "number_index", "number_sealed"},
	{"refusals", "number", "number_index", "number_sealed"},
	{"calls", "to_number", "to_index", "to_sealed"},
	{"attempts", "to_number", "to_index", ""},
	{"leads", "phone", "phone_index", "phone_sealed"},
	{"campaign_leads", "phone", "phone_index", "phone_sealed"},
}

// SealClearNumbers seals the phone numbers of rows written in the clear
// before numbers were sealed (migrations 016 and 017), in batches, and
// returns how many it sealed. Controllers run it at start, one at a time
// (an advisory lock), before they dial.
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
	for _, t := range numberColumns {
		for stuck := 0; ; {
			n, more, err := s.sealClearBatch(ctx, conn, t.table, t.clear, t.index, t.sealed)
			total += n
			if err != nil {
				return total, fmt.Errorf("sealing clear numbers in %s: %w", t.table, err)
			}
			if !more {
				break
			}
			if n == 0 {
				// Every row of the batch moved meanwhile (an update): read
				// again, a few times.
				if stuck++; stuck == 5 {
					return total, fmt.Errorf("sealing clear numbers in %s: rows keep changing; start again", t.table)
				}
			}
		}
	}
	// Do-not-call entries stored as digits before, in key order (rows
	// deleted behind the cursor are not read again).
	after := dncCursor{number: -1}
	for {
		n, next, err := s.moveDNCBatch(ctx, conn, after)
		total += n
		if err != nil {
			return total, fmt.Errorf("indexing do-not-call entries: %w", err)
		}
		if next == after {
			break
		}
		after = next
	}
	// Names and custom fields of leads imported before.
	for {
		n, err := s.sealLeadDetailsBatch(ctx, conn)
		total += n
		if err != nil {
			return total, fmt.Errorf("sealing lead names and fields: %w", err)
		}
		if n == 0 {
			break
		}
	}
	// Decisions stored with attempts before held the callee's number.
	for {
		tag, err := conn.Exec(ctx, `
			UPDATE attempts SET decision = decision - 'number', dial_decision = dial_decision - 'number'
			WHERE ctid = ANY(ARRAY(SELECT ctid FROM attempts
				WHERE decision ? 'number' OR dial_decision ? 'number' LIMIT 5000))`)
		if err != nil {
			return total, fmt.Errorf("removing numbers from stored decisions: %w", translate(err))
		}
		total += int(tag.RowsAffected())
		if tag.RowsAffected() == 0 {
			break
		}
	}
	return total, nil
}

// dncCursor is the key of a dnc_entries row.
type dncCursor struct {
	number int64
	ref    int32
}

// moveDNCBatch moves the next 10 000 do-not-call entries stored as digits
// (after the given key) to dnc_index, and returns how many it moved and the
// last key it read (after again once none are left). An entry that is in
// both tables (an older controller added it again) leaves dnc_entries and
// its list's count drops by one.
func (s *Store) moveDNCBatch(ctx context.Context, conn *pgxpool.Conn, after dncCursor) (int, dncCursor, error) {
	rows, err := conn.Query(ctx, `SELECT number, list_ref FROM dnc_entries
		WHERE (number, list_ref) > ($1, $2) ORDER BY number, list_ref LIMIT 10000`, after.number, after.ref)
	if err != nil {
		return 0, after, translate(err)
	}
	var (
		numbers []int64
		refs    []int32
		number  int64
		ref     int32
	)
	if _, err := pgx.ForEachRow(rows, []any{&number, &ref}, func() error {
		numbers, refs = append(numbers, number), append(refs, ref)
		return nil
	}); err != nil {
		return 0, after, translate(err)
	}
	if len(numbers) == 0 {
		return 0, after, nil
	}
	last := dncCursor{numbers[len(numbers)-1], refs[len(refs)-1]}
	keys, err := digitsKeys(s.pd, numbers)
	if err != nil {
		return 0, after, err
	}
	var moved int
	err = conn.QueryRow(ctx, `
		WITH moved AS (
			DELETE FROM dnc_entries e USING unnest($1::bigint[], $2::int[]) AS u(number, ref)
			WHERE e.number = u.number AND e.list_ref = u.ref
			RETURNING e.number, e.list_ref
		), ins AS (
			INSERT INTO dnc_index (list_ref, number_key)
			SELECT u.ref, u.key FROM unnest($1::bigint[], $2::int[], $3::bigint[]) AS u(number, ref, key)
			JOIN moved m ON m.number = u.number AND m.list_ref = u.ref
			ON CONFLICT DO NOTHING
			RETURNING list_ref
		), dup AS (
			UPDATE dnc_lists l SET entries = l.entries - d.n
			FROM (SELECT m.list_ref, m.n - coalesce(i.n, 0) AS n
				FROM (SELECT list_ref, count(*) AS n FROM moved GROUP BY list_ref) m
				LEFT JOIN (SELECT list_ref, count(*) AS n FROM ins GROUP BY list_ref) i USING (list_ref)) d
			WHERE l.ref = d.list_ref AND d.n > 0
		)
		SELECT count(*) FROM moved`, numbers, refs, keys).Scan(&moved)
	if err != nil {
		return 0, after, translate(err)
	}
	return moved, last, nil
}

// sealLeadDetailsBatch seals the names and fields of up to 1000 leads
// stored in the clear.
func (s *Store) sealLeadDetailsBatch(ctx context.Context, conn *pgxpool.Conn) (int, error) {
	rows, err := conn.Query(ctx, `SELECT id, name, fields FROM leads
		WHERE personal_sealed IS NULL AND (name <> '' OR fields <> '{}'::jsonb) LIMIT 1000`)
	if err != nil {
		return 0, translate(err)
	}
	var (
		ids    []int64
		sealed [][]byte
		id     int64
		name   string
		fields []byte
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &name, &fields}, func() error {
		b, err := sealLeadDetails(s.pd, name, fields)
		if err != nil {
			return err
		}
		ids, sealed = append(ids, id), append(sealed, b)
		return nil
	}); err != nil {
		return 0, translate(err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	tag, err := conn.Exec(ctx, `
		UPDATE leads l SET personal_sealed = u.sealed, name = '', fields = '{}'
		FROM unnest($1::bigint[], $2::bytea[]) AS u(id, sealed)
		WHERE l.id = u.id AND l.personal_sealed IS NULL`, ids, sealed)
	if err != nil {
		return 0, translate(err)
	}
	return int(tag.RowsAffected()), nil
}

// sealClearBatch seals up to 1000 clear numbers of table; more reports
// whether it found any.
func (s *Store) sealClearBatch(ctx context.Context, conn *pgxpool.Conn, table, clearCol, indexCol, sealedCol string) (n int, more bool, err error) {
	rows, err := conn.Query(ctx, `SELECT ctid::text, `+clearCol+` FROM `+table+` WHERE `+clearCol+` IS NOT NULL LIMIT 1000`)
	if err != nil {
		return 0, false, translate(err)
	}
	var (
		tids, numbers []string
		tid, number   string
	)
	if _, err := pgx.ForEachRow(rows, []any{&tid, &number}, func() error {
		tids, numbers = append(tids, tid), append(numbers, number)
		return nil
	}); err != nil {
		return 0, false, translate(err)
	}
	if len(tids) == 0 {
		return 0, false, nil
	}
	indexes, sealed := make([][]byte, len(tids)), make([][]byte, len(tids))
	for i, num := range numbers {
		if indexes[i], sealed[i], err = sealNumber(s.pd, num); err != nil {
			return 0, true, err
		}
	}
	set := indexCol + ` = u.idx`
	if sealedCol != "" {
		set += `, ` + sealedCol + ` = u.sealed`
	}
	// A row updated meanwhile has moved (another ctid) and is found again
	// by the next batch.
	tag, err := conn.Exec(ctx, `
		UPDATE `+table+` t SET `+clearCol+` = NULL, `+set+`
		FROM unnest($1::tid[], $2::text[], $3::bytea[], $4::bytea[]) AS u(tid, number, idx, sealed)
		WHERE t.ctid = u.tid AND t.`+clearCol+` = u.number`, tids, numbers, indexes, sealed)
	if err != nil {
		return 0, true, translate(err)
	}
	return int(tag.RowsAffected()), true, nil
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
	for _, t := range numberColumns {
		if t.sealed == "" {
			continue
		}
		for stuck := 0; ; {
			n, found, err := s.resealBatch(ctx, t.table, t.sealed, current)
			total += n
			if err != nil {
				return total, fmt.Errorf("re-sealing numbers in %s: %w", t.table, err)
			}
			if found == 0 {
				break
			}
			if n == 0 {
				if stuck++; stuck == 5 {
					return total, fmt.Errorf("re-sealing numbers in %s: rows keep changing; run it again", t.table)
				}
			}
		}
	}
	return total, nil
}

// resealBatch re-seals up to 1000 numbers of table not sealed under current;
// found is how many it found.
func (s *Store) resealBatch(ctx context.Context, table, col string, current []byte) (n, found int, err error) {
	rows, err := s.db.pool.Query(ctx, `SELECT ctid::text, `+col+` FROM `+table+`
		WHERE `+col+` IS NOT NULL AND substring(`+col+` FROM 1 FOR $2) <> $1 LIMIT 1000`,
		current, len(current))
	if err != nil {
		return 0, 0, translate(err)
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
		return 0, 0, translate(err)
	}
	if len(ids) == 0 {
		return 0, 0, nil
	}
	// A row updated meanwhile has moved (another ctid) and is found again
	// by the next batch.
	tag, err := s.db.pool.Exec(ctx, `
		UPDATE `+table+` t SET `+col+` = u.fresh
		FROM unnest($1::tid[], $2::bytea[], $3::bytea[]) AS u(tid, old, fresh)
		WHERE t.ctid = u.tid AND t.`+col+` = u.old`, ids, old, fresh)
	if err != nil {
		return 0, len(ids), translate(err)
	}
	return int(tag.RowsAffected()), len(ids), nil
}
