package postgres

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/callgate/callgate/controller"
)

// DNCRowError is a row of a do-not-call upload that was not loaded.
type DNCRowError = controller.DNCRowError

// Limits of a do-not-call upload.
const (
	// DefaultMaxRowErrors is how many bad rows a report lists by default.
	DefaultMaxRowErrors = 1000
	// MaxDNCLine is the longest line an upload may hold, in bytes.
	MaxDNCLine = 4096
	// maxRowErrorText caps the text of one row error.
	maxRowErrorText = 200
)

// dncReader reads the numbers of an uploaded do-not-call CSV: the number is
// the first column (further columns are ignored), an optional header row is
// skipped, and each number goes through normalize and must come out E.164.
// Rows that are malformed or fail normalisation are counted and the first
// maxErrors of them kept with their line numbers; the good ones are returned
// by next as integers (see e164Digits). It touches no database, so it can be
// fuzzed on its own.
type dncReader struct {
	csv       *csv.Reader
	src       *lineLimiter
	normalize func(string) (string, error)
	maxErrors int

	started bool  // a record has been read: no header can follow
	header  bool  // the first record was a header and was skipped
	rows    int64 // data rows read: good and bad, not the header
	valid   int64 // rows holding a valid number
	invalid int64 // rows that were not loaded
	errors  []DNCRowError
	err     error // what stopped the reading before the end, if anything
}

// newDNCReader reads from r. A nil normalize accepts only numbers already
// written in E.164; maxErrors < 1 means DefaultMaxRowErrors.
func newDNCReader(r io.Reader, normalize func(string) (string, error), maxErrors int) *dncReader {
	if normalize == nil {
		normalize = func(s string) (string, error) { return s, nil }
	}
	if maxErrors < 1 {
		maxErrors = DefaultMaxRowErrors
	}
	src := &lineLimiter{r: r, max: MaxDNCLine}
	c := csv.NewReader(src)
	c.FieldsPerRecord = -1
	c.ReuseRecord = true
	return &dncReader{csv: c, src: src, normalize: normalize, maxErrors: maxErrors}
}

// next returns the next good number, and false at the end of the input or
// when reading failed (see err).
func (r *dncReader) next() (int64, bool) {
	for r.err == nil {
		rec, err := r.csv.Read()
		var pe *csv.ParseError
		switch {
		case err == io.EOF:
			return 0, false
		case errors.As(err, &pe) && r.src.err == nil:
			r.started = true
			r.rows++
			r.reject(int64(pe.StartLine), "malformed CSV: "+pe.Err.Error())
			continue
		case err != nil:
			if r.src.err != nil {
				err = r.src.err // bufio may have handed the error to csv only once
			}
			r.err = err
			return 0, false
		}
		line, _ := r.csv.FieldPos(0)
		field := strings.TrimSpace(rec[0])
		first := !r.started
		r.started = true
		if first {
			field = strings.TrimSpace(strings.TrimPrefix(field, "\uFEFF")) // a byte order mark
		}
		v, problem := r.parse(field)
		if problem == "" {
			r.rows++
			r.valid++
			return v, true
		}
		if first && !strings.ContainsAny(field, "0123456789") {
			r.header = true // e.g. "number,name"
			continue
		}
		r.rows++
		r.reject(int64(line), problem)
	}
	return 0, false
}

// parse normalises one field and returns its digits, or what is wrong.
func (r *dncReader) parse(field string) (int64, string) {
	if field == "" {
		return 0, "empty number"
	}
	n, err := r.normalize(field)
	if err != nil {
		return 0, "invalid number: " + err.Error()
	}
	v, ok := e164Digits(n)
	if !ok {
		return 0, "normalised number is not E.164"
	}
	return v, ""
}

func (r *dncReader) reject(line int64, problem string) {
	r.invalid++
	if len(r.errors) < r.maxErrors {
		r.errors = append(r.errors, DNCRowError{Line: line, Error: clip(problem, maxRowErrorText)})
	}
}

// clip cuts s to at most n bytes on a rune boundary and makes it valid UTF-8.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// errLineTooLong is returned by lineLimiter.
var errLineTooLong = controller.Errorf(controller.EINVALID, "line too long")

// lineLimiter passes reads through and fails, for good, once a line is
// longer than max bytes, so that one huge line cannot exhaust memory.
type lineLimiter struct {
	r    io.Reader
	max  int
	run  int   // bytes since the last newline
	line int64 // newlines seen
	err  error
}

func (l *lineLimiter) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(p)
	for b := p[:n]; ; {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			l.run += len(b)
			break
		}
		if l.run+i > l.max {
			l.run += i
			break
		}
		l.run = 0
		l.line++
		b = b[i+1:]
	}
	if l.run > l.max {
		l.err = fmt.Errorf("line %d is longer than %d bytes: %w", l.line+1, l.max, errLineTooLong)
		return 0, l.err
	}
	if err != nil && err != io.EOF {
		l.err = err
	}
	return n, err
}
