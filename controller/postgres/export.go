package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/callgate/callgate/controller"
)

// TraceRow is one call of a regulator traceability export: where it came
// from, who it presented, what the compliance gate decided (at creation and
// at dial time, with the policy and each rule's evidence), the consent it
// relied on or produced, and its recordings.
type TraceRow struct {
	CallID       controller.CallID    `json:"call_id"`
	TenantID     string               `json:"tenant_id"`
	Source       string               `json:"source"` // "api" (campaigns arrive later)
	CreatedAt    time.Time            `json:"created_at"`
	EndedAt      *time.Time           `json:"ended_at,omitempty"`
	To           string               `json:"to"`
	CallerID     string               `json:"caller_id"`
	Purpose      string               `json:"purpose,omitempty"`
	State        controller.CallState `json:"state"`
	HangupCause  string               `json:"hangup_cause,omitempty"`
	Decision     *controller.Decision `json:"decision,omitempty"`
	DialDecision *controller.Decision `json:"dial_decision,omitempty"`
	ConsentIDs   []string             `json:"consent_ids"`   // consents the decisions cited or the call recorded
	RecordingIDs []string             `json:"recording_ids"` // with their integrity hashes in the recordings API
}

// ExportTrace streams the traceability rows of a tenant's calls created in
// [from, to), oldest first, to fn; it stops at fn's first error. Rows are
// read in pages so an export of any size runs in constant memory.
func (s *Store) ExportTrace(ctx context.Context, tenant string, from, to time.Time, fn func(TraceRow) error) error {
	if tenant == "" {
		return controller.FieldError("tenant", "is required")
	}
	if !from.Before(to) {
		return controller.FieldError("from", "must be before to")
	}
	const page = 500
	afterAt, afterID := from.Add(-time.Microsecond), "00000000-0000-0000-0000-000000000000"
	for {
		rows, err := s.db.pool.Query(ctx, `
			SELECT c.id::text, c.tenant_id, c.created_at, c.ended_at, coalesce(c.to_number, ''), c.to_sealed, c.from_number, c.purpose,
				c.state, c.hangup_cause, a.decision, a.dial_decision,
				coalesce((SELECT array_agg(k.id::text ORDER BY k.given_at) FROM consents k
					WHERE k.tenant_id = c.tenant_id AND k.call_id = c.id), '{}'),
				coalesce((SELECT array_agg(r.id::text ORDER BY r.created_at) FROM recordings r
					WHERE r.call_id = c.id), '{}')
			FROM calls c LEFT JOIN attempts a ON a.call_id = c.id
			WHERE c.tenant_id = $1 AND c.created_at < $3 AND (c.created_at, c.id) > ($2, $4::uuid)
			ORDER BY c.created_at, c.id
			LIMIT $5`, tenant, afterAt, to, afterID, page)
		if err != nil {
			return fmt.Errorf("exporting calls: %w", translate(err))
		}
		var batch []TraceRow
		for rows.Next() {
			var (
				r                 TraceRow
				dec, dial, sealed []byte
				purpose           string
			)
			if err := rows.Scan(&r.CallID, &r.TenantID, &r.CreatedAt, &r.EndedAt, &r.To, &sealed, &r.CallerID, &purpose,
				&r.State, &r.HangupCause, &dec, &dial, &r.ConsentIDs, &r.RecordingIDs); err != nil {
				rows.Close()
				return fmt.Errorf("exporting calls: %w", translate(err))
			}
			var err error
			if r.To, err = openNumber(s.pd, r.To, sealed); err != nil {
				rows.Close()
				return fmt.Errorf("exporting call %s: %w", r.CallID, err)
			}
			r.Source, r.Purpose = "api", purpose
			for _, d := range []struct {
				raw []byte
				dst **controller.Decision
			}{{dec, &r.Decision}, {dial, &r.DialDecision}} {
				if len(d.raw) == 0 {
					continue
				}
				*d.dst = new(controller.Decision)
				if err := json.Unmarshal(d.raw, *d.dst); err != nil {
					rows.Close()
					return fmt.Errorf("exporting call %s: decoding decision: %w", r.CallID, err)
				}
				if (*d.dst).Number == "" {
					(*d.dst).Number = r.To // stored without it (encodeStoredDecision)
				}
			}
			r.ConsentIDs = append(r.ConsentIDs, citedConsents(r.ConsentIDs, r.Decision, r.DialDecision)...)
			batch = append(batch, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("exporting calls: %w", translate(err))
		}
		for _, r := range batch {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(batch) < page {
			return nil
		}
		last := batch[len(batch)-1]
		afterAt, afterID = last.CreatedAt, string(last.CallID)
	}
}

// citedConsents returns the consent IDs the decisions' consent verdicts cite
// as evidence that are not in have.
func citedConsents(ds ...any) []string {
	have := map[string]bool{}
	var out []string
	for _, x := range ds {
		switch v := x.(type) {
		case []string:
			for _, id := range v {
				have[id] = true
			}
		case *controller.Decision:
			if v == nil {
				continue
			}
			for _, vd := range v.Verdicts {
				if vd.Rule != "consent" {
					continue
				}
				for _, id := range vd.Evidence {
					if !have[id] {
						have[id] = true
						out = append(out, id)
					}
				}
			}
		}
	}
	return out
}
