package dialer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
)

// Admin returns the compliance administration over the service's store:
// numbers are normalised in the service's default region and policies
// validated before they are stored.
func (s *Service) Admin() controller.ComplianceAdmin { return &complianceAdmin{s: s} }

// complianceAdmin implements controller.ComplianceAdmin by delegating to the
// store once the input is normalised and validated.
type complianceAdmin struct{ s *Service }

var _ controller.ComplianceAdmin = (*complianceAdmin)(nil)

func (a *complianceAdmin) store() controller.ComplianceStore { return a.s.admin }

// number normalises raw to E.164. Returns EINVALID naming field for a
// missing or bad number; the message never holds the full number.
func (a *complianceAdmin) number(field, raw string) (string, error) {
	if raw == "" {
		return "", controller.FieldError(field, "is required")
	}
	n, err := compliance.ParseNumber(raw, a.s.cfg.DefaultRegion)
	if err != nil {
		return "", controller.FieldError(field, "%s", controller.ErrorMessage(err))
	}
	return n.E164, nil
}

func tenantOrDefault(tenant string) string {
	if tenant == "" {
		return controller.DefaultTenant
	}
	return tenant
}

// CreateConsent implements controller.ComplianceAdmin.
func (a *complianceAdmin) CreateConsent(ctx context.Context, tenant string, c controller.Consent) (controller.Consent, error) {
	tenant = tenantOrDefault(tenant)
	num, err := a.number("number", c.Number)
	if err != nil {
		return controller.Consent{}, err
	}
	c.Number, c.TenantID, c.RevokedAt = num, tenant, nil
	if c.GivenAt.IsZero() {
		c.GivenAt = a.s.cfg.Now()
	}
	id, err := a.store().CreateConsent(ctx, c)
	if err != nil {
		return controller.Consent{}, err
	}
	return a.store().GetConsent(ctx, tenant, id)
}

// GetConsent implements controller.ComplianceAdmin.
func (a *complianceAdmin) GetConsent(ctx context.Context, tenant, id string) (controller.Consent, error) {
	return a.store().GetConsent(ctx, tenantOrDefault(tenant), id)
}

// RevokeConsent implements controller.ComplianceAdmin.
func (a *complianceAdmin) RevokeConsent(ctx context.Context, tenant, id string) (controller.Consent, error) {
	return a.store().RevokeConsent(ctx, tenantOrDefault(tenant), id, a.s.cfg.Now())
}

// ListConsents implements controller.ComplianceAdmin.
func (a *complianceAdmin) ListConsents(ctx context.Context, tenant, number string) ([]controller.Consent, error) {
	num, err := a.number("number", number)
	if err != nil {
		return nil, err
	}
	return a.store().ListConsents(ctx, tenantOrDefault(tenant), num)
}

// LockNumber implements controller.ComplianceAdmin.
func (a *complianceAdmin) LockNumber(ctx context.Context, tenant string, req controller.RefusalRequest) (controller.RefusalLock, error) {
	num, err := a.number("number", req.Number)
	if err != nil {
		return controller.RefusalLock{}, err
	}
	now := a.s.cfg.Now()
	r := controller.Refusal{Number: num, Source: req.Source, CallID: req.CallID, At: now}
	if r.Source == "" {
		r.Source = "api"
	}
	switch {
	case req.Forever && req.Until != nil:
		return controller.RefusalLock{}, controller.FieldError("until", "must not be given with forever")
	case req.Forever:
	case req.Until != nil:
		if !req.Until.After(now) {
			return controller.RefusalLock{}, controller.FieldError("until", "must be in the future")
		}
		r.Until = req.Until
	default:
		until := now.Add(controller.DefaultRefusalLock)
		r.Until = &until
	}
	id, canceled, err := a.store().LockNumber(ctx, tenantOrDefault(tenant), r)
	if err != nil {
		return controller.RefusalLock{}, err
	}
	r.ID = id
	// Read it back as stored (times rounded by the database).
	if all, err := a.store().ListRefusals(ctx, num); err == nil {
		for _, stored := range all {
			if stored.ID == id {
				r = stored
				break
			}
		}
	}
	return controller.RefusalLock{Refusal: r, CanceledCalls: canceled}, nil
}

// ListRefusals implements controller.ComplianceAdmin.
func (a *complianceAdmin) ListRefusals(ctx context.Context, number string) ([]controller.Refusal, error) {
	num, err := a.number("number", number)
	if err != nil {
		return nil, err
	}
	list, err := a.store().ListRefusals(ctx, num)
	if err != nil {
		return nil, err
	}
	return a.hideForeignCalls(ctx, list), nil
}

// hideForeignCalls blanks the call of every refusal heard on another
// tenant's call when ctx carries a principal: refusals are global (a
// person's "do not call me" holds for every tenant) but the calls they were
// heard on are not.
func (a *complianceAdmin) hideForeignCalls(ctx context.Context, list []controller.Refusal) []controller.Refusal {
	p, ok := controller.PrincipalFrom(ctx)
	if !ok {
		return list
	}
	for i, r := range list {
		if r.CallID == "" {
			continue
		}
		if _, err := a.s.store.GetCall(ctx, tenantOrDefault(p.TenantID), r.CallID); err != nil {
			list[i].CallID = ""
		}
	}
	return list
}

// LiftRefusal implements controller.ComplianceAdmin.
func (a *complianceAdmin) LiftRefusal(ctx context.Context, tenant, id string) (controller.Refusal, error) {
	return a.store().LiftRefusal(ctx, tenantOrDefault(tenant), id, a.s.cfg.Now())
}

// CreateDNCList implements controller.ComplianceAdmin.
func (a *complianceAdmin) CreateDNCList(ctx context.Context, tenant string, l controller.DNCList) (controller.DNCList, error) {
	l.TenantID = tenantOrDefault(tenant)
	return a.store().CreateDNCList(ctx, l)
}

// ListDNCLists implements controller.ComplianceAdmin.
func (a *complianceAdmin) ListDNCLists(ctx context.Context, tenant string) ([]controller.DNCList, error) {
	return a.store().ListDNCLists(ctx, tenantOrDefault(tenant))
}

// visibleList returns ENOTFOUND unless the tenant can see the list.
func (a *complianceAdmin) visibleList(ctx context.Context, tenant, listID string) (controller.DNCList, error) {
	return a.store().GetDNCList(ctx, tenantOrDefault(tenant), listID)
}

// ownList returns the list if the tenant owns it: ENOTFOUND unless the
// tenant can see it, EFORBIDDEN for a global list (a national registry),
// which tenants read but never change; operators load those out of band.
func (a *complianceAdmin) ownList(ctx context.Context, tenant, listID string) (controller.DNCList, error) {
	l, err := a.visibleList(ctx, tenant, listID)
	if err != nil {
		return l, err
	}
	if l.TenantID != tenantOrDefault(tenant) {
		return l, controller.Errorf(controller.EFORBIDDEN, "do-not-call list %q is global: tenants may read it, not change it", listID)
	}
	return l, nil
}

// AddDNCNumber implements controller.ComplianceAdmin.
func (a *complianceAdmin) AddDNCNumber(ctx context.Context, tenant, listID, number string) (string, bool, error) {
	num, err := a.number("number", number)
	if err != nil {
		return "", false, err
	}
	if _, err := a.ownList(ctx, tenant, listID); err != nil {
		return "", false, err
	}
	added, err := a.store().AddDNCNumber(ctx, listID, num)
	return num, added, err
}

// RemoveDNCNumber implements controller.ComplianceAdmin.
func (a *complianceAdmin) RemoveDNCNumber(ctx context.Context, tenant, listID, number string) error {
	num, err := a.number("number", number)
	if err != nil {
		return err
	}
	if _, err := a.ownList(ctx, tenant, listID); err != nil {
		return err
	}
	removed, err := a.store().RemoveDNCNumber(ctx, listID, num)
	if err != nil {
		return err
	}
	if !removed {
		return controller.Errorf(controller.ENOTFOUND, "number %s is not on the list", controller.MaskNumber(num))
	}
	return nil
}

// MarkDNCScrubbed implements controller.ComplianceAdmin.
func (a *complianceAdmin) MarkDNCScrubbed(ctx context.Context, tenant, listID string) (controller.DNCList, error) {
	if _, err := a.ownList(ctx, tenant, listID); err != nil {
		return controller.DNCList{}, err
	}
	if err := a.store().SetDNCScrubbed(ctx, listID, a.s.cfg.Now()); err != nil {
		return controller.DNCList{}, err
	}
	return a.visibleList(ctx, tenant, listID)
}

// ImportDNC implements controller.ComplianceAdmin.
func (a *complianceAdmin) ImportDNC(ctx context.Context, tenant, listID string, r io.Reader, opts controller.DNCImport) (controller.DNCImportResult, error) {
	if _, err := a.ownList(ctx, tenant, listID); err != nil {
		return controller.DNCImportResult{ListID: listID, RejectedRows: []controller.DNCRowError{}}, err
	}
	region := a.s.cfg.DefaultRegion
	normalize := func(raw string) (string, error) {
		n, err := compliance.ParseNumber(strings.TrimSpace(raw), region)
		if err != nil {
			return "", errors.New(controller.ErrorMessage(err))
		}
		return n.E164, nil
	}
	storeOpts := controller.DNCImportOptions{Scrub: opts.Scrub}
	if opts.Scrub {
		storeOpts.ScrubAt = a.s.cfg.Now()
	}
	rep, err := a.store().ImportDNC(ctx, listID, r, normalize, storeOpts)
	res := controller.DNCImportResult{
		ListID: listID, Rows: rep.Rows, Accepted: rep.Added, Duplicates: rep.Valid - rep.Added,
		Rejected: rep.Invalid, RejectedRows: rep.Errors, Header: rep.Header, Entries: rep.Entries,
		LastScrubAt: rep.LastScrubAt,
	}
	if res.RejectedRows == nil {
		res.RejectedRows = []controller.DNCRowError{}
	}
	return res, err
}

// AddCallerID implements controller.ComplianceAdmin.
func (a *complianceAdmin) AddCallerID(ctx context.Context, tenant, number string) (string, error) {
	num, err := a.number("number", number)
	if err != nil {
		return "", err
	}
	return num, a.store().AddOwnedNumber(ctx, tenantOrDefault(tenant), num)
}

// RemoveCallerID implements controller.ComplianceAdmin.
func (a *complianceAdmin) RemoveCallerID(ctx context.Context, tenant, number string) error {
	num, err := a.number("number", number)
	if err != nil {
		return err
	}
	return a.store().RemoveOwnedNumber(ctx, tenantOrDefault(tenant), num)
}

// ListCallerIDs implements controller.ComplianceAdmin.
func (a *complianceAdmin) ListCallerIDs(ctx context.Context, tenant string) ([]string, error) {
	return a.store().ListOwnedNumbers(ctx, tenantOrDefault(tenant))
}

// PutPolicy implements controller.ComplianceAdmin. The stored body is the
// validated policy without its version: the record's version is the
// authority (the store assigns it).
func (a *complianceAdmin) PutPolicy(ctx context.Context, tenant, id string, body json.RawMessage) (controller.PolicyRecord, error) {
	tenant = tenantOrDefault(tenant)
	p, err := compliance.DecodePolicy(body)
	if err != nil {
		return controller.PolicyRecord{}, err
	}
	if p.ID != "" && p.ID != id {
		return controller.PolicyRecord{}, controller.FieldError("id", "must be the id in the path or absent")
	}
	p.ID = id
	if p.Version == 0 {
		p.Version = 1 // assigned by the store; Validate wants one
	}
	if err := p.Validate(); err != nil {
		return controller.PolicyRecord{}, err
	}
	doc, err := policyDocument(p)
	if err != nil {
		return controller.PolicyRecord{}, err
	}
	version, err := a.store().PutPolicy(ctx, tenant, id, p.Name, doc)
	if err != nil {
		return controller.PolicyRecord{}, err
	}
	a.s.policies.clear()
	return a.store().GetPolicy(ctx, tenant, id, version)
}

// policyDocument encodes p for the store without its version.
func policyDocument(p compliance.Policy) (json.RawMessage, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encoding policy %s: %w", p.ID, err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("encoding policy %s: %w", p.ID, err)
	}
	delete(m, "version")
	return json.Marshal(m)
}

// GetPolicy implements controller.ComplianceAdmin.
func (a *complianceAdmin) GetPolicy(ctx context.Context, tenant, id string, version int) (controller.PolicyRecord, error) {
	if version < 0 {
		return controller.PolicyRecord{}, controller.FieldError("version", "must be 0 (the latest) or more")
	}
	return a.store().GetPolicy(ctx, tenantOrDefault(tenant), id, version)
}

// ListPolicies implements controller.ComplianceAdmin.
func (a *complianceAdmin) ListPolicies(ctx context.Context, tenant string) ([]controller.PolicyRecord, error) {
	return a.store().ListPolicies(ctx, tenantOrDefault(tenant))
}

// DeletePolicy implements controller.ComplianceAdmin.
func (a *complianceAdmin) DeletePolicy(ctx context.Context, tenant, id string) error {
	defer a.s.policies.clear()
	return a.store().DeletePolicy(ctx, tenantOrDefault(tenant), id)
}

// AssignPolicy implements controller.ComplianceAdmin.
func (a *complianceAdmin) AssignPolicy(ctx context.Context, tenant string, asg controller.PolicyAssignment) error {
	defer a.s.policies.clear()
	return a.store().AssignPolicy(ctx, tenantOrDefault(tenant), asg.CampaignID, asg.PolicyID)
}
