package ivr

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/callgate/callgate/controller/egress"
)

// reasonNoEgress is why every outbound URL is refused by a Runner without
// a guard.
const reasonNoEgress = "no egress guard is configured: every outbound URL is refused"

// checkURLs refuses webhook and prompt URLs the egress allowlist does not
// allow, on the node's field ("url: host not allowed by the egress
// allowlist"). Without a guard in env it checks nothing (the Runner
// refuses such URLs all the same).
func (v *validator) checkURLs() {
	if v.env.Egress == nil {
		return
	}
	for _, id := range v.ids {
		n := v.node(id)
		if n == nil {
			continue
		}
		for _, ref := range [][2]string{{"url", n.URL}, {"prompt_url", n.PromptURL}} {
			if ref[1] == "" {
				continue
			}
			if err := v.env.Egress.CheckURL(ref[1]); err != nil {
				v.add(id, ref[0], SeverityError, "%s", egress.Reason(err))
			}
		}
	}
}

// webhookClient checks a webhook URL against the egress guard and returns
// the client to send it with. Returns a *webhookError for a refusal.
func (ru *run) webhookClient(rawURL string) (*http.Client, error) {
	g := ru.r.Egress
	if g == nil {
		return nil, webhookErrorf("webhook refused: %s", reasonNoEgress)
	}
	if err := g.CheckURL(rawURL); err != nil {
		return nil, webhookErrorf("webhook refused: url: %s", egress.Reason(err))
	}
	if ru.r.HTTP != nil {
		return ru.r.HTTP, nil
	}
	return g.Client(), nil
}

// webhookSecret returns the secret the run's tenant signs webhooks with.
// Returns a *webhookError when it has none or it is too short.
func (ru *run) webhookSecret() ([]byte, error) {
	var secret []byte
	if ru.r.WebhookSecret != nil {
		secret = ru.r.WebhookSecret(ru.call.TenantID)
	}
	if len(secret) == 0 {
		return nil, webhookErrorf("webhook not sent: no webhook signing secret is configured for tenant %q", ru.call.TenantID)
	}
	if err := CheckWebhookSecret(secret); err != nil {
		return nil, webhookErrorf("webhook not sent: the signing secret of tenant %q is too short: %v", ru.call.TenantID, err)
	}
	return secret, nil
}

// refusedWebhook turns a refusal met while connecting into a webhook
// error; nil if err is no refusal.
func refusedWebhook(err error) error {
	if !errors.Is(err, egress.ErrRefused) {
		return nil
	}
	return webhookErrorf("webhook refused by the egress guard: %s", egress.Reason(err))
}

// checkPromptURL checks a prompt URL before the switch is told to fetch
// it: allowlisted and, resolved now, leading to no internal address (the
// switch makes the connection, so this is the last check callgate can
// make).
func (ru *run) checkPromptURL(rawURL string) error {
	g := ru.r.Egress
	if g == nil {
		return fmt.Errorf("prompt_url refused: %s", reasonNoEgress)
	}
	err := g.CheckResolved(ru.ctx, rawURL)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, egress.ErrRefused):
		return fmt.Errorf("prompt_url refused: %s", egress.Reason(err))
	}
	return fmt.Errorf("prompt_url: %w", err)
}
