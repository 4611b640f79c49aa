package ivr

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Webhook signature headers and limits.
//
// Every webhook request callgate sends is signed with the tenant's webhook
// secret, so the receiver can tell it came from callgate and was not
// replayed. Two headers carry the signature:
//
//	Callgate-Timestamp: 1767268800
//	Callgate-Signature: v1=92b9e72ecb776c0c7b5d580eb650d12014818150b1b9860b715d69011ab6c3b9
//
// The timestamp is when the request was signed, in decimal Unix seconds.
// The v1 signature is the lowercase hex HMAC-SHA256, keyed with the secret,
// of the timestamp exactly as sent, a ".", and the raw request body byte for
// byte (the example is secret "whsec_0123456789abcdef", body
// {"call_id":"c1"}). To verify a request, a receiver:
//
//  1. reads the raw body before parsing it;
//  2. computes the HMAC over "<Callgate-Timestamp>.<body>" with its secret
//     and compares it, in constant time, with each v1= value of
//     Callgate-Signature (comma-separated; more than one may appear while a
//     secret is rotated; other schemes are ignored) — one must match;
//  3. refuses a timestamp further than a tolerance (5 minutes) from its
//     clock, so a captured request cannot be replayed later.
//
// VerifySignature does all three; in a shell,
// printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$secret".
const (
	HeaderTimestamp           = "Callgate-Timestamp"
	HeaderSignature           = "Callgate-Signature"
	DefaultSignatureTolerance = 5 * time.Minute
	MinWebhookSecretLen       = 16 // bytes
	signatureScheme           = "v1"
)

// Errors of VerifySignature.
var (
	ErrNoSignature    = errors.New("webhook signature: missing or malformed Callgate-Timestamp or Callgate-Signature")
	ErrStaleSignature = errors.New("webhook signature: timestamp outside the tolerance (a replay?)")
	ErrBadSignature   = errors.New("webhook signature: no v1 signature matches")
)

// StaticSecret returns a secret lookup that gives every tenant secret.
func StaticSecret(secret []byte) func(tenant string) []byte {
	s := append([]byte(nil), secret...)
	return func(string) []byte { return s }
}

// CheckWebhookSecret returns an error if secret is too short to sign with
// (under MinWebhookSecretLen bytes).
func CheckWebhookSecret(secret []byte) error {
	if len(secret) < MinWebhookSecretLen {
		return fmt.Errorf("a webhook secret must be at least %d bytes, got %d", MinWebhookSecretLen, len(secret))
	}
	return nil
}

// SignWebhook returns the Callgate-Signature value ("v1=<hex>") of body
// sent at t.
func SignWebhook(secret []byte, t time.Time, body []byte) string {
	return signatureScheme + "=" + hex.EncodeToString(mac(secret, strconv.FormatInt(t.Unix(), 10), body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// VerifySignature checks a webhook request's signature headers against
// its raw body, as a receiver does. tolerance bounds how far the
// timestamp may be from now either way (0: DefaultSignatureTolerance).
// Returns ErrNoSignature when the headers are missing or malformed (or
// secret is empty), ErrStaleSignature for a timestamp outside the
// tolerance, ErrBadSignature when no v1 signature matches.
func VerifySignature(secret []byte, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultSignatureTolerance
	}
	ts := header.Get(HeaderTimestamp)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if len(secret) == 0 || err != nil || ts == "" || ts[0] == '+' || ts[0] == '-' || len(header.Values(HeaderSignature)) == 0 {
		return ErrNoSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStaleSignature
	}
	want := mac(secret, ts, body)
	found := false
	for _, v := range header.Values(HeaderSignature) {
		for part := range strings.SplitSeq(v, ",") {
			scheme, sig, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok || scheme != signatureScheme {
				continue
			}
			found = true
			got, err := hex.DecodeString(sig)
			if err == nil && hmac.Equal(got, want) {
				return nil
			}
		}
	}
	if !found {
		return ErrNoSignature
	}
	return ErrBadSignature
}
