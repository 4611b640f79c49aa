package api

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/callgate/callgate/controller"
)

// exportTracePath is the regulator traceability export (DESIGN 1.2): per
// call, its source, the number called and presented, the compliance
// decisions, consents and recordings. Admin only, audited, full numbers.
const exportTracePath = "/v1/exports/trace"

// exportFlushEvery is how many rows are written between flushes: the
// export streams as it is read, never held whole in memory.
const exportFlushEvery = 100

var (
	errNoExports = controller.Errorf(controller.EUNAVAILABLE, "the traceability export is not available")
	// errExportUnaudited: an export that could not be audited is not served.
	errExportUnaudited = controller.Errorf(controller.EUNAVAILABLE, "exports are audited and the audit log is not available")
)

// SetTraceExporter connects the traceability export (nil: the route
// answers 503). Call it before serving.
func (s *Server) SetTraceExporter(t controller.TraceExporter) { s.traces = t }

// traceColumns is the CSV header of the export.
var traceColumns = []string{"call_id", "tenant_id", "source", "created_at", "ended_at", "to", "caller_id",
	"purpose", "state", "hangup_cause", "decision_allow", "decision_reasons", "decision_policy",
	"dial_decision_allow", "dial_decision_reasons", "consent_ids", "recording_ids"}

// traceFormats are the ?format= values with their media types.
var traceFormats = map[string]string{
	"csv":    "text/csv; charset=utf-8",
	"json":   echo.MIMEApplicationJSON,
	"ndjson": "application/x-ndjson",
}

// exportTrace streams the traceability rows of the tenant's calls created
// in [?from, ?to) (RFC 3339), oldest first, as ?format=csv (default), json
// (one array) or ndjson (one object a line), as an attachment. The status
// is sent with the first row, so a failure before it is an ordinary error
// response; a failure after it cuts the body short (and is audited as an
// error).
func (s *Server) exportTrace(c echo.Context) error {
	q := c.QueryParams()
	if err := checkQuery(q, "from", "to", "format"); err != nil {
		return err
	}
	from, err := queryTime(q, "from")
	if err != nil {
		return err
	}
	to, err := queryTime(q, "to")
	if err != nil {
		return err
	}
	switch {
	case from.IsZero():
		return controller.FieldError("from", "is required: an RFC 3339 timestamp")
	case to.IsZero():
		return controller.FieldError("to", "is required: an RFC 3339 timestamp")
	case !from.Before(to):
		return controller.FieldError("to", "must be later than from")
	}
	format := q.Get("format")
	if format == "" {
		format = "csv"
	}
	mediaType, ok := traceFormats[format]
	if !ok {
		return controller.FieldError("format", "must be csv, json or ndjson")
	}
	if s.traces == nil {
		return errNoExports
	}
	if s.auditLog == nil {
		return errExportUnaudited
	}

	w := &traceWriter{c: c, format: format, mediaType: mediaType,
		filename: fmt.Sprintf("trace-%s-%s.%s", from.UTC().Format("20060102T150405Z"), to.UTC().Format("20060102T150405Z"), format)}
	c.Set(ctxKeyAuditAction, "export.trace")
	period := fmt.Sprintf("period %s/%s; format %s", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), format)
	c.Set(ctxKeyAuditDetail, period)
	err = s.traces.ExportTrace(c.Request().Context(), tenant(c), from, to, w.row)
	c.Set(ctxKeyAuditDetail, period+"; "+strconv.Itoa(w.rows)+" rows")
	if err != nil {
		if w.started {
			s.requestLogger(c).Error("traceability export cut short", "rows", w.rows, "err", redact(err.Error()))
		}
		return fmt.Errorf("exporting traces: %w", err)
	}
	return w.finish()
}

// traceWriter writes export rows as they come, sending the status and the
// format's opening with the first.
type traceWriter struct {
	c                 echo.Context
	format, mediaType string
	filename          string
	started           bool
	rows              int
	csv               *csv.Writer
}

// start sends the status, headers and the format's opening.
func (w *traceWriter) start() error {
	w.started = true
	res := w.c.Response()
	h := res.Header()
	h.Set(echo.HeaderContentType, w.mediaType)
	h.Set("Content-Disposition", `attachment; filename="`+w.filename+`"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	res.WriteHeader(http.StatusOK)
	switch w.format {
	case "csv":
		w.csv = csv.NewWriter(res)
		return w.csv.Write(traceColumns)
	case "json":
		_, err := res.Write([]byte("[\n"))
		return err
	}
	return nil
}

// row writes one row, flushing every exportFlushEvery rows.
func (w *traceWriter) row(r controller.TraceRow) error {
	if !w.started {
		if err := w.start(); err != nil {
			return err
		}
	}
	res := w.c.Response()
	var err error
	switch w.format {
	case "csv":
		err = w.csv.Write(traceRecord(r))
	default:
		r.ConsentIDs, r.RecordingIDs = orEmpty(r.ConsentIDs), orEmpty(r.RecordingIDs)
		var b []byte
		if b, err = json.Marshal(r); err != nil {
			return fmt.Errorf("encoding call %s: %w", r.CallID, err)
		}
		if w.format == "json" && w.rows > 0 {
			b = append([]byte(",\n"), b...)
		} else if w.format == "ndjson" {
			b = append(b, '\n')
		}
		_, err = res.Write(b)
	}
	if err != nil {
		return err
	}
	w.rows++
	if w.rows%exportFlushEvery == 0 {
		return w.flush()
	}
	return nil
}

// finish closes the format (an export of no calls is a header row, [] or
// an empty body) and flushes.
func (w *traceWriter) finish() error {
	if !w.started {
		if err := w.start(); err != nil {
			return err
		}
	}
	if w.format == "json" {
		if _, err := w.c.Response().Write([]byte("\n]\n")); err != nil {
			return err
		}
	}
	return w.flush()
}

func (w *traceWriter) flush() error {
	if w.csv != nil {
		w.csv.Flush()
		if err := w.csv.Error(); err != nil {
			return err
		}
	}
	// A writer that cannot flush (a wrapper without Unwrap) still gets
	// every byte, only later.
	if err := http.NewResponseController(w.c.Response().Writer).Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// traceRecord is one CSV row, in traceColumns' order. Times are RFC 3339
// in UTC; lists are space separated. No column holds free text a client
// typed (numbers are E.164, the rest codes and IDs), so no cell can start a
// spreadsheet formula.
func traceRecord(r controller.TraceRow) []string {
	t := func(v *time.Time) string {
		if v == nil {
			return ""
		}
		return v.UTC().Format(time.RFC3339Nano)
	}
	allow := func(d *controller.Decision) string {
		if d == nil {
			return ""
		}
		return strconv.FormatBool(d.Allow)
	}
	reasons := func(d *controller.Decision) string {
		if d == nil {
			return ""
		}
		return strings.Join(d.Reasons, " ")
	}
	policy := ""
	if d := r.Decision; d != nil && d.PolicyID != "" {
		policy = d.PolicyID + "@" + strconv.Itoa(d.PolicyVersion)
	}
	return []string{string(r.CallID), r.TenantID, r.Source, t(&r.CreatedAt), t(r.EndedAt), r.To, r.CallerID,
		r.Purpose, string(r.State), r.HangupCause, allow(r.Decision), reasons(r.Decision), policy,
		allow(r.DialDecision), reasons(r.DialDecision), strings.Join(r.ConsentIDs, " "), strings.Join(r.RecordingIDs, " ")}
}
