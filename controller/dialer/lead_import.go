package dialer

import (
	"context"
	"errors"
	"io"
	"strings"

	"github.com/callgate/callgate/controller"
)

// Lead import bounds: rows per insert transaction, rejects kept in the
// report.
const (
	leadBatch     = 20_000
	maxKeptReject = 1000
)

// CreateLeadList creates an empty list. Returns EINVALID for a bad name.
func (cs *Campaigns) CreateLeadList(ctx context.Context, tenant, name string) (controller.LeadList, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return controller.LeadList{}, controller.FieldError("name", "must be 1 to 200 characters")
	}
	if err := controller.CheckText("name", name); err != nil {
		return controller.LeadList{}, err
	}
	return cs.store.CreateLeadList(ctx, tenantOr(tenant), name)
}

// LeadList returns a list with its lead count.
func (cs *Campaigns) LeadList(ctx context.Context, tenant, id string) (controller.LeadList, error) {
	return cs.store.GetLeadList(ctx, tenantOr(tenant), id)
}

// LeadImport returns an import's progress.
func (cs *Campaigns) LeadImport(ctx context.Context, tenant, id string) (controller.LeadImport, error) {
	return cs.store.GetLeadImport(ctx, tenantOr(tenant), id)
}

// ImportLeads checks the upload's header, records the import and reads the
// rows in the background: rows are validated one by one (rejects are
// counted, the first ones kept with their line and reason), and inserted a
// batch per transaction while the next batch is read. The import ends done,
// or failed with the reason if the upload cannot be read to its end (rows
// already inserted stay: the list deduplicates, so uploading again is safe).
func (cs *Campaigns) ImportLeads(ctx context.Context, tenant, listID string, up controller.LeadCSV) (controller.LeadImport, error) {
	tenant = tenantOr(tenant)
	if _, err := cs.store.GetLeadList(ctx, tenant, listID); err != nil {
		return controller.LeadImport{}, err
	}
	if up.Open == nil {
		return controller.LeadImport{}, controller.FieldError("csv", "no upload")
	}
	rc, err := up.Open()
	if err != nil {
		return controller.LeadImport{}, err
	}
	lr, err := NewLeadReader(rc, up.DefaultRegion, up.TagColumns)
	if err != nil {
		rc.Close()
		return controller.LeadImport{}, err
	}
	im, err := cs.store.StartLeadImport(ctx, tenant, listID)
	if err != nil {
		rc.Close()
		return im, err
	}
	cs.imports.Add(1)
	go func() {
		defer cs.imports.Done()
		defer rc.Close()
		cs.runImport(cs.bg, lr, im)
	}()
	return im, nil
}

// RunImport reads a whole upload into a list synchronously (the benchmark
// and tests use it): ImportLeads without the goroutine.
func (cs *Campaigns) RunImport(ctx context.Context, tenant, listID string, r io.Reader, region string, tagColumns []string) (controller.LeadImport, error) {
	tenant = tenantOr(tenant)
	lr, err := NewLeadReader(r, region, tagColumns)
	if err != nil {
		return controller.LeadImport{}, err
	}
	im, err := cs.store.StartLeadImport(ctx, tenant, listID)
	if err != nil {
		return im, err
	}
	return cs.runImport(ctx, lr, im), nil
}

// runImport reads rows into batches and inserts each batch while the next
// is read, saving progress after each.
func (cs *Campaigns) runImport(ctx context.Context, lr *LeadReader, im controller.LeadImport) controller.LeadImport {
	log := cs.log.With("import_id", im.ID, "list_id", im.ListID)
	type result struct {
		valid, added int
		err          error
	}
	batches := make(chan []controller.Lead)
	results := make(chan result)
	go func() {
		defer close(results)
		for b := range batches {
			n, err := cs.store.InsertLeads(ctx, im.TenantID, im.ListID, b)
			results <- result{valid: len(b), added: n, err: err}
			if err != nil {
				for range batches { // drain: the reader stops at the next send
				}
				return
			}
		}
	}()
	inFlight := false
	var failed error
	collect := func() {
		r := <-results
		inFlight = false
		if r.err != nil && failed == nil {
			failed = r.err
			return
		}
		im.Imported += r.added
		im.Duplicates += r.valid - r.added
		if err := cs.store.SaveLeadImport(ctx, im); err != nil && failed == nil {
			failed = err
		}
	}
	batch := make([]controller.Lead, 0, leadBatch)
	flush := func() {
		if inFlight {
			collect()
		}
		if failed != nil || len(batch) == 0 {
			return
		}
		batches <- batch
		inFlight = true
		batch = make([]controller.Lead, 0, leadBatch)
	}
	for failed == nil {
		l, rej, err := lr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			failed = err
			break
		}
		im.Rows++
		if rej != nil {
			im.Rejected++
			if len(im.Rejects) < maxKeptReject {
				im.Rejects = append(im.Rejects, *rej)
			}
			continue
		}
		batch = append(batch, l)
		if len(batch) == leadBatch {
			flush()
		}
		if ctx.Err() != nil {
			failed = ctx.Err()
		}
	}
	if failed == nil {
		flush()
	}
	if inFlight {
		collect()
	}
	close(batches)
	for range results {
	}
	im.State = "done"
	if failed != nil {
		im.State, im.Error = "failed", controller.ErrorMessage(failed)
		log.Warn("lead import failed", "err", failed, "rows", im.Rows)
	} else {
		log.Info("lead import done", "rows", im.Rows, "imported", im.Imported, "rejected", im.Rejected)
	}
	if err := cs.store.SaveLeadImport(context.WithoutCancel(ctx), im); err != nil {
		log.Warn("saving lead import", "err", err)
	}
	return im
}
