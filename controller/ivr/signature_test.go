package ivr_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller/ivr"
)

// The example of the scheme's documentation, checked against
// printf '1767268800.{"call_id":"c1"}' | openssl dgst -sha256 -hmac whsec_0123456789abcdef
const (
	docSecret    = "whsec_0123456789abcdef"
	docTimestamp = 1767268800
	docBody      = `{"call_id":"c1"}`
	docSignature = "v1=92b9e72ecb776c0c7b5d580eb650d12014818150b1b9860b715d69011ab6c3b9"
)

func signedHeader(ts int64, sigs ...string) http.Header {
	h := http.Header{}
	h.Set(ivr.HeaderTimestamp, strconv.FormatInt(ts, 10))
	for _, s := range sigs {
		h.Add(ivr.HeaderSignature, s)
	}
	return h
}

func TestSignWebhookGolden(t *testing.T) {
	t.Parallel()
	require.Equal(t, docSignature, ivr.SignWebhook([]byte(docSecret), time.Unix(docTimestamp, 0), []byte(docBody)))
}

func TestVerifySignature(t *testing.T) {
	t.Parallel()
	secret := []byte(docSecret)
	signedAt := time.Unix(docTimestamp, 0)
	body := []byte(docBody)
	good := signedHeader(docTimestamp, docSignature)

	for name, now := range map[string]time.Time{
		"at once": signedAt, "4 minutes late": signedAt.Add(4 * time.Minute), "clock 4 minutes behind": signedAt.Add(-4 * time.Minute),
	} {
		require.NoError(t, ivr.VerifySignature(secret, good, body, now, 0), name)
	}
	require.NoError(t, ivr.VerifySignature(secret, signedHeader(docTimestamp, "v1=00ff,"+docSignature), body, signedAt, 0),
		"one matching v1 of several is enough (rotation)")
	require.NoError(t, ivr.VerifySignature(secret, signedHeader(docTimestamp, "v0=abc", docSignature), body, signedAt, 0),
		"several header lines, other schemes ignored")
	require.NoError(t, ivr.VerifySignature(secret, good, body, signedAt.Add(time.Hour), 2*time.Hour), "a custom tolerance")

	for _, tc := range []struct {
		name   string
		secret []byte
		header http.Header
		body   string
		now    time.Time
		want   error
	}{
		{"replayed later", secret, good, docBody, signedAt.Add(6 * time.Minute), ivr.ErrStaleSignature},
		{"from the future", secret, good, docBody, signedAt.Add(-6 * time.Minute), ivr.ErrStaleSignature},
		{"tampered body", secret, good, `{"call_id":"c2"}`, signedAt, ivr.ErrBadSignature},
		{"tampered timestamp", secret, signedHeader(docTimestamp+1, docSignature), docBody, signedAt, ivr.ErrBadSignature},
		{"wrong secret", []byte("whsec_another_secret_xx"), good, docBody, signedAt, ivr.ErrBadSignature},
		{"not hex", secret, signedHeader(docTimestamp, "v1=zz"), docBody, signedAt, ivr.ErrBadSignature},
		{"truncated", secret, signedHeader(docTimestamp, docSignature[:20]), docBody, signedAt, ivr.ErrBadSignature},
		{"no signature", secret, signedHeader(docTimestamp), docBody, signedAt, ivr.ErrNoSignature},
		{"no v1", secret, signedHeader(docTimestamp, "v0=abc"), docBody, signedAt, ivr.ErrNoSignature},
		{"no timestamp", secret, http.Header{ivr.HeaderSignature: {docSignature}}, docBody, signedAt, ivr.ErrNoSignature},
		{"signed timestamp", secret, http.Header{ivr.HeaderTimestamp: {"+1767268800"}, ivr.HeaderSignature: {docSignature}}, docBody, signedAt, ivr.ErrNoSignature},
		{"timestamp not a number", secret, http.Header{ivr.HeaderTimestamp: {"soon"}, ivr.HeaderSignature: {docSignature}}, docBody, signedAt, ivr.ErrNoSignature},
		{"empty secret", nil, good, docBody, signedAt, ivr.ErrNoSignature},
	} {
		require.ErrorIs(t, ivr.VerifySignature(tc.secret, tc.header, []byte(tc.body), tc.now, 0), tc.want, tc.name)
	}
}

func TestCheckWebhookSecret(t *testing.T) {
	t.Parallel()
	require.Error(t, ivr.CheckWebhookSecret(nil))
	require.Error(t, ivr.CheckWebhookSecret([]byte("short")))
	require.NoError(t, ivr.CheckWebhookSecret([]byte("0123456789abcdef")))
}

// TestWebhookSigned: the receiver verifies the request it got with the
// tenant's secret, as an integrator would.
func TestWebhookSigned(t *testing.T) {
	t.Parallel()
	type received struct {
		header http.Header
		body   []byte
	}
	got := make(chan received, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- received{r.Header.Clone(), body}
		_, _ = io.WriteString(w, `{"next": "sales"}`)
	}))
	t.Cleanup(srv.Close)
	b := setup(t, "1")
	b.runner.WebhookSecret = func(tenant string) []byte {
		return map[string][]byte{"t1": []byte("tenant-one-secret-0123"), "t2": []byte("tenant-two-secret-0123")}[tenant]
	}
	res := b.run(t, webhookFlow(srv.URL, 2000, true))
	require.Equal(t, ivr.OutcomeCompleted, res.Outcome, res.Err)
	require.Equal(t, "sales", res.Disposition)

	var r received
	select {
	case r = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the webhook was not called")
	}
	require.Equal(t, strconv.FormatInt(b.now.Unix(), 10), r.header.Get(ivr.HeaderTimestamp))
	require.Regexp(t, `^v1=[0-9a-f]{64}$`, r.header.Get(ivr.HeaderSignature))
	require.NoError(t, ivr.VerifySignature([]byte("tenant-one-secret-0123"), r.header, r.body, b.now.Add(time.Second), 0))
	require.ErrorIs(t, ivr.VerifySignature([]byte("tenant-two-secret-0123"), r.header, r.body, b.now, 0), ivr.ErrBadSignature,
		"signed with the call's tenant's secret")
	require.ErrorIs(t, ivr.VerifySignature([]byte("tenant-one-secret-0123"), r.header, r.body, b.now.Add(time.Hour), 0), ivr.ErrStaleSignature)
}

func TestWebhookWithoutSecretIsNotSent(t *testing.T) {
	t.Parallel()
	for name, secret := range map[string]func(string) []byte{
		"no lookup":        nil,
		"no tenant secret": func(string) []byte { return nil },
		"too short":        ivr.StaticSecret([]byte("short")),
	} {
		_, hits, port := countingServer(t, reply(200, `{"next": "sales"}`))
		b := setup(t, "1")
		b.runner.WebhookSecret = secret
		res := b.run(t, webhookFlow("http://127.0.0.1:"+port+"/hook", 2000, true))
		require.Equal(t, ivr.OutcomeCompleted, res.Outcome, res.Err)
		require.Equal(t, "webhook_failed", res.Disposition, name)
		require.Contains(t, res.Path[1].Error, "webhook not sent: ", name)
		require.Contains(t, res.Path[1].Error, `tenant "t1"`, name)
		require.Zero(t, hits.Load(), name)
	}
}
