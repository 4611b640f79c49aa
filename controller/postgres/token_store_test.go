package postgres_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

func TestTokenCreateLookupRevoke(t *testing.T) {
	b := setup(t)
	secret := controller.NewTokenSecret()
	require.Regexp(t, `^cg_[A-Za-z0-9_-]{43}$`, secret)
	exp := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	tok, err := b.store.CreateToken(b.ctx, controller.Token{TenantID: controller.DefaultTenant,
		Role: controller.RoleAgent, AgentID: "alice", Name: "alice's desk", ExpiresAt: &exp},
		controller.HashTokenSecret(secret))
	require.NoError(t, err)
	require.NotEmpty(t, tok.ID)
	require.Equal(t, "alice", tok.AgentID)
	require.WithinDuration(t, exp, *tok.ExpiresAt, 0)

	got, err := b.store.TokenBySecretHash(b.ctx, controller.HashTokenSecret(secret))
	require.NoError(t, err)
	require.Equal(t, tok.ID, got.ID)
	require.Equal(t, controller.RoleAgent, got.Role)
	require.True(t, got.Usable(time.Now()))
	require.False(t, got.Usable(exp))

	_, err = b.store.TokenBySecretHash(b.ctx, controller.HashTokenSecret(secret+"x"))
	requireCode(t, controller.ENOTFOUND, err)

	at := time.Now().Truncate(time.Microsecond)
	revoked, err := b.store.RevokeToken(b.ctx, tok.ID, at)
	require.NoError(t, err)
	require.WithinDuration(t, at, *revoked.RevokedAt, 0)
	again, err := b.store.RevokeToken(b.ctx, tok.ID, at.Add(time.Hour))
	require.NoError(t, err)
	require.WithinDuration(t, at, *again.RevokedAt, 0, "the first revocation stands")
	got, err = b.store.TokenBySecretHash(b.ctx, controller.HashTokenSecret(secret))
	require.NoError(t, err)
	require.False(t, got.Usable(time.Now()), "revoked at once")

	_, err = b.store.RevokeToken(b.ctx, "not-a-uuid", at)
	requireCode(t, controller.ENOTFOUND, err)
	_, err = b.store.RevokeToken(b.ctx, "00000000-0000-0000-0000-000000000000", at)
	requireCode(t, controller.ENOTFOUND, err)
}

func TestTokenCreateRejects(t *testing.T) {
	b := setup(t)
	past := time.Now().Add(-time.Minute)
	h := controller.HashTokenSecret(controller.NewTokenSecret())
	for _, tt := range []struct {
		name  string
		tok   controller.Token
		hash  []byte
		field string
	}{
		{"bad role", controller.Token{TenantID: "default", Role: "root"}, h, "role"},
		{"no tenant", controller.Token{Role: controller.RoleAdmin}, h, "tenant"},
		{"unknown tenant", controller.Token{TenantID: "nope", Role: controller.RoleAdmin}, h, "tenant"},
		{"agent without agent id", controller.Token{TenantID: "default", Role: controller.RoleAgent}, h, "agent"},
		{"admin with agent id", controller.Token{TenantID: "default", Role: controller.RoleAdmin, AgentID: "a"}, h, "agent"},
		{"expired", controller.Token{TenantID: "default", Role: controller.RoleQA, ExpiresAt: &past}, h, "expires"},
		{"short hash", controller.Token{TenantID: "default", Role: controller.RoleQA}, h[:16], "secret_hash"},
	} {
		_, err := b.store.CreateToken(b.ctx, tt.tok, tt.hash)
		requireCode(t, controller.EINVALID, err)
		require.Equal(t, tt.field, controller.ErrorField(err), tt.name)
	}
	_, err := b.store.CreateToken(b.ctx, controller.Token{TenantID: "default", Role: controller.RoleQA}, h)
	require.NoError(t, err)
	_, err = b.store.CreateToken(b.ctx, controller.Token{TenantID: "default", Role: controller.RoleQA}, h)
	requireCode(t, controller.ECONFLICT, err)
}

func TestTokenListAndTouch(t *testing.T) {
	b := setup(t)
	_, err := b.store.DB().Pool().Exec(b.ctx, `INSERT INTO tenants (id) VALUES ('acme')`)
	require.NoError(t, err)
	var ids []string
	for _, tenant := range []string{"default", "acme", "default"} {
		tok, err := b.store.CreateToken(b.ctx, controller.Token{TenantID: tenant, Role: controller.RoleAuditor},
			controller.HashTokenSecret(controller.NewTokenSecret()))
		require.NoError(t, err)
		ids = append(ids, tok.ID)
	}
	all, err := b.store.ListTokens(b.ctx, "")
	require.NoError(t, err)
	require.Len(t, all, 3)
	def, err := b.store.ListTokens(b.ctx, "default")
	require.NoError(t, err)
	require.Len(t, def, 2)
	require.Equal(t, ids[2], def[0].ID, "newest first")
	none, err := b.store.ListTokens(b.ctx, "other")
	require.NoError(t, err)
	require.Empty(t, none)

	now := time.Now().Truncate(time.Microsecond)
	require.NoError(t, b.store.TouchToken(b.ctx, ids[0], now))
	require.NoError(t, b.store.TouchToken(b.ctx, ids[0], now.Add(30*time.Second)))
	list, err := b.store.ListTokens(b.ctx, "default")
	require.NoError(t, err)
	require.WithinDuration(t, now, *list[1].LastUsed, 0, "a second touch within a minute writes nothing")
	require.NoError(t, b.store.TouchToken(b.ctx, ids[0], now.Add(2*time.Minute)))
	list, err = b.store.ListTokens(b.ctx, "default")
	require.NoError(t, err)
	require.WithinDuration(t, now.Add(2*time.Minute), *list[1].LastUsed, 0)
	requireCode(t, controller.ENOTFOUND, b.store.TouchToken(b.ctx, "00000000-0000-0000-0000-000000000000", now))
}

// TestCallAgentID: a call placed with an agent's token keeps its agent, and
// a listing can be narrowed to one agent's calls (what an agent sees).
func TestCallAgentID(t *testing.T) {
	b := setup(t)
	var mine []controller.CallID
	for i, agent := range []string{"alice", "bob", "alice", ""} {
		c := newCall(i)
		c.AgentID = agent
		got, created, err := b.store.CreateCall(b.ctx, c, "")
		require.NoError(t, err)
		require.True(t, created)
		if agent == "alice" {
			mine = append(mine, got.ID)
		}
		back, err := b.store.GetCall(b.ctx, controller.DefaultTenant, got.ID)
		require.NoError(t, err)
		require.Equal(t, agent, back.AgentID)
	}
	page, err := b.store.ListCalls(b.ctx, controller.CallFilter{TenantID: controller.DefaultTenant, AgentID: "alice"})
	require.NoError(t, err)
	require.ElementsMatch(t, mine, ids(page.Calls))
	all, err := b.store.ListCalls(b.ctx, controller.CallFilter{TenantID: controller.DefaultTenant})
	require.NoError(t, err)
	require.Len(t, all.Calls, 4)
}
