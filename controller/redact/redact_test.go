package redact_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller/redact"
)

func TestString(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"call to +12125551001 failed":                  "call to ****1001 failed",
		"dial 212-555-1001 or (212) 555.1002":          "dial ****1001 or ****1002",
		"+86 138 0013 8000":                            "****8000",
		"number 4155550123, then +4420 7946 0958":      "number ****0123, then ****0958",
		"call_id 50b976a2-5e58-4f1a-bbe1-076655440000": "call_id 50b976a2-5e58-4f1a-bbe1-076655440000",
		"at 2026-11-21 11:12:04.357 took 1500 ms":      "at 2026-11-21 11:12:04.357 took 1500 ms",
		"attempt 12345678 of ****1234":                 "attempt ****5678 of ****1234",
		"version v1.10.12, port 8021, 44 bytes":        "version v1.10.12, port 8021, 44 bytes",
		"job_kill abc123456789":                        "job_kill abc123456789",
		"recording_9876543210.wav":                     "recording_9876543210.wav",
		"no digits at all":                             "no digits at all",
		"1234567890123456 is too long for E.164 (16)":  "1234567890123456 is too long for E.164 (16)",
	} {
		require.Equal(t, want, redact.String(in), in)
	}
}

func TestHandlerMasksEverything(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(redact.New(slog.NewJSONHandler(&buf, nil))).With("to", "+12125551001")
	log.WithGroup("g").Info("calling +12125551002",
		"err", errors.New("switch refused +12125551003"),
		"nested", slog.GroupValue(slog.String("from", "+12125551004")),
		"count", 3,
		"list", []string{"+12125551005"},
	)
	out := buf.String()
	for _, n := range []string{"2125551001", "2125551002", "2125551003", "2125551004", "2125551005"} {
		require.False(t, strings.Contains(out, n), "%s leaked: %s", n, out)
	}
	require.Contains(t, out, `"count":3`)
	require.Contains(t, out, "****1003")
}

// FuzzString: masking never panics, is idempotent and never lengthens a
// line by more than the masks it adds.
func FuzzString(f *testing.F) {
	for _, s := range []string{"+12125551001", "(212) 555.1002", "2026-11-21", "a1234567b", "+", "((((1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m := redact.String(s)
		if redact.String(m) != m {
			t.Fatalf("not idempotent: %q → %q → %q", s, m, redact.String(m))
		}
		if len(m) > len(s)+4 {
			t.Fatalf("grew: %q → %q", s, m)
		}
	})
}
