package controller

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"time"
)

// Role is what an API token may do.
type Role string

const (
	RoleAdmin   Role = "admin"   // configuration, exports; sees full numbers where the policy allows
	RoleAgent   Role = "agent"   // places calls; sees only the calls and customers assigned to them
	RoleQA      Role = "qa"      // lists and streams recordings, edits tags and dispositions
	RoleAuditor Role = "auditor" // reads the audit log and decision logs, nothing else
)

// SeesFullNumbers reports whether the role is shown phone numbers whole in
// API responses; every other role sees them as ****1234. Today that is
// admin alone, always: this is the one place a policy flag would narrow it
// (DESIGN 1.2, "sees full numbers where the policy allows").
func (r Role) SeesFullNumbers() bool { return r == RoleAdmin }

// Roles lists every role.
func Roles() []Role { return []Role{RoleAdmin, RoleAgent, RoleQA, RoleAuditor} }

// Principal is who a request acts for: the token's role, tenant and (for
// agents) agent.
type Principal struct {
	TokenID  string `json:"token_id"`
	Role     Role   `json:"role"`
	TenantID string `json:"tenant_id"`
	AgentID  string `json:"agent_id,omitempty"`
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal ctx carries, if any.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Token is an API token as stored: never the secret itself, only its hash.
type Token struct {
	ID        string     `json:"id"`
	TenantID  string     `json:"tenant_id"`
	Role      Role       `json:"role"`
	AgentID   string     `json:"agent_id,omitempty"`
	Name      string     `json:"name,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	LastUsed  *time.Time `json:"last_used_at,omitempty"`
}

// TokenStore keeps API tokens by the hash of their secret.
type TokenStore interface {
	// CreateToken stores t with the SHA-256 of its secret and returns it
	// with its ID. Returns EINVALID naming the field for a bad role,
	// tenant or expiry.
	CreateToken(ctx context.Context, t Token, secretHash []byte) (Token, error)
	// TokenBySecretHash returns the token whose secret hashes to h.
	// Returns ENOTFOUND for none (the caller treats revoked and expired
	// tokens as unauthenticated too).
	TokenBySecretHash(ctx context.Context, h []byte) (Token, error)
	// RevokeToken revokes a token at once. Returns ENOTFOUND.
	RevokeToken(ctx context.Context, id string, at time.Time) (Token, error)
	// ListTokens returns the tokens of a tenant ("" for all), newest first.
	ListTokens(ctx context.Context, tenant string) ([]Token, error)
}

// AuditEntry is one line of the append-only, hash-chained audit log. Hash is
// SHA-256 over PrevHash and the entry's canonical encoding; the first
// entry's PrevHash is all zeros. Entries never hold a full phone number.
type AuditEntry struct {
	Seq       int64     `json:"seq"`
	At        time.Time `json:"at"`
	TenantID  string    `json:"tenant_id"`
	TokenID   string    `json:"token_id,omitempty"`
	Role      Role      `json:"role,omitempty"`
	Action    string    `json:"action"`           // e.g. "POST /v1/calls", "recording.stream", "auth.denied"
	Target    string    `json:"target,omitempty"` // the resource, e.g. a call or recording ID
	Outcome   string    `json:"outcome"`          // "ok", "denied", "error"
	Status    int       `json:"status,omitempty"` // the HTTP status, for requests
	RequestID string    `json:"request_id,omitempty"`
	Detail    string    `json:"detail,omitempty"` // masked
	PrevHash  []byte    `json:"prev_hash"`
	Hash      []byte    `json:"hash"`
}

// AuditLog appends to and reads the audit log.
type AuditLog interface {
	// AppendAudit adds e at the end of the log (Seq, PrevHash and Hash are
	// set by the log) and returns it. Appends are serialised: the chain
	// never forks.
	AppendAudit(ctx context.Context, e AuditEntry) (AuditEntry, error)
	// ListAudit returns up to limit entries after seq afterSeq, oldest
	// first, of a tenant ("" for every tenant).
	ListAudit(ctx context.Context, tenant string, afterSeq int64, limit int) ([]AuditEntry, error)
}

// AuditHash is the hash an entry must carry: SHA-256 over its PrevHash and
// the canonical encoding of its other fields (Hash excluded; At in UTC with
// nanoseconds). Appending and verifying use this one function.
func AuditHash(e AuditEntry) []byte {
	canon := struct {
		Seq       int64  `json:"seq"`
		At        string `json:"at"`
		TenantID  string `json:"tenant_id"`
		TokenID   string `json:"token_id"`
		Role      Role   `json:"role"`
		Action    string `json:"action"`
		Target    string `json:"target"`
		Outcome   string `json:"outcome"`
		Status    int    `json:"status"`
		RequestID string `json:"request_id"`
		Detail    string `json:"detail"`
	}{e.Seq, e.At.UTC().Format(time.RFC3339Nano), e.TenantID, e.TokenID, e.Role, e.Action, e.Target,
		e.Outcome, e.Status, e.RequestID, e.Detail}
	b, _ := json.Marshal(canon) // cannot fail: strings and numbers only
	h := sha256.New()
	h.Write(e.PrevHash)
	h.Write(b)
	return h.Sum(nil)
}

// Error codes of authentication and authorisation. The HTTP layer maps them
// to 401 and 403.
const (
	EUNAUTHORIZED = "unauthorized" // no valid credentials: missing, unknown, revoked or expired token
	EFORBIDDEN    = "forbidden"    // authenticated, but the role may not do this
)

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool {
	switch r {
	case RoleAdmin, RoleAgent, RoleQA, RoleAuditor:
		return true
	}
	return false
}

// TokenSecretPrefix starts every API token secret, so a leaked one is easy
// to recognise (secret scanners, logs).
const TokenSecretPrefix = "cg_"

// NewTokenSecret returns a new API token secret: TokenSecretPrefix and 32
// random bytes in unpadded base64url. It is shown once; only its
// HashTokenSecret is stored.
func NewTokenSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24
	return TokenSecretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// HashTokenSecret is what a TokenStore keeps of a secret: its SHA-256.
func HashTokenSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Usable reports whether t authenticates at now: not revoked, not expired.
func (t Token) Usable(now time.Time) bool {
	if t.RevokedAt != nil && !now.Before(*t.RevokedAt) {
		return false
	}
	return t.ExpiresAt == nil || now.Before(*t.ExpiresAt)
}

// Principal returns who a request authenticated with t acts for.
func (t Token) Principal() Principal {
	return Principal{TokenID: t.ID, Role: t.Role, TenantID: t.TenantID, AgentID: t.AgentID}
}

// TokenToucher records when a token was last used. A TokenStore may
// implement it; the API calls it at most once a minute per token.
type TokenToucher interface {
	// TouchToken sets the token's last use to at unless it is already
	// within a minute of it. Returns ENOTFOUND for an unknown token.
	TouchToken(ctx context.Context, id string, at time.Time) error
}

// PersonalData seals personal data (phone numbers first) before it is
// stored and opens it when it is read; a store never writes such a value in
// the clear and looks values up by their blind index. controller/pii
// implements it with the keyring's keys.
type PersonalData interface {
	// NumberIndex returns the keyed hash a number is looked up by.
	NumberIndex(number string) ([]byte, error)
	// Seal encrypts value as field; Open reverses it, failing if the
	// sealed value was altered or sealed as another field.
	Seal(field, value string) ([]byte, error)
	Open(field string, sealed []byte) (string, error)
}
