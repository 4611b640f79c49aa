package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/postgres"
)

// digitsNormalizer accepts E.164, or bare digits to which it adds "+1".
func digitsNormalizer(s string) (string, error) {
	if strings.HasPrefix(s, "+") {
		return s, nil
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return "", errors.New("not a phone number")
		}
	}
	return "+1" + s, nil
}

// hits runs DNCHits for tenant and number through a dry run.
func (b *bundle) hits(t *testing.T, tenant, number string) []controller.DNCHit {
	t.Helper()
	var hits []controller.DNCHit
	_, err := b.store.Gate(b.ctx, tenant, number, func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
		var err error
		hits, err = l.DNCHits(ctx, tenant, number)
		return controller.Decision{}, err
	})
	require.NoError(t, err)
	return hits
}

func (b *bundle) list(t *testing.T, tenant, id string) controller.DNCList {
	t.Helper()
	l, err := b.store.GetDNCList(b.ctx, tenant, id)
	require.NoError(t, err)
	return l
}

func TestDNCLists(t *testing.T) {
	b := setup(t)
	b.addTenant(t, "acme")
	scrubbed := time.Now().Add(-40 * 24 * time.Hour).Truncate(time.Microsecond)
	national, err := b.store.CreateDNCList(b.ctx, controller.DNCList{ID: "us-national", Name: "US registry",
		Kind: "national", Source: "donotcall.gov", LastScrubAt: scrubbed, Entries: 99})
	require.NoError(t, err)
	require.Zero(t, national.Entries)
	internal, err := b.store.CreateDNCList(b.ctx, controller.DNCList{TenantID: "acme", Name: "internal", Kind: "internal"})
	require.NoError(t, err)
	require.NotEmpty(t, internal.ID)
	_, err = b.store.CreateDNCList(b.ctx, controller.DNCList{TenantID: controller.DefaultTenant, ID: "zz-default",
		Name: "default's", Kind: "other"})
	require.NoError(t, err)

	lists, err := b.store.ListDNCLists(b.ctx, "acme")
	require.NoError(t, err)
	require.Len(t, lists, 2)
	byID := map[string]controller.DNCList{}
	for _, l := range lists {
		byID[l.ID] = l
	}
	require.True(t, byID["us-national"].LastScrubAt.Equal(scrubbed))
	require.Equal(t, "", byID["us-national"].TenantID)
	require.Equal(t, "acme", byID[internal.ID].TenantID)
	require.True(t, byID[internal.ID].LastScrubAt.IsZero())

	_, err = b.store.GetDNCList(b.ctx, "acme", "zz-default")
	requireCode(t, controller.ENOTFOUND, err)

	const number = "+15550014000"
	added, err := b.store.AddDNCNumber(b.ctx, "us-national", number)
	require.NoError(t, err)
	require.True(t, added)
	added, err = b.store.AddDNCNumber(b.ctx, "us-national", number)
	require.NoError(t, err)
	require.False(t, added)
	_, err = b.store.AddDNCNumber(b.ctx, internal.ID, number)
	require.NoError(t, err)
	_, err = b.store.AddDNCNumber(b.ctx, "zz-default", number)
	require.NoError(t, err)
	require.EqualValues(t, 1, b.list(t, "acme", "us-national").Entries)

	require.Equal(t, []controller.DNCHit{{ListID: internal.ID, ListKind: "internal"},
		{ListID: "us-national", ListKind: "national"}}, sortHits(b.hits(t, "acme", number)))
	require.Equal(t, []controller.DNCHit{{ListID: "us-national", ListKind: "national"},
		{ListID: "zz-default", ListKind: "other"}}, b.hits(t, controller.DefaultTenant, number))
	require.Empty(t, b.hits(t, "acme", "+15550014001"))

	var seen []controller.DNCList
	_, err = b.store.Gate(b.ctx, "acme", number, func(ctx context.Context, l controller.Lookup) (controller.Decision, error) {
		var err error
		seen, err = l.DNCLists(ctx, "acme")
		return controller.Decision{}, err
	})
	require.NoError(t, err)
	lists, err = b.store.ListDNCLists(b.ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, lists, seen)

	removed, err := b.store.RemoveDNCNumber(b.ctx, "us-national", number)
	require.NoError(t, err)
	require.True(t, removed)
	removed, err = b.store.RemoveDNCNumber(b.ctx, "us-national", number)
	require.NoError(t, err)
	require.False(t, removed)
	require.Zero(t, b.list(t, "acme", "us-national").Entries)
	require.Equal(t, []controller.DNCHit{{ListID: internal.ID, ListKind: "internal"}}, b.hits(t, "acme", number))

	now := time.Now().Truncate(time.Microsecond)
	require.NoError(t, b.store.SetDNCScrubbed(b.ctx, "us-national", now))
	require.True(t, b.list(t, "acme", "us-national").LastScrubAt.Equal(now))

	require.NoError(t, b.store.DeleteDNCList(b.ctx, internal.ID))
	require.Empty(t, b.hits(t, "acme", number))
	err = b.store.DeleteDNCList(b.ctx, internal.ID)
	requireCode(t, controller.ENOTFOUND, err)
}

func sortHits(h []controller.DNCHit) []controller.DNCHit {
	if len(h) == 2 && h[0].ListID > h[1].ListID {
		h[0], h[1] = h[1], h[0]
	}
	return h
}

func TestDNCListErrors(t *testing.T) {
	b := setup(t)
	for name, tc := range map[string]struct {
		l     controller.DNCList
		field string
	}{
		"kind":   {controller.DNCList{Name: "x", Kind: "secret"}, "kind"},
		"name":   {controller.DNCList{Kind: "internal"}, "name"},
		"id":     {controller.DNCList{ID: "a{b}", Name: "x", Kind: "internal"}, "id"},
		"tenant": {controller.DNCList{TenantID: "nobody", Name: "x", Kind: "internal"}, "tenant_id"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := b.store.CreateDNCList(b.ctx, tc.l)
			requireCode(t, controller.EINVALID, err)
			require.Equal(t, tc.field, controller.ErrorField(err))
		})
	}
	_, err := b.store.CreateDNCList(b.ctx, controller.DNCList{ID: "x", Name: "x", Kind: "internal"})
	require.NoError(t, err)
	_, err = b.store.CreateDNCList(b.ctx, controller.DNCList{ID: "x", Name: "x", Kind: "internal"})
	requireCode(t, controller.ECONFLICT, err)

	_, err = b.store.AddDNCNumber(b.ctx, "missing", "+15550000001")
	requireCode(t, controller.ENOTFOUND, err)
	_, err = b.store.AddDNCNumber(b.ctx, "x", "15550000001")
	requireCode(t, controller.EINVALID, err)
	_, err = b.store.RemoveDNCNumber(b.ctx, "missing", "+15550000001")
	requireCode(t, controller.ENOTFOUND, err)
	_, err = b.store.RemoveDNCNumber(b.ctx, "x", "+1")
	requireCode(t, controller.EINVALID, err)
	requireCode(t, controller.ENOTFOUND, b.store.SetDNCScrubbed(b.ctx, "missing", time.Now()))
	requireCode(t, controller.EINVALID, b.store.SetDNCScrubbed(b.ctx, "x", time.Time{}))
	_, err = b.store.ImportDNC(b.ctx, "missing", strings.NewReader("+15550000001\n"), nil, postgres.DNCImportOptions{})
	requireCode(t, controller.ENOTFOUND, err)
}

// importModes are the two ways an upload goes in: sorted in memory (copied
// straight into the entries when the list is empty) or streamed through a
// staging table (SortRows smaller than the upload).
var importModes = map[string]int{"in-memory": 0, "streaming": 2}

func TestImportDNC(t *testing.T) {
	t.Parallel()
	for mode, sortRows := range importModes {
		t.Run(mode, func(t *testing.T) { testImportDNC(t, sortRows) })
	}
}

func testImportDNC(t *testing.T, sortRows int) {
	b := setup(t)
	_, err := b.store.CreateDNCList(b.ctx, controller.DNCList{ID: "internal", Name: "internal", Kind: "internal"})
	require.NoError(t, err)
	_, err = b.store.AddDNCNumber(b.ctx, "internal", "+15550000009") // already there
	require.NoError(t, err)
	upload := "number,note\n" + // 1
		"+15550000001,a\n" + // 2
		"5550000002\n" + // 3
		"not a number\n" + // 4
		"+15550000001\n" + // 5: repeated
		"\n" + // 6
		"+15550000009\n" + // 7: already on the list
		"\"oops\n" // 8: unterminated quote
	scrub := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	rep, err := b.store.ImportDNC(b.ctx, "internal", strings.NewReader(upload), digitsNormalizer,
		postgres.DNCImportOptions{Scrub: true, ScrubAt: scrub, SortRows: sortRows})
	require.NoError(t, err)
	require.True(t, rep.Header)
	require.EqualValues(t, 6, rep.Rows)
	require.EqualValues(t, 4, rep.Valid)
	require.EqualValues(t, 2, rep.Added)
	require.EqualValues(t, 2, rep.Invalid)
	require.Len(t, rep.Errors, 2)
	require.EqualValues(t, 4, rep.Errors[0].Line)
	require.EqualValues(t, 8, rep.Errors[1].Line)
	require.EqualValues(t, 3, rep.Entries)
	require.True(t, rep.LastScrubAt.Equal(scrub))
	l := b.list(t, controller.DefaultTenant, "internal")
	require.EqualValues(t, 3, l.Entries)
	require.True(t, l.LastScrubAt.Equal(scrub))
	for _, n := range []string{"+15550000001", "+15550000002", "+15550000009"} {
		require.Len(t, b.hits(t, "", n), 1, n)
	}

	// Importing again changes nothing; without Scrub the scrub time stays.
	again, err := b.store.ImportDNC(b.ctx, "internal", strings.NewReader(upload), digitsNormalizer,
		postgres.DNCImportOptions{SortRows: sortRows})
	require.NoError(t, err)
	require.Zero(t, again.Added)
	require.EqualValues(t, 4, again.Valid)
	require.EqualValues(t, 3, again.Entries)
	require.True(t, again.LastScrubAt.Equal(scrub))

	// A Replace upload with bad rows is refused whole.
	_, err = b.store.ImportDNC(b.ctx, "internal", strings.NewReader("+15550000001\nbad\n+15550000003\n"), nil,
		postgres.DNCImportOptions{Replace: true, SortRows: sortRows})
	requireCode(t, controller.EINVALID, err)
	require.EqualValues(t, 3, b.list(t, "", "internal").Entries)

	// A clean Replace upload becomes the list.
	rep, err = b.store.ImportDNC(b.ctx, "internal", strings.NewReader("+15550000001\n+15550000003\n+15550000003\n"), nil,
		postgres.DNCImportOptions{Replace: true, Scrub: true, SortRows: sortRows})
	require.NoError(t, err)
	require.EqualValues(t, 1, rep.Added)
	require.EqualValues(t, 2, rep.Removed)
	require.EqualValues(t, 2, rep.Entries)
	require.WithinDuration(t, time.Now(), rep.LastScrubAt, time.Minute)
	require.Empty(t, b.hits(t, "", "+15550000009"))
	require.Len(t, b.hits(t, "", "+15550000003"), 1)

	// Into a fresh list, repeats in the upload count once.
	_, err = b.store.CreateDNCList(b.ctx, controller.DNCList{ID: "fresh", Name: "fresh", Kind: "other"})
	require.NoError(t, err)
	rep, err = b.store.ImportDNC(b.ctx, "fresh", strings.NewReader("+15550000003\n+15550000001\n+15550000003\n"), nil,
		postgres.DNCImportOptions{Replace: true, SortRows: sortRows})
	require.NoError(t, err)
	require.EqualValues(t, 2, rep.Added)
	require.EqualValues(t, 2, rep.Entries)
	require.Len(t, b.hits(t, "", "+15550000003"), 2)
}

// cancelingReader cancels the import's context once it has served after
// bytes, then keeps serving data, as a client still uploading would.
type cancelingReader struct {
	r      io.Reader
	after  int
	n      int
	cancel context.CancelFunc
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	if c.n >= c.after {
		c.cancel()
	}
	return n, err
}

func numbersCSV(from, n int) string {
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, "+1%010d\n", from+i)
	}
	return sb.String()
}

// TestImportDNCIsAllOrNothing: an import that fails half way — here its
// context is canceled while rows are still streaming — leaves the list as it
// was.
func TestImportDNCIsAllOrNothing(t *testing.T) {
	t.Parallel()
	for mode, sortRows := range importModes {
		t.Run(mode, func(t *testing.T) { testImportDNCIsAllOrNothing(t, sortRows) })
	}
}

func testImportDNCIsAllOrNothing(t *testing.T, sortRows int) {
	b := setup(t)
	_, err := b.store.CreateDNCList(b.ctx, controller.DNCList{ID: "n", Name: "n", Kind: "national"})
	require.NoError(t, err)
	_, err = b.store.ImportDNC(b.ctx, "n", strings.NewReader(numbersCSV(2000000000, 10)), nil, postgres.DNCImportOptions{})
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	upload := numbersCSV(3000000000, 200000)
	_, err = b.store.ImportDNC(ctx, "n", &cancelingReader{r: strings.NewReader(upload), after: len(upload) / 2, cancel: cancel},
		nil, postgres.DNCImportOptions{Scrub: true, SortRows: sortRows})
	require.ErrorIs(t, err, context.Canceled)

	l := b.list(t, "", "n")
	require.EqualValues(t, 10, l.Entries)
	require.True(t, l.LastScrubAt.IsZero())
	require.Empty(t, b.hits(t, "", "+13000000000"))
	var entries int64
	require.NoError(t, b.store.DB().Pool().QueryRow(b.ctx, `SELECT count(*) FROM dnc_index`).Scan(&entries))
	require.EqualValues(t, 10, entries)

	// A reading error mid-way does the same.
	boom := errors.New("client went away")
	_, err = b.store.ImportDNC(b.ctx, "n", io.MultiReader(strings.NewReader(numbersCSV(4000000000, 5000)), errReader{boom}),
		nil, postgres.DNCImportOptions{SortRows: sortRows})
	require.ErrorIs(t, err, boom)
	require.EqualValues(t, 10, b.list(t, "", "n").Entries)

	// So does a line too long to be a row.
	_, err = b.store.ImportDNC(b.ctx, "n", strings.NewReader("+15550000001\n"+strings.Repeat("1", postgres.MaxDNCLine+1)),
		nil, postgres.DNCImportOptions{SortRows: sortRows})
	requireCode(t, controller.EINVALID, err)
	require.EqualValues(t, 10, b.list(t, "", "n").Entries)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// TestImportDNCConcurrentEdits: single-number edits racing an import of the
// same list keep the entry count exact.
func TestImportDNCConcurrentEdits(t *testing.T) {
	t.Parallel()
	for mode, sortRows := range importModes {
		t.Run(mode, func(t *testing.T) { testImportDNCConcurrentEdits(t, sortRows) })
	}
}

func testImportDNCConcurrentEdits(t *testing.T, sortRows int) {
	b := setup(t)
	_, err := b.store.CreateDNCList(b.ctx, controller.DNCList{ID: "n", Name: "n", Kind: "internal"})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := b.store.ImportDNC(b.ctx, "n", strings.NewReader(numbersCSV(2000000000, 20000)), nil,
			postgres.DNCImportOptions{SortRows: sortRows})
		done <- err
	}()
	for i := range 50 {
		_, err := b.store.AddDNCNumber(b.ctx, "n", fmt.Sprintf("+1%010d", 2000000000+i*400)) // inside the upload
		require.NoError(t, err)
		_, err = b.store.AddDNCNumber(b.ctx, "n", fmt.Sprintf("+1%010d", 5000000000+i)) // outside
		require.NoError(t, err)
	}
	require.NoError(t, <-done)
	var entries int64
	require.NoError(t, b.store.DB().Pool().QueryRow(b.ctx, `SELECT count(*) FROM dnc_index`).Scan(&entries))
	require.EqualValues(t, 20050, entries)
	require.EqualValues(t, entries, b.list(t, "", "n").Entries)
}
