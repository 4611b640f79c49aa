package postgres

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

// digitsNormalizer accepts E.164, or bare digits to which it adds "+1": a
// trivial stand-in for the compliance package's normaliser.
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

type readResult struct {
	numbers []string
	r       *dncReader
}

func readAll(in io.Reader, normalize func(string) (string, error), maxErrors int) readResult {
	r := newDNCReader(in, normalize, maxErrors)
	var res readResult
	for {
		v, ok := r.next()
		if !ok {
			break
		}
		res.numbers = append(res.numbers, digitsE164(v))
	}
	res.r = r
	return res
}

func TestDNCReader(t *testing.T) {
	in := "\uFEFFnumber,name\n" + // 1: header, with a byte order mark
		"+15550000001,Ann\n" + // 2
		"5550000002\n" + // 3: digits, normalised
		"\n" + // 4: blank, skipped
		"  +15550000003  ,x,y,z\n" + // 5: spaces trimmed, extra columns ignored
		"call me\n" + // 6: bad
		",Bob\n" + // 7: empty number
		"\"+1555\"0000004\"\n" + // 8: bad quoting
		"\"+15550000005\"\n" + // 9: quoted
		"\"5550000006\r\n\",multi\n" + // 10-11: a quoted field over two lines; the line break is trimmed
		"+0123\r\n" + // 12: not E.164 after normalising
		"+15550000001\n" // 13: duplicate: loaded, deduplicated by the store
	res := readAll(strings.NewReader(in), digitsNormalizer, 0)
	require.NoError(t, res.r.err)
	require.True(t, res.r.header)
	require.Equal(t, []string{"+15550000001", "+15550000002", "+15550000003", "+15550000005",
		"+15550000006", "+15550000001"}, res.numbers)
	require.EqualValues(t, 10, res.r.rows)
	require.EqualValues(t, 6, res.r.valid)
	require.EqualValues(t, 4, res.r.invalid)
	lines := []int64{}
	for _, e := range res.r.errors {
		lines = append(lines, e.Line)
	}
	require.Equal(t, []int64{6, 7, 8, 12}, lines)
	require.Contains(t, res.r.errors[0].Error, "not a phone number")
	require.Equal(t, "empty number", res.r.errors[1].Error)
	require.Contains(t, res.r.errors[2].Error, "malformed CSV")
	require.Equal(t, "normalised number is not E.164", res.r.errors[3].Error)
}

func TestDNCReaderHeaderOnlyFirst(t *testing.T) {
	// A header is recognised only on the first row, and only without digits.
	res := readAll(strings.NewReader("+15550000001\nphone\n"), nil, 0)
	require.False(t, res.r.header)
	require.EqualValues(t, 1, res.r.invalid)
	res = readAll(strings.NewReader("phone1\n+15550000001\n"), nil, 0)
	require.False(t, res.r.header)
	require.EqualValues(t, 1, res.r.invalid)
	require.Equal(t, []string{"+15550000001"}, res.numbers)
	// Without a normaliser only E.164 passes.
	res = readAll(strings.NewReader("5550000001\n"), nil, 0)
	require.EqualValues(t, 1, res.r.invalid)
}

func TestDNCReaderCapsErrors(t *testing.T) {
	var in strings.Builder
	for range 2500 {
		in.WriteString("bad1\n")
	}
	res := readAll(strings.NewReader(in.String()), nil, 0)
	require.EqualValues(t, 2500, res.r.invalid)
	require.Len(t, res.r.errors, DefaultMaxRowErrors)
	require.EqualValues(t, 1000, res.r.errors[999].Line)
	res = readAll(strings.NewReader(in.String()), nil, 3)
	require.Len(t, res.r.errors, 3)
}

func TestDNCReaderLineTooLong(t *testing.T) {
	in := "+15550000001\n" + strings.Repeat("9", MaxDNCLine+1) + "\n+15550000002\n"
	res := readAll(strings.NewReader(in), nil, 0)
	require.ErrorIs(t, res.r.err, errLineTooLong)
	require.Equal(t, controller.EINVALID, controller.ErrorCode(res.r.err))
	require.Contains(t, res.r.err.Error(), "line 2 ")
	// Exactly MaxDNCLine bytes is fine.
	in = strings.Repeat(" ", MaxDNCLine-12) + "+15550000001\n"
	res = readAll(strings.NewReader(in), nil, 0)
	require.NoError(t, res.r.err)
	require.Len(t, res.numbers, 1)
}

type failingReader struct {
	data string
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.data == "" {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestDNCReaderStopsOnReadError(t *testing.T) {
	boom := errors.New("connection reset")
	res := readAll(&failingReader{data: "+15550000001\n\"+1555", err: boom}, nil, 0)
	require.ErrorIs(t, res.r.err, boom)
	require.Equal(t, []string{"+15550000001"}, res.numbers)
}

func TestE164Digits(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"+15551234567", true}, {"+12", true}, {"+123456789012345", true},
		{"+1234567890123456", false}, {"+1", false}, {"+0123", false}, {"15551234567", false},
		{"+1555123456a", false}, {"", false}, {"+", false}, {"+ 1555", false}, {"++15", false},
	} {
		v, ok := e164Digits(tc.in)
		require.Equal(t, tc.ok, ok, tc.in)
		if ok {
			require.Equal(t, tc.in, digitsE164(v))
		}
	}
}

// FuzzImportCSV feeds arbitrary bytes to the upload reader with a trivial
// normaliser: it never panics, every number it returns is E.164, every
// reported line lies within the input, and the counts add up.
func FuzzImportCSV(f *testing.F) {
	for _, seed := range []string{
		"number\n+15550000001\n5550000002\n",
		"\uFEFF\"+15550000001\",a\r\n\"bad\"\"\",b\n",
		"\"unterminated\n+15550000001\n",
		"a,b,c\n\n\n+4930123456\n+0\n",
		"+15550000001",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := int64(bytes.Count(data, []byte("\n"))) + 1
		res := readAll(bytes.NewReader(data), digitsNormalizer, 50)
		r := res.r
		if r.err != nil && !errors.Is(r.err, errLineTooLong) {
			t.Fatalf("unexpected error: %v", r.err)
		}
		for _, n := range res.numbers {
			if _, ok := e164Digits(n); !ok {
				t.Fatalf("returned %q, not E.164", n)
			}
		}
		if r.valid != int64(len(res.numbers)) || r.rows != r.valid+r.invalid {
			t.Fatalf("counts: rows %d, valid %d, invalid %d, returned %d", r.rows, r.valid, r.invalid, len(res.numbers))
		}
		if int64(len(r.errors)) != min(r.invalid, 50) {
			t.Fatalf("%d errors listed for %d invalid rows", len(r.errors), r.invalid)
		}
		prev := int64(0)
		for _, e := range r.errors {
			if e.Line < 1 || e.Line > lines || e.Line < prev {
				t.Fatalf("line %d out of range 1..%d or out of order (after %d)", e.Line, lines, prev)
			}
			if !utf8.ValidString(e.Error) || len(e.Error) > maxRowErrorText+len("…") {
				t.Fatalf("bad error text %q", e.Error)
			}
			prev = e.Line
		}
	})
}

// BenchmarkDNCReader measures parsing an upload alone, without a database.
func BenchmarkDNCReader(b *testing.B) {
	var buf bytes.Buffer
	for i := range 100_000 {
		buf.WriteString("+1")
		buf.WriteString(strconv.Itoa(2000000000 + i*37))
		buf.WriteByte('\n')
	}
	upload := buf.Bytes()
	b.SetBytes(int64(len(upload)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := newDNCReader(bytes.NewReader(upload), nil, 0)
		n := 0
		for _, ok := r.next(); ok; _, ok = r.next() {
			n++
		}
		if n != 100_000 {
			b.Fatalf("read %d numbers", n)
		}
	}
	b.ReportMetric(float64(100_000)*float64(b.N)/b.Elapsed().Seconds(), "numbers/s")
}
