package ivr_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/egress"
	"github.com/callgate/callgate/controller/ivr"
)

// guardFor builds a guard whose resolver answers addr for every name.
func guardFor(t *testing.T, cfg egress.Config, addr string) *egress.Guard {
	t.Helper()
	cfg.Resolver = func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr(addr)}, nil
	}
	g, err := egress.New(cfg)
	require.NoError(t, err)
	return g
}

// countingServer is a webhook receiver that counts its requests.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64, string) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	return srv, &hits, u.Port()
}

func TestValidateRefusesURLsOutsideTheAllowlist(t *testing.T) {
	t.Parallel()
	doc := func(hook, prompt string) string {
		return fmt.Sprintf(`{"start": "a", "nodes": {
			"a":    {"type": "play", "prompt_url": %q, "next": "hook"},
			"hook": {"type": "webhook", "url": %q}}}`, prompt, hook)
	}
	g := guardFor(t, egress.Config{Allow: []string{"hooks.example.com", "*.cdn.example.com", "203.0.113.0/24"}}, "203.0.113.10")
	env := ivr.Env{Egress: g}
	require.Empty(t, validateDoc(t, doc("https://hooks.example.com/h", "https://eu.cdn.example.com/a.wav"), env))
	require.Empty(t, validateDoc(t, doc("https://203.0.113.7/h", "https://eu.cdn.example.com/a.wav"), env))

	for _, tc := range []struct {
		hook, prompt string
		want         ivr.Problems
	}{
		{"https://127.0.0.1/admin", "https://169.254.169.254/latest/meta-data/", ivr.Problems{
			{Node: "a", Field: "prompt_url", Severity: "error", Message: "host not allowed by the egress allowlist"},
			{Node: "hook", Field: "url", Severity: "error", Message: "host not allowed by the egress allowlist"},
		}},
		{"https://internal.corp/h", "https://eu.cdn.example.com/a.wav", ivr.Problems{
			{Node: "hook", Field: "url", Severity: "error", Message: "host not allowed by the egress allowlist"},
		}},
		{"http://hooks.example.com/h", "https://cdn.example.com/a.wav", ivr.Problems{
			{Node: "a", Field: "prompt_url", Severity: "error", Message: "host not allowed by the egress allowlist"},
			{Node: "hook", Field: "url", Severity: "error", Message: "http is not allowed: only https (AllowHTTP is off)"},
		}},
	} {
		problems := validateDoc(t, doc(tc.hook, tc.prompt), env)
		require.Equal(t, tc.want, problems.Errors(), "%s %s", tc.hook, tc.prompt)
		require.Equal(t, controller.EINVALID, controller.ErrorCode(problems.Err()))
	}
	err := validateDoc(t, doc("https://10.0.0.5/h", "https://eu.cdn.example.com/a.wav"), env).Err()
	require.Contains(t, err.Error(), `node "hook": url: host not allowed by the egress allowlist`)
	require.Equal(t, "nodes.hook.url", controller.ErrorField(err))

	empty, err := egress.New(egress.Config{})
	require.NoError(t, err)
	problems := validateDoc(t, doc("https://hooks.example.com/h", "https://eu.cdn.example.com/a.wav"), ivr.Env{Egress: empty})
	require.Len(t, problems.Errors(), 2)
	require.Equal(t, egress.ReasonEmptyAllowlist, problems.Errors()[1].Message)
}

func TestServiceSaveRefusesDisallowedURLs(t *testing.T) {
	ctx := context.Background()
	hook := func(u string) []byte {
		return []byte(fmt.Sprintf(`{"start": "w", "nodes": {"w": {"type": "webhook", "url": %q, "on_error": "bye"}, "bye": {"type": "hangup"}}}`, u))
	}
	t.Run("allowlist", func(t *testing.T) {
		b := setupServiceWith(t, func(cfg *ivr.ServiceConfig) {
			cfg.Egress = guardFor(t, egress.Config{Allow: []string{"hooks.example.com"}}, "203.0.113.10")
		})
		_, problems, err := b.svc.SaveFlow(ctx, "t1", "hooked", hook("https://hooks.example.com/h"))
		require.NoError(t, err)
		require.Empty(t, problems)
		for _, u := range []string{"https://10.0.0.5/h", "https://localhost/h", "https://metadata.google.internal/"} {
			_, problems, err = b.svc.SaveFlow(ctx, "t1", "internal", hook(u))
			require.Equal(t, controller.EINVALID, controller.ErrorCode(err), u)
			require.Equal(t, []controller.FlowProblem{{Node: "w", Field: "url", Severity: "error",
				Message: "host not allowed by the egress allowlist"}}, problems)
			vs, err := b.svc.ValidateFlow(ctx, "t1", hook(u))
			require.NoError(t, err)
			require.Equal(t, problems, vs)
		}
		_, err = b.svc.GetFlow(ctx, "t1", "internal", 0)
		require.Equal(t, controller.ENOTFOUND, controller.ErrorCode(err), "a refused flow is not stored")
	})
	t.Run("no guard configured refuses every URL", func(t *testing.T) {
		b := setupService(t)
		_, problems, err := b.svc.SaveFlow(ctx, "t1", "hooked", hook("https://hooks.example.com/h"))
		require.Equal(t, controller.EINVALID, controller.ErrorCode(err))
		require.Equal(t, []controller.FlowProblem{{Node: "w", Field: "url", Severity: "error", Message: egress.ReasonEmptyAllowlist}}, problems)
	})
}

// TestServiceWebhookGuardedAndSigned: a flow saved under the service's
// guard calls its webhook, signed with the tenant's secret.
func TestServiceWebhookGuardedAndSigned(t *testing.T) {
	verified := make(chan error, 1)
	_, hits, port := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		verified <- ivr.VerifySignature([]byte("tenant-one-secret-0123"), r.Header, body, time.Now(), 0)
		_, _ = io.WriteString(w, `{"next": "tag"}`)
	})
	b := setupServiceWith(t, func(cfg *ivr.ServiceConfig) {
		cfg.Egress = guardFor(t, egress.Config{Allow: []string{"hooks.example.com"}, AllowHTTP: true, AllowPrivate: true}, "127.0.0.1")
		cfg.WebhookSecret = func(tenant string) []byte {
			return map[string][]byte{"t1": []byte("tenant-one-secret-0123"), "t2": []byte("tenant-two-secret-0123")}[tenant]
		}
	})
	ctx := context.Background()
	_, _, err := b.svc.SaveFlow(ctx, "t1", "hooked", []byte(`{"start": "w", "nodes": {
		"w":   {"type": "webhook", "url": "http://hooks.example.com:`+port+`/h", "next": "bye", "on_error": "bye"},
		"tag": {"type": "set", "disposition": "steered", "next": "bye"},
		"bye": {"type": "hangup"}}}`))
	require.NoError(t, err)
	b.svc.Answered(controller.Call{ID: "0b7c6a2e-1f7b-4c8e-9d5a-3e2f1a0b9c8d", TenantID: "t1", To: "+15551234567", FlowID: "hooked"}, b.sw)
	_, res := b.wait(t)
	require.Equal(t, ivr.OutcomeCompleted, res.Outcome, res.Err)
	require.Equal(t, "steered", res.Disposition)
	require.EqualValues(t, 1, hits.Load())
	require.NoError(t, <-verified, "the receiver verified the signature")
}

func TestRunWebhookRefusedFollowsOnError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		guard func(t *testing.T) *egress.Guard // nil: no guard
		host  string                           // the webhook URL's host ("" the server's 127.0.0.1)
		err   string
	}{
		{name: "host no longer allowlisted",
			guard: func(t *testing.T) *egress.Guard {
				return guardFor(t, egress.Config{Allow: []string{"other.example.com"}, AllowHTTP: true}, "127.0.0.1")
			},
			host: "hooks.example.com", err: "webhook refused: url: host not allowed by the egress allowlist"},
		{name: "allowlisted name resolving to loopback",
			guard: func(t *testing.T) *egress.Guard {
				return guardFor(t, egress.Config{Allow: []string{"hooks.example.com"}, AllowHTTP: true}, "127.0.0.1")
			},
			host: "hooks.example.com",
			err:  "webhook refused by the egress guard: resolved address refused: 127.0.0.1 is a loopback address: not in an allowlisted CIDR and AllowPrivate is off"},
		{name: "allowlisted name resolving to the metadata service",
			guard: func(t *testing.T) *egress.Guard {
				return guardFor(t, egress.Config{Allow: []string{"hooks.example.com"}, AllowHTTP: true, AllowPrivate: true}, "169.254.169.254")
			},
			host: "hooks.example.com",
			err:  "webhook refused by the egress guard: resolved address refused: 169.254.169.254 is a link-local address"},
		{name: "http not allowed",
			guard: func(t *testing.T) *egress.Guard {
				return guardFor(t, egress.Config{Allow: []string{"127.0.0.0/8"}}, "127.0.0.1")
			},
			err: "webhook refused: url: http is not allowed: only https (AllowHTTP is off)"},
		{name: "no guard", err: "webhook refused: no egress guard is configured: every outbound URL is refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, hits, port := countingServer(t, reply(200, `{"next": "sales"}`))
			b := setup(t, "1")
			b.runner.Egress = nil
			if tc.guard != nil {
				b.runner.Egress = tc.guard(t)
			}
			host := tc.host
			if host == "" {
				host = "127.0.0.1"
			}
			res := b.run(t, webhookFlow("http://"+host+":"+port+"/hook", 2000, true))

			require.Equal(t, ivr.OutcomeCompleted, res.Outcome, res.Err)
			require.Equal(t, []string{"ask", "hook", "failed", "bye"}, nodes(res.Path), "on_error is followed")
			require.Equal(t, "error", res.Path[1].Result)
			require.Contains(t, res.Path[1].Error, tc.err)
			require.Equal(t, "webhook_failed", res.Disposition)
			require.Zero(t, hits.Load(), "the request never reached the server")
		})
	}
	t.Run("without on_error the run fails", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "1")
		b.runner.Egress = guardFor(t, egress.Config{Allow: []string{"example.com"}}, "10.0.0.1")
		res := b.run(t, webhookFlow("https://example.com/hook", 2000, false))
		require.Equal(t, ivr.OutcomeError, res.Outcome)
		require.Equal(t, `node "hook": webhook refused by the egress guard: resolved address refused: 10.0.0.1 is a private address: not in an allowlisted CIDR and AllowPrivate is off`, res.Err)
		require.Equal(t, "hangup NORMAL_TEMPORARY_FAILURE", b.ev.all()[len(b.ev.all())-1])
	})
}

func TestRunPromptURLChecked(t *testing.T) {
	t.Parallel()
	const doc = `{"start": "a", "nodes": {"a": {"type": "play", "prompt_url": "https://cdn.example.com/a.wav"}}}`
	for _, tc := range []struct {
		name  string
		guard *egress.Guard
		err   string // of the run; "" it plays
	}{
		{name: "allowed", guard: guardFor(t, egress.Config{Allow: []string{"cdn.example.com"}}, "203.0.113.10")},
		{name: "not allowlisted", guard: guardFor(t, egress.Config{Allow: []string{"hooks.example.com"}}, "203.0.113.10"),
			err: `node "a": prompt_url refused: host not allowed by the egress allowlist`},
		{name: "resolves to a private address", guard: guardFor(t, egress.Config{Allow: []string{"cdn.example.com"}}, "10.1.2.3"),
			err: `node "a": prompt_url refused: resolved address refused: 10.1.2.3 is a private address`},
		{name: "no guard", err: `node "a": prompt_url refused: no egress guard is configured`},
	} {
		b := setup(t)
		b.runner.Egress = tc.guard
		res := b.run(t, doc)
		if tc.err == "" {
			require.Equal(t, ivr.OutcomeCompleted, res.Outcome, res.Err)
			require.Equal(t, []string{"play https://cdn.example.com/a.wav", "hangup NORMAL_CLEARING"}, b.ev.all())
			continue
		}
		require.Equal(t, ivr.OutcomeError, res.Outcome, tc.name)
		require.Contains(t, res.Err, tc.err, tc.name)
		require.Equal(t, -1, b.ev.index("play"), "%s: the switch was never told to fetch it", tc.name)
	}
}

func TestRunSubFlowPromptURLChecked(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(reply(200, `{"flow": {"start": "p", "nodes": {"p": {"type": "play", "prompt_url": "https://169.254.169.254/latest/meta-data/"}}}}`))
	t.Cleanup(srv.Close)
	b := setup(t, "1")
	res := b.run(t, webhookFlow(srv.URL, 2000, true))
	require.Equal(t, ivr.OutcomeCompleted, res.Outcome, res.Err)
	require.Equal(t, []string{"ask", "hook", "failed", "bye"}, nodes(res.Path))
	require.Contains(t, res.Path[1].Error, `webhook flow is invalid: flow has 1 error: node "p": prompt_url: host not allowed by the egress allowlist`)
}
