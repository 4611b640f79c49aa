package api

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/callgate/callgate/controller"
)

// leadImportPath is the route of a lead CSV upload: it has its own body
// limit and the upload timeout.
const leadImportPath = "/v1/lead-lists/:id/imports"

// The forms of a lead upload's options (controller/dialer checks the same;
// they are checked here before a large body is read).
var (
	regionRE     = regexp.MustCompile(`^[A-Za-z]{2}$`)
	leadColumnRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$`)
)

// maxTagColumns bounds ?tag_columns= (a CSV has at most 200 columns).
const maxTagColumns = 200

var errEmptyLeadCSV = controller.FieldError("csv", "the upload is empty: a header row naming a phone column is needed")

// limitLeadImport is limitBody with MaxLeadImportBytes.
func (s *Server) limitLeadImport(next echo.HandlerFunc) echo.HandlerFunc {
	return limitTo(s.cfg.MaxLeadImportBytes, next)
}

// createLeadList creates an empty list of the tenant: 201 with it.
func (s *Server) createLeadList(c echo.Context) error {
	cs, err := s.campaignCall(c)
	if err != nil {
		return err
	}
	obj, err := readObject(c, false, "name")
	if err != nil {
		return err
	}
	var name string
	if err := obj.str("name", &name); err != nil {
		return err
	}
	if name == "" {
		return controller.FieldError("name", "is required")
	}
	out, err := cs.CreateLeadList(c.Request().Context(), tenant(c), name)
	if err != nil {
		return err
	}
	c.Set(ctxKeyAuditDetail, "lead list "+out.ID)
	c.Response().Header().Set(echo.HeaderLocation, "/v1/lead-lists/"+url.PathEscape(out.ID))
	return c.JSON(http.StatusCreated, out)
}

// getLeadList returns a list with its lead count.
func (s *Server) getLeadList(c echo.Context) error {
	cs, id, err := s.campaignCallOn(c, "lead list")
	if err != nil {
		return err
	}
	out, err := cs.LeadList(c.Request().Context(), tenant(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// getLeadImport returns an import's progress, or its result once done.
func (s *Server) getLeadImport(c echo.Context) error {
	cs, id, err := s.campaignCallOn(c, "lead import")
	if err != nil {
		return err
	}
	out, err := cs.LeadImport(c.Request().Context(), tenant(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewOf(c).leadImport(out))
}

// importLeads takes a text/csv upload into a list: the body is written to
// a file in UploadDir, then the service imports it in the background. 202
// with the import and its Location, GET /v1/lead-imports/{id}. Options:
// ?default_region= (ISO 3166 alpha-2) for numbers without a +, and
// ?tag_columns= (comma-separated) for columns that are tags.
//
// The file is removed when the service closes it (the import has read it)
// or, if the import does not start, before the answer.
func (s *Server) importLeads(c echo.Context) error {
	cs, listID, err := s.campaignCallOn(c, "lead list", "default_region", "tag_columns")
	if err != nil {
		return err
	}
	opts, err := leadCSVOptions(c.QueryParams())
	if err != nil {
		return err
	}
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if err != nil || mt != "text/csv" {
		return &controller.Error{Code: codeUnsupportedMediaType, Field: "Content-Type", Message: "the upload must be text/csv"}
	}
	ctx := c.Request().Context()
	// A missing list is answered before a large body is read.
	if _, err := cs.LeadList(ctx, tenant(c), listID); err != nil {
		return err
	}
	up, err := spool(s.cfg.UploadDir, c.Request().Body)
	if err != nil {
		return err
	}
	opts.Open = up.open
	im, err := cs.ImportLeads(ctx, tenant(c), listID, opts)
	if err != nil {
		if rerr := up.Close(); rerr != nil {
			s.requestLogger(c).Warn("removing a lead upload", "err", rerr)
		}
		return err
	}
	c.Set(ctxKeyAuditDetail, "import "+im.ID+"; "+strconv.FormatInt(up.size, 10)+" bytes")
	c.Response().Header().Set(echo.HeaderLocation, "/v1/lead-imports/"+url.PathEscape(im.ID))
	return c.JSON(http.StatusAccepted, viewOf(c).leadImport(im))
}

// leadCSVOptions reads ?default_region= and ?tag_columns=; empty values are
// absent.
func leadCSVOptions(q url.Values) (controller.LeadCSV, error) {
	var opts controller.LeadCSV
	if v := q.Get("default_region"); v != "" {
		if !regionRE.MatchString(v) {
			return opts, controller.FieldError("default_region", "must be an ISO 3166 alpha-2 region code such as US")
		}
		opts.DefaultRegion = strings.ToUpper(v)
	}
	if v := q.Get("tag_columns"); v != "" {
		cols := strings.Split(v, ",")
		if len(cols) > maxTagColumns {
			return opts, controller.FieldError("tag_columns", "names more than %d columns", maxTagColumns)
		}
		for _, col := range cols {
			col = strings.TrimSpace(col)
			if !leadColumnRE.MatchString(col) {
				return opts, controller.FieldError("tag_columns",
					"must be comma-separated column names, each 1 to 63 letters, digits, '_', '.' or '-' (not first)")
			}
			opts.TagColumns = append(opts.TagColumns, col)
		}
	}
	return opts, nil
}

// spooledUpload is an upload written to a temporary file. The import reads
// it once, from the start, through what open returns; closing that (or the
// upload itself) closes and removes the file, once.
type spooledUpload struct {
	f      *os.File
	size   int64
	mu     sync.Mutex
	opened bool
	closed sync.Once
	err    error
}

// spool writes body to a new file in dir (os.TempDir() when empty).
// Returns *http.MaxBytesError past the body limit, EINVALID for an empty or
// unreadable body; the file is removed on any failure.
func spool(dir string, body io.Reader) (*spooledUpload, error) {
	if body == nil {
		return nil, errEmptyLeadCSV
	}
	f, err := os.CreateTemp(dir, "callgate-leads-*.csv")
	if err != nil {
		return nil, fmt.Errorf("spooling a lead upload: %w", err)
	}
	up := &spooledUpload{f: f}
	up.size, err = io.Copy(f, body)
	if err == nil && up.size == 0 {
		err = errEmptyLeadCSV
	}
	if err != nil {
		_ = up.Close()
		var (
			tooBig  *http.MaxBytesError
			pathErr *fs.PathError
		)
		switch {
		case errors.As(err, &tooBig), errors.Is(err, errEmptyLeadCSV):
			return nil, err
		case errors.As(err, &pathErr): // writing the file, not reading the request
			return nil, fmt.Errorf("spooling a lead upload: %w", err)
		}
		return nil, controller.Errorf(controller.EINVALID, "reading the upload: %v", err)
	}
	return up, nil
}

// open is the upload's controller.LeadCSV.Open: the file from its start.
// A second call is an error: the import reads the upload once.
func (up *spooledUpload) open() (io.ReadCloser, error) {
	up.mu.Lock()
	defer up.mu.Unlock()
	if up.opened {
		return nil, errors.New("the lead upload was opened already")
	}
	up.opened = true
	if _, err := up.f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewinding the lead upload: %w", err)
	}
	return up, nil
}

func (up *spooledUpload) Read(p []byte) (int, error) { return up.f.Read(p) }

// Close closes and removes the file; later calls do nothing.
func (up *spooledUpload) Close() error {
	up.closed.Do(func() {
		cerr := up.f.Close()
		rerr := os.Remove(up.f.Name())
		if errors.Is(rerr, fs.ErrNotExist) {
			rerr = nil
		}
		up.err = errors.Join(cerr, rerr)
	})
	return up.err
}
