// Package redact is a slog handler that masks anything that looks like a
// phone number in every log record — message, string attributes, errors and
// other values — before the next handler formats it. callgate's code masks
// numbers where it logs them (controller.MaskNumber); this is the net under
// that: a number that slips into an error message or a library's log line is
// still written as ****1234.
package redact

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
)

// candidate finds digit runs that may be phone numbers: an optional +, then
// digits with one or two spaces, dots, dashes or parentheses between them.
var candidate = regexp.MustCompile(`\+?\(?\d(?:\d|[ .\-()]{1,2}\d)+`)

// isoDate matches the start of an ISO date, which is not a number to hide.
var isoDate = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}`)

// String masks every phone-number-like run in s: 7 to 15 digits, standing
// alone (not part of a word, a UUID, a time or a version), not an ISO date.
// The last four digits stay visible.
func String(s string) string {
	if !strings.ContainsAny(s, "0123456789") {
		return s
	}
	locs := candidate.FindAllStringIndex(s, -1)
	if locs == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, loc := range locs {
		lo, hi := loc[0], loc[1]
		run := s[lo:hi]
		digits := 0
		for i := 0; i < len(run); i++ {
			if run[i] >= '0' && run[i] <= '9' {
				digits++
			}
		}
		if digits < 7 || digits > 15 || isoDate.MatchString(run) || joined(s, lo, hi) {
			continue
		}
		b.WriteString(s[last:lo])
		d := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, run)
		b.WriteString("****" + d[len(d)-4:])
		last = hi
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// joined reports whether s[lo:hi] is glued to a word: a letter, digit,
// dash, colon or underscore right before or after it (a UUID group, a time,
// an identifier), which no written phone number is.
func joined(s string, lo, hi int) bool {
	glue := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == ':' || c == '_'
	}
	return lo > 0 && glue(s[lo-1]) || hi < len(s) && glue(s[hi])
}

// Handler masks records before next handles them.
type Handler struct{ next slog.Handler }

// New returns a Handler in front of next.
func New(next slog.Handler) *Handler { return &Handler{next: next} }

var _ slog.Handler = (*Handler)(nil)

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, String(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	masked := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		masked[i] = attr(a)
	}
	return &Handler{next: h.next.WithAttrs(masked)}
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler { return &Handler{next: h.next.WithGroup(name)} }

func attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, String(v.String()))
	case slog.KindGroup:
		g := v.Group()
		masked := make([]any, len(g))
		for i, x := range g {
			masked[i] = attr(x)
		}
		return slog.Group(a.Key, masked...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, String(x.Error()))
		case fmt.Stringer:
			return slog.String(a.Key, String(x.String()))
		case []byte:
			return slog.String(a.Key, String(string(x)))
		default:
			s := fmt.Sprint(x)
			if m := String(s); m != s {
				return slog.String(a.Key, m)
			}
			return slog.Attr{Key: a.Key, Value: v}
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
