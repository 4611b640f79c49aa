package dialer

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
)

// Bounds on a lead CSV: what one row may hold.
const (
	maxLeadColumns = 200
	maxLeadField   = 1024
	maxLeadName    = 200
)

// leadKey is the form of tag and custom field names.
var leadKey = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$`)

// leadColumn says what a CSV column holds.
type leadColumn struct {
	kind byte // 'p' phone, 'n' name, 'z' time zone, 't' tag, 'f' field
	key  string
}

// LeadReader reads leads from a CSV upload, a row at a time. The header
// names the columns: phone (or number, phone_number) is required; name and
// time_zone (or tz) are optional; "tag:<key>" columns, and those named in
// the tag columns option, are tags; every other column is a custom field.
// Names are case-insensitive, tags and fields keep their key's case.
type LeadReader struct {
	r       *csv.Reader
	cols    []leadColumn
	region  string
	zones   map[string]bool
	zonesMu sync.Mutex
}

// NewLeadReader reads the header of a lead CSV. Returns EINVALID on field
// "csv" for a missing or bad header, or unknown options.
func NewLeadReader(r io.Reader, defaultRegion string, tagColumns []string) (*LeadReader, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	head, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, controller.FieldError("csv", "the upload is empty: a header row naming a phone column is needed")
	}
	if err != nil {
		return nil, controller.FieldError("csv", "reading the header: %v", err)
	}
	if strings.TrimSpace(defaultRegion) != "" && !compliance.KnownRegion(defaultRegion) {
		return nil, controller.FieldError("default_region", "unknown region %q", defaultRegion)
	}
	tagSet := map[string]bool{}
	for _, t := range tagColumns {
		if !leadKey.MatchString(t) {
			return nil, controller.FieldError("tag_columns", "%q is not a column name (letters, digits, '_', '.', '-')", t)
		}
		tagSet[strings.ToLower(t)] = true
	}
	if len(head) > maxLeadColumns {
		return nil, controller.FieldError("csv", "the header has %d columns, more than %d", len(head), maxLeadColumns)
	}
	lr := &LeadReader{r: cr, region: defaultRegion, zones: map[string]bool{}}
	seen := map[string]bool{}
	phone := false
	for i, h := range head {
		name := strings.TrimSpace(h)
		if i == 0 {
			name = strings.TrimPrefix(name, "\ufeff") // a spreadsheet's byte-order mark
		}
		lower := strings.ToLower(name)
		var c leadColumn
		switch {
		case lower == "phone" || lower == "number" || lower == "phone_number":
			c, phone = leadColumn{kind: 'p'}, true
		case lower == "name":
			c = leadColumn{kind: 'n'}
		case lower == "time_zone" || lower == "tz":
			c = leadColumn{kind: 'z'}
		case strings.HasPrefix(lower, "tag:"):
			c = leadColumn{kind: 't', key: strings.TrimSpace(name[4:])}
		case tagSet[lower]:
			c = leadColumn{kind: 't', key: name}
		default:
			c = leadColumn{kind: 'f', key: name}
		}
		if (c.kind == 't' || c.kind == 'f') && !leadKey.MatchString(c.key) {
			return nil, controller.FieldError("csv", "column %d: %q is not a column name (letters, digits, '_', '.', '-')", i+1, name)
		}
		id := string(c.kind) + strings.ToLower(c.key)
		if c.kind == 'p' || c.kind == 'n' || c.kind == 'z' {
			id = string(c.kind)
		}
		if seen[id] {
			return nil, controller.FieldError("csv", "column %d (%q) repeats another column", i+1, name)
		}
		seen[id] = true
		lr.cols = append(lr.cols, c)
	}
	if !phone {
		return nil, controller.FieldError("csv", "the header has no phone column (phone, number or phone_number)")
	}
	return lr, nil
}

// Next returns the next row: a lead, or a reject saying why the row was
// not taken (never with the full number). It returns io.EOF at the end and
// an EINVALID error for a CSV that cannot be read further.
func (lr *LeadReader) Next() (controller.Lead, *controller.LeadReject, error) {
	rec, line, err := lr.record()
	if err != nil {
		return controller.Lead{}, nil, err
	}
	l, rej := lr.check(rec, line)
	return l, rej, nil
}

// record reads the next CSV record (valid until the next call: the reader
// reuses it) and its line.
func (lr *LeadReader) record() ([]string, int, error) {
	rec, err := lr.r.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, 0, io.EOF
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) && !errors.Is(pe.Err, csv.ErrFieldCount) {
			return nil, 0, controller.FieldError("csv", "line %d: %v", pe.Line, pe.Err)
		}
		return nil, 0, controller.FieldError("csv", "reading: %v", err)
	}
	line, _ := lr.r.FieldPos(0)
	return rec, line, nil
}

// check turns a record into a lead or a reject. It is safe to call from
// several goroutines at once.
func (lr *LeadReader) check(rec []string, line int) (controller.Lead, *controller.LeadReject) {
	reject := func(format string, args ...any) (controller.Lead, *controller.LeadReject) {
		return controller.Lead{}, &controller.LeadReject{Line: line, Reason: fmt.Sprintf(format, args...)}
	}
	if len(rec) != len(lr.cols) {
		return reject("has %d fields, the header %d", len(rec), len(lr.cols))
	}
	var l controller.Lead
	for i, v := range rec {
		c := lr.cols[i]
		if len(v) > maxLeadField {
			return reject("column %d is longer than %d bytes", i+1, maxLeadField)
		}
		if !utf8.ValidString(v) || strings.ContainsFunc(v, isControl) {
			return reject("column %d holds control characters or invalid UTF-8", i+1)
		}
		v = strings.TrimSpace(v)
		switch c.kind {
		case 'p':
			e164, err := compliance.NormalizeNumber(v, lr.region)
			if err != nil {
				return reject("phone: %s", controller.ErrorMessage(err))
			}
			l.Phone = e164
		case 'n':
			if len(v) > maxLeadName {
				return reject("name is longer than %d bytes", maxLeadName)
			}
			l.Name = v
		case 'z':
			if v != "" && !lr.knownZone(v) {
				return reject("time_zone %q is not an IANA time zone", v)
			}
			l.TimeZone = v
		case 't', 'f':
			if v == "" {
				continue
			}
			m := &l.Fields
			if c.kind == 't' {
				m = &l.Tags
			}
			if *m == nil {
				*m = make(map[string]string, 4)
			}
			(*m)[c.key] = v
		}
	}
	return l, nil
}

// leadRow is a checked row of a chunk: a lead or a reject.
type leadRow struct {
	lead controller.Lead
	rej  *controller.LeadReject
}

// readChunk reads up to n records and checks them on workers goroutines,
// returning the rows in file order. err is io.EOF after the last record,
// or the reading error; the rows read before it are returned with it.
func (lr *LeadReader) readChunk(n, workers int) ([]leadRow, error) {
	type rec struct {
		fields []string
		line   int
	}
	recs := make([]rec, 0, n)
	var err error
	for len(recs) < n {
		var fields []string
		var line int
		fields, line, err = lr.record()
		if err != nil {
			break
		}
		recs = append(recs, rec{slices.Clone(fields), line})
	}
	rows := make([]leadRow, len(recs))
	var wg sync.WaitGroup
	per := (len(recs) + workers - 1) / max(workers, 1)
	for start := 0; start < len(recs); start += per {
		end := min(start+per, len(recs))
		wg.Go(func() {
			for i := start; i < end; i++ {
				rows[i].lead, rows[i].rej = lr.check(recs[i].fields, recs[i].line)
			}
		})
	}
	wg.Wait()
	return rows, err
}

func isControl(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }

// knownZone reports whether z names an IANA zone, caching the answer.
func (lr *LeadReader) knownZone(z string) bool {
	lr.zonesMu.Lock()
	defer lr.zonesMu.Unlock()
	ok, seen := lr.zones[z]
	if !seen {
		_, err := time.LoadLocation(z)
		ok = err == nil && z != "Local"
		if len(lr.zones) < 1000 {
			lr.zones[z] = ok
		}
	}
	return ok
}
