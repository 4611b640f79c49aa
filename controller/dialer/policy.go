package dialer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
)

// policyKey carries the policy resolved for one decision into the gate.
type policyKey struct{}

// PolicySource is the compliance gate's policy source for a Service: the
// policy the Service resolved for the decision's tenant (an assignment
// stored through the API), else def. The Service resolves it before it opens
// the decision's transaction, because the gate runs inside that transaction
// and must not use the database itself.
func PolicySource(def compliance.Policy) compliance.PolicySource {
	return compliance.PolicySourceFunc(func(ctx context.Context, _ controller.CheckRequest) (compliance.Policy, error) {
		if p, ok := ctx.Value(policyKey{}).(compliance.Policy); ok {
			return p, nil
		}
		return def, nil
	})
}

// policyTTL bounds how stale a cached assignment may be; this process's own
// policy edits clear the cache at once.
const policyTTL = 5 * time.Second

type cachedPolicy struct {
	p       compliance.Policy
	found   bool
	fetched time.Time
}

type policyCache struct {
	mu sync.Mutex
	m  map[string]cachedPolicy
}

func (c *policyCache) clear() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

// withPolicy returns ctx carrying the policy assigned to the tenant's
// campaign (or tenant default) if one is assigned. Returns an error — and
// nothing may be decided — if the assignment cannot be read or its stored
// policy is invalid.
func (s *Service) withPolicy(ctx context.Context, tenant, campaign string) (context.Context, error) {
	key := tenant + "\x00" + campaign
	now := s.cfg.Now()
	s.policies.mu.Lock()
	e, ok := s.policies.m[key]
	s.policies.mu.Unlock()
	if !ok || now.Sub(e.fetched) > policyTTL {
		rec, err := s.admin.PolicyFor(ctx, tenant, campaign)
		switch {
		case controller.ErrorCode(err) == controller.ENOTFOUND:
			e = cachedPolicy{fetched: now}
		case err != nil:
			return ctx, fmt.Errorf("finding the policy of tenant %q: %w", tenant, err)
		default:
			p, err := compliance.DecodePolicy(rec.Body)
			if err == nil {
				p.ID, p.Version = rec.ID, rec.Version
				err = p.Validate()
			}
			if err != nil {
				return ctx, fmt.Errorf("policy %s v%d: %w", rec.ID, rec.Version, err)
			}
			e = cachedPolicy{p: p, found: true, fetched: now}
		}
		s.policies.mu.Lock()
		if s.policies.m == nil {
			s.policies.m = map[string]cachedPolicy{}
		}
		s.policies.m[key] = e
		s.policies.mu.Unlock()
	}
	if !e.found {
		return ctx, nil
	}
	return context.WithValue(ctx, policyKey{}, e.p), nil
}
