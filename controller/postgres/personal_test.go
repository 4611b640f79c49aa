package postgres_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/pii"
	"github.com/callgate/callgate/controller/postgres"
	"github.com/callgate/callgate/controller/postgres/pgtest"
	"github.com/callgate/callgate/controller/recording"
)

// sealedTables are the tables and columns numbers are stored in.
var sealedTables = []struct{ table, clear, index, sealed string }{
	{"consents", "number", "number_index", "number_sealed"},
	{"refusals", "number", "number_index", "number_sealed"},
	{"calls", "to_number", "to_index", "to_sealed"},
	{"attempts", "to_number", "to_index", "to_index"},
	{"leads", "phone", "phone_index", "phone_sealed"},
	{"campaign_leads", "phone", "phone_index", "phone_sealed"},
}

// storedNumbers returns every number column of the sealed tables as
// stored: clear values (table: value) and sealed bytes, and how many rows
// each table has.
func storedNumbers(t *testing.T, b *bundle) (clear []string, sealed [][]byte, rows map[string]int) {
	t.Helper()
	rows = map[string]int{}
	for _, c := range sealedTables {
		r, err := b.store.DB().Pool().Query(b.ctx, `SELECT `+c.clear+`, `+c.index+`, `+c.sealed+` FROM `+c.table)
		require.NoError(t, err)
		for r.Next() {
			var (
				n        *string
				idx, sld []byte
			)
			require.NoError(t, r.Scan(&n, &idx, &sld))
			if n != nil {
				clear = append(clear, c.table+": "+*n)
			}
			sealed = append(sealed, idx, sld)
			rows[c.table]++
		}
		require.NoError(t, r.Err())
	}
	return clear, sealed, rows
}

// lookupSees reports whether the gate's lookup sees a refusal of number and
// a marketing consent of tenant for it.
func lookupSees(t *testing.T, b *bundle, tenant, number string) (refused, consented bool) {
	t.Helper()
	_, err := b.store.Gate(b.ctx, tenant, number, func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
		r, err := l.ActiveRefusal(ctx, number, time.Now())
		if err != nil {
			return controller.Decision{}, err
		}
		c, err := l.ActiveConsent(ctx, tenant, number, controller.PurposeMarketing)
		if err != nil {
			return controller.Decision{}, err
		}
		refused, consented = r != nil, c != nil
		return controller.Decision{Allow: true}, nil
	})
	require.NoError(t, err)
	return refused, consented
}

func TestNumbersAreSealedAtRest(t *testing.T) {
	b := setup(t)
	const number = "+15550071234"
	_, err := b.store.CreateConsent(b.ctx, controller.Consent{Number: number,
		Purpose: controller.PurposeMarketing, Source: "ivr"})
	require.NoError(t, err)
	_, _, err = b.store.LockNumber(b.ctx, "", controller.Refusal{Number: number, Source: "api"})
	require.NoError(t, err)

	// A call (gated, as the API makes them) and a campaign call.
	c, _, _, err := b.store.CreateCallGated(b.ctx, controller.Call{To: number, From: "+15559990000"}, "", allow)
	require.NoError(t, err)
	camp := newCampaign(t, b.ctx, b.store, 3, controller.Campaign{MaxConcurrent: 10, MaxCPS: 100})
	_, err = b.store.TransitionCampaign(b.ctx, controller.DefaultTenant, camp.ID, controller.CampaignStart, nil)
	require.NoError(t, err)
	d, err := b.store.DispatchLeads(b.ctx, camp.ID, 10, nil)
	require.NoError(t, err)
	require.Equal(t, 3, d.Created)

	// Do-not-call entries, added one by one and imported.
	for _, id := range []string{"one", "bulk"} {
		_, err := b.store.CreateDNCList(b.ctx, controller.DNCList{ID: id, Name: id, Kind: "internal", TenantID: controller.DefaultTenant})
		require.NoError(t, err)
	}
	added, err := b.store.AddDNCNumber(b.ctx, "one", number)
	require.NoError(t, err)
	require.True(t, added)
	rep, err := b.store.ImportDNC(b.ctx, "bulk", strings.NewReader(number+"\n+12125550000\n"), nil, postgres.DNCImportOptions{})
	require.NoError(t, err)
	require.EqualValues(t, 2, rep.Added)
	var dncDigits, dncKeys int
	require.NoError(t, b.store.DB().Pool().QueryRow(b.ctx, `SELECT (SELECT count(*) FROM dnc_entries),
		(SELECT count(*) FROM dnc_index WHERE number_key NOT IN (15550071234, 12125550000))`).Scan(&dncDigits, &dncKeys))
	require.Zero(t, dncDigits, "no do-not-call entry as digits")
	require.Equal(t, 3, dncKeys, "each entry by its blind index")
	_, err = b.store.Gate(b.ctx, "", number, func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
		hits, err := l.DNCHits(ctx, "", number)
		require.NoError(t, err)
		require.Equal(t, []controller.DNCHit{{ListID: "bulk", ListKind: "internal"}, {ListID: "one", ListKind: "internal"}}, hits)
		hits, err = l.DNCHits(ctx, "", "+12125550000") // not prefetched: its own query
		require.Equal(t, []controller.DNCHit{{ListID: "bulk", ListKind: "internal"}}, hits)
		return controller.Decision{Allow: true}, err
	})
	require.NoError(t, err)

	clear, stored, rows := storedNumbers(t, b)
	require.Empty(t, clear, "no number in the clear")
	for _, table := range []string{"consents", "refusals", "calls", "attempts", "leads", "campaign_leads"} {
		require.NotZero(t, rows[table], table)
	}
	for _, v := range stored {
		for _, digits := range []string{"5550071234", "2125550000", "2125550001", "2125550002"} {
			require.False(t, bytes.Contains(v, []byte(digits)), "no digits in what is stored")
		}
	}
	_, err = b.store.RecheckAttempt(b.ctx, c.ID, allow)
	require.NoError(t, err)
	var inDecision, numberKey int
	require.NoError(t, b.store.DB().Pool().QueryRow(b.ctx, `SELECT
		count(*) FILTER (WHERE decision::text LIKE '%5550071234%' OR dial_decision::text LIKE '%5550071234%'),
		count(*) FILTER (WHERE decision ? 'number' OR dial_decision ? 'number')
		FROM attempts`).Scan(&inDecision, &numberKey))
	require.Zero(t, inDecision, "decisions are stored without the number")
	require.Zero(t, numberKey, "nor an empty one: that is how a decision from before sealing looks")
	resealed, err := b.store.SealClearNumbers(b.ctx)
	require.NoError(t, err)
	require.Zero(t, resealed, "a start finds nothing to seal")
	a, err := b.store.GetAttempt(b.ctx, controller.DefaultTenant, c.ID)
	require.NoError(t, err)
	require.Equal(t, number, a.Decision.Number, "put back when read")
	require.Equal(t, number, a.DialDecision.Number)
	got, err := b.store.GetCall(b.ctx, controller.DefaultTenant, c.ID)
	require.NoError(t, err)
	require.Equal(t, number, got.To, "opened for whoever may read it")
	page, err := b.store.ListCalls(b.ctx, controller.CallFilter{To: number})
	require.NoError(t, err)
	require.Len(t, page.Calls, 1, "found by number")
	leads, err := b.store.CampaignLeads(b.ctx, camp.ID, "", 0, 10)
	require.NoError(t, err)
	require.Equal(t, "+12125550000", leads[0].Phone)
	require.Equal(t, "Lead", leads[0].Name, "name opened")
	var clearDetails int
	require.NoError(t, b.store.DB().Pool().QueryRow(b.ctx, `SELECT count(*) FROM leads
		WHERE name <> '' OR fields <> '{}' OR personal_sealed IS NULL`).Scan(&clearDetails))
	require.Zero(t, clearDetails, "names and custom fields sealed")
	refused, consented := lookupSees(t, b, controller.DefaultTenant, number)
	require.True(t, refused)
	require.True(t, consented)
	list, err := b.store.ListRefusals(b.ctx, number)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, number, list[0].Number, "opened for whoever may read it")

	// A store without keys fails rather than write or read in the clear.
	bare := postgres.NewStore(b.store.DB())
	_, err = bare.CreateConsent(b.ctx, controller.Consent{Number: number, Purpose: controller.PurposeMarketing, Source: "ivr"})
	requireCode(t, controller.EINTERNAL, err)
	_, err = bare.ListRefusals(b.ctx, number)
	requireCode(t, controller.EINTERNAL, err)
	_, err = bare.Gate(b.ctx, "", number, func(context.Context, controller.Lookup) (controller.Decision, error) {
		return controller.Decision{Allow: true}, nil
	})
	requireCode(t, controller.EINTERNAL, err)
}

func TestClearNumbersFromBeforeSealingAreFoundThenSealed(t *testing.T) {
	b := setup(t)
	const refusedNumber, consentedNumber, calledNumber = "+15550071111", "+15550072222", "+15550073333"
	// Rows as an older version wrote them.
	pool := b.store.DB().Pool()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO refusals (id, number, source, at) VALUES ($1, $2, 'api', now())`, []any{uuid.NewString(), refusedNumber}},
		{`INSERT INTO consents (id, tenant_id, number, purpose, source, given_at) VALUES ($1, 'default', $2, 'marketing', 'ivr', now())`,
			[]any{uuid.NewString(), consentedNumber}},
		{`WITH c AS (INSERT INTO calls (id, tenant_id, attempt_id, to_number, state) VALUES ($1, 'default', nextval('attempts_id_seq'), $2, 'completed')
			RETURNING id, attempt_id)
			INSERT INTO attempts (id, tenant_id, call_id, status, to_number, allowed_at, decision)
			SELECT attempt_id, 'default', id, 'done', $2, now(), jsonb_build_object('allow', true, 'number', $2::text) FROM c`,
			[]any{uuid.NewString(), calledNumber}},
		{`WITH l AS (INSERT INTO lead_lists (id, tenant_id, name) VALUES ($1, 'default', 'old') RETURNING id)
			INSERT INTO leads (tenant_id, list_id, phone, name, fields)
			SELECT 'default', id, $2, 'Ada Lovelace', '{"email": "ada@example.com"}' FROM l`, []any{uuid.NewString(), calledNumber}},
		{`WITH l AS (INSERT INTO dnc_lists (id, name, kind, source, tenant_id) VALUES ('old', 'old', 'internal', '', 'default') RETURNING ref)
			INSERT INTO dnc_entries (number, list_ref) SELECT 15550073333, ref FROM l`, nil},
	} {
		_, err := pool.Exec(b.ctx, q.sql, q.args...)
		require.NoError(t, err, q.sql)
	}
	onDNC := func() bool {
		t.Helper()
		var hits []controller.DNCHit
		_, err := b.store.Gate(b.ctx, "", calledNumber, func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
			var err error
			hits, err = l.DNCHits(ctx, "", calledNumber)
			return controller.Decision{Allow: true}, err
		})
		require.NoError(t, err)
		return len(hits) == 1 && hits[0].ListID == "old"
	}
	require.True(t, onDNC(), "an entry stored as digits is found")
	counted := func() int {
		t.Helper()
		var n int
		_, err := b.store.Gate(b.ctx, "", calledNumber, func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
			var err error
			n, err = l.CountAttempts(ctx, calledNumber, time.Now().Add(-time.Hour))
			return controller.Decision{Allow: true}, err
		})
		require.NoError(t, err)
		return n
	}

	refused, _ := lookupSees(t, b, controller.DefaultTenant, refusedNumber)
	require.True(t, refused, "a clear refusal is never missed")
	_, consented := lookupSees(t, b, controller.DefaultTenant, consentedNumber)
	require.True(t, consented)
	require.Equal(t, 1, counted(), "a clear attempt counts towards the caps")

	n, err := b.store.SealClearNumbers(b.ctx)
	require.NoError(t, err)
	require.Equal(t, 8, n, "a refusal, a consent, a call, its attempt and its decision, a lead's number and its details, a do-not-call entry")
	require.True(t, onDNC(), "found by its index once moved")
	var digitsLeft int
	require.NoError(t, pool.QueryRow(b.ctx, `SELECT count(*) FROM dnc_entries`).Scan(&digitsLeft))
	require.Zero(t, digitsLeft)
	clear, _, _ := storedNumbers(t, b)
	require.Empty(t, clear)
	refused, _ = lookupSees(t, b, controller.DefaultTenant, refusedNumber)
	require.True(t, refused, "found by its index once sealed")
	_, consented = lookupSees(t, b, controller.DefaultTenant, consentedNumber)
	require.True(t, consented)
	require.Equal(t, 1, counted())
	page, err := b.store.ListCalls(b.ctx, controller.CallFilter{To: calledNumber})
	require.NoError(t, err)
	require.Len(t, page.Calls, 1)
	require.Equal(t, calledNumber, page.Calls[0].To)
	var clearDetails int
	require.NoError(t, pool.QueryRow(b.ctx, `SELECT count(*) FROM leads WHERE name <> '' OR fields <> '{}'`).Scan(&clearDetails))
	require.Zero(t, clearDetails, "names and fields sealed")
	var inDecision int
	require.NoError(t, pool.QueryRow(b.ctx, `SELECT count(*) FROM attempts WHERE decision::text LIKE '%5550073333%'`).Scan(&inDecision))
	require.Zero(t, inDecision, "no number left in stored decisions")
	a, err := b.store.GetAttempt(b.ctx, controller.DefaultTenant, page.Calls[0].ID)
	require.NoError(t, err)
	require.Equal(t, calledNumber, a.Decision.Number, "put back when read")
	n, err = b.store.SealClearNumbers(b.ctx)
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestIndexKeyMustMatchTheDatabase(t *testing.T) {
	b := setup(t)
	mine, err := pgtest.PersonalData().Fingerprint()
	require.NoError(t, err)
	require.NoError(t, b.store.CheckIndexKey(b.ctx, mine))
	require.NoError(t, b.store.CheckIndexKey(b.ctx, mine), "the same key again")
	other, err := pii.New(recording.NewMemoryKeyring())
	require.NoError(t, err)
	theirs, err := other.Fingerprint()
	require.NoError(t, err)
	err = b.store.CheckIndexKey(b.ctx, theirs)
	requireCode(t, controller.EINVALID, err)
	require.ErrorContains(t, err, "same keyring file")
}

func TestRotationResealsNumbers(t *testing.T) {
	b := setup(t)
	kr := recording.NewMemoryKeyring()
	keys, err := pii.New(kr)
	require.NoError(t, err)
	s := postgres.NewStore(b.store.DB())
	s.SetPersonalData(keys)
	const number = "+15550073333"
	for range 3 {
		_, err := s.CreateConsent(b.ctx, controller.Consent{Number: number, Purpose: controller.PurposeService, Source: "ivr"})
		require.NoError(t, err)
	}
	_, _, err = s.LockNumber(b.ctx, "", controller.Refusal{Number: number, Source: "api"})
	require.NoError(t, err)
	c, _, _, err := s.CreateCallGated(b.ctx, controller.Call{To: number, From: "+15559990000"}, "", allow)
	require.NoError(t, err)
	old := kr.CurrentID()

	newID := kr.Rotate()
	n, err := s.ResealNumbers(b.ctx, pii.SealedPrefix(newID))
	require.NoError(t, err)
	require.Equal(t, 5, n, "3 consents, a refusal, a call")
	n, err = s.ResealNumbers(b.ctx, pii.SealedPrefix(newID))
	require.NoError(t, err)
	require.Zero(t, n, "nothing left under the old key")
	require.NoError(t, kr.Retire(old))

	list, err := s.ListConsents(b.ctx, controller.DefaultTenant, number)
	require.NoError(t, err)
	require.Len(t, list, 3)
	for _, c := range list {
		require.Equal(t, number, c.Number, "readable with the new key alone")
	}
	refusals, err := s.ListRefusals(b.ctx, number)
	require.NoError(t, err)
	require.Len(t, refusals, 1)
	got, err := s.GetCall(b.ctx, controller.DefaultTenant, c.ID)
	require.NoError(t, err)
	require.Equal(t, number, got.To)
}

func TestDNCEntriesStoredAsDigitsAreMovedInBatches(t *testing.T) {
	b := setup(t)
	_, err := b.store.CreateDNCList(b.ctx, controller.DNCList{ID: "old", Name: "old", Kind: "national"})
	require.NoError(t, err)
	// One number is on the list both ways: added by this version, then by
	// an older one as digits.
	added, err := b.store.AddDNCNumber(b.ctx, "old", "+13000000007")
	require.NoError(t, err)
	require.True(t, added)
	const n = 25_000 // more than two batches
	_, err = b.store.DB().Pool().Exec(b.ctx, `
		WITH l AS (UPDATE dnc_lists SET entries = entries + $1 WHERE id = 'old' RETURNING ref)
		INSERT INTO dnc_entries (number, list_ref) SELECT 13000000000 + g, ref FROM l, generate_series(0, $1 - 1) g`, n)
	require.NoError(t, err)
	require.EqualValues(t, n+1, b.list(t, "", "old").Entries)
	for _, number := range []string{"+13000000000", "+13000000007", "+13000024999"} {
		require.Len(t, b.hits(t, "", number), 1, "%s found as digits", number)
	}

	moved, err := b.store.SealClearNumbers(b.ctx)
	require.NoError(t, err)
	require.Equal(t, n, moved)
	var digits, keys int
	require.NoError(t, b.store.DB().Pool().QueryRow(b.ctx,
		`SELECT (SELECT count(*) FROM dnc_entries), (SELECT count(*) FROM dnc_index)`).Scan(&digits, &keys))
	require.Zero(t, digits)
	require.Equal(t, n, keys)
	require.EqualValues(t, n, b.list(t, "", "old").Entries, "the entry that was there twice counts once")
	for _, number := range []string{"+13000000000", "+13000000007", "+13000012345", "+13000024999"} {
		require.Equal(t, []controller.DNCHit{{ListID: "old", ListKind: "national"}}, b.hits(t, "", number), number)
	}
	require.Empty(t, b.hits(t, "", "+13000025000"))
	removed, err := b.store.RemoveDNCNumber(b.ctx, "old", "+13000012345")
	require.NoError(t, err)
	require.True(t, removed)
	require.Empty(t, b.hits(t, "", "+13000012345"))
}
