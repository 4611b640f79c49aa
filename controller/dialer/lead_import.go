package dialer

import (
	"context"
	"errors"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/callgate/callgate/controller"
)

// Lead import bounds: rows per insert transaction, rejects kept in the
// report.
const (
	leadBatch       = 20_000
	maxKeptReject   = 1000
	maxFreshNumbers = 5_000_000 // about 400 MB of numbers held to remove repeats
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

// inserters is how many batches of one import are written at once: the
// database writes one on each of its cores while the next is read.
const inserters = 2

// runImport reads rows into batches and inserts them, up to inserters at a
// time while the next ones are read, saving progress after each.
func (cs *Campaigns) runImport(ctx context.Context, lr *LeadReader, im controller.LeadImport) controller.LeadImport {
	log := cs.log.With("import_id", im.ID, "list_id", im.ListID)
	// An import into an empty list removes the file's repeats itself and
	// copies straight into the table (fresh), until the set of numbers it
	// keeps for that grows too large.
	fresh := false
	if l, err := cs.store.GetLeadList(ctx, im.TenantID, im.ListID); err == nil && l.Leads == 0 {
		fresh = true
	}
	seen := map[string]struct{}{}
	var (
		mu     sync.Mutex // guards im and failed
		failed error
		wg     sync.WaitGroup
		slots  = make(chan struct{}, inserters)
	)
	fail := func(err error) {
		mu.Lock()
		if failed == nil {
			failed = err
		}
		mu.Unlock()
	}
	hasFailed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return failed != nil
	}
	insert := func(leads []controller.Lead, fresh bool) {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			n, err := cs.store.InsertLeads(ctx, im.TenantID, im.ListID, leads, fresh)
			if err != nil {
				fail(err)
				return
			}
			mu.Lock()
			im.Imported += n
			im.Duplicates += len(leads) - n
			snap := im
			snap.Rejects = slices.Clone(im.Rejects)
			mu.Unlock()
			if err := cs.store.SaveLeadImport(ctx, snap); err != nil {
				fail(err)
			}
		})
	}
	workers := runtime.GOMAXPROCS(0)
	batch := make([]controller.Lead, 0, leadBatch)
	for !hasFailed() {
		rows, err := lr.readChunk(leadBatch, workers)
		mu.Lock()
		for _, r := range rows {
			im.Rows++
			if r.rej != nil {
				im.Rejected++
				if len(im.Rejects) < maxKeptReject {
					im.Rejects = append(im.Rejects, *r.rej)
				}
				continue
			}
			if fresh {
				if _, dup := seen[r.lead.Phone]; dup {
					im.Duplicates++
					continue
				}
				seen[r.lead.Phone] = struct{}{}
			}
			batch = append(batch, r.lead)
		}
		mu.Unlock()
		if fresh && len(seen) > maxFreshNumbers {
			fresh, seen = false, nil
		}
		if len(batch) >= leadBatch || (err != nil && len(batch) > 0) {
			insert(batch, fresh)
			batch = make([]controller.Lead, 0, leadBatch)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fail(err)
			break
		}
		if ctx.Err() != nil {
			fail(ctx.Err())
		}
	}
	wg.Wait()
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
