package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/postgres"
)

const tokenUsage = `usage:
  callgate token create --role admin|agent|qa|auditor --tenant T [--agent A] [--name N] [--expires 720h]
  callgate token revoke <id>
  callgate token list [--tenant T]
Each takes --database-url (CALLGATE_DATABASE_URL). The secret is printed
once, by create; only its SHA-256 is stored.`

// tokenSyncTimeout bounds how long `token revoke` waits for running
// controllers to drop their cached tokens.
const tokenSyncTimeout = 10 * time.Second

// runTokens is `callgate token create|revoke|list`. It needs only the
// database, not the serve configuration.
func runTokens(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("token: say create, revoke or list\n" + tokenUsage)
	}
	fs := flag.NewFlagSet("token "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dsn := fs.String("database-url", getenv("CALLGATE_DATABASE_URL"), "PostgreSQL URL (CALLGATE_DATABASE_URL)")
	var run func(store *postgres.Store) error
	switch args[0] {
	case "create":
		role := fs.String("role", "", "admin, agent, qa or auditor (required)")
		tenant := fs.String("tenant", "", "the tenant the token acts for (required)")
		agent := fs.String("agent", "", "the agent an agent token acts as (required for --role agent)")
		name := fs.String("name", "", "a label for people")
		expires := fs.Duration("expires", 0, "lifetime, e.g. 720h (0: never expires)")
		run = func(store *postgres.Store) error {
			if *expires < 0 {
				return errors.New("token create: --expires must not be negative")
			}
			t := controller.Token{Role: controller.Role(*role), TenantID: *tenant, AgentID: *agent, Name: *name}
			if *expires > 0 {
				at := time.Now().Add(*expires)
				t.ExpiresAt = &at
			}
			secret := controller.NewTokenSecret()
			t, err := store.CreateToken(ctx, t, controller.HashTokenSecret(secret))
			if err != nil {
				return fmt.Errorf("token create: %w", flagError(err))
			}
			fmt.Fprintf(stdout, "id:     %s\nrole:   %s\ntenant: %s\n", t.ID, t.Role, t.TenantID)
			if t.AgentID != "" {
				fmt.Fprintf(stdout, "agent:  %s\n", t.AgentID)
			}
			if t.ExpiresAt != nil {
				fmt.Fprintf(stdout, "expires: %s\n", t.ExpiresAt.UTC().Format(time.RFC3339))
			}
			fmt.Fprintf(stdout, "secret: %s\n(shown once: store it now; it cannot be recovered)\n", secret)
			return nil
		}
	case "revoke":
		run = func(store *postgres.Store) error {
			if fs.NArg() != 1 {
				return errors.New("token revoke: give the token's id\n" + tokenUsage)
			}
			t, err := store.RevokeToken(ctx, fs.Arg(0), time.Now())
			if err != nil {
				return fmt.Errorf("token revoke: %w", err)
			}
			fmt.Fprintf(stdout, "revoked %s (%s, tenant %s) at %s\n", t.ID, t.Role, t.TenantID, t.RevokedAt.UTC().Format(time.RFC3339))
			// Running controllers cache verified tokens: wait until each
			// has dropped its cache, so the token fails everywhere now.
			sctx, cancel := context.WithTimeout(ctx, tokenSyncTimeout)
			defer cancel()
			synced, err := store.SyncTokenCaches(sctx)
			if err != nil {
				return fmt.Errorf("token revoke: the revocation is stored, but %w; "+
					"they stop accepting the token when their cache entry expires (at most %s)", err, postgres.DefaultTokenCacheTTL)
			}
			fmt.Fprintf(stdout, "in effect on every running controller (%d)\n", synced.Confirmed)
			return nil
		}
	case "list":
		tenant := fs.String("tenant", "", "only this tenant's tokens")
		run = func(store *postgres.Store) error {
			list, err := store.ListTokens(ctx, *tenant)
			if err != nil {
				return fmt.Errorf("token list: %w", err)
			}
			printTokens(stdout, list, time.Now())
			return nil
		}
	default:
		return fmt.Errorf("token: unknown subcommand %q\n%s", args[0], tokenUsage)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("token %s: %w\n%s", args[0], err, tokenUsage)
	}
	if args[0] != "revoke" && fs.NArg() > 0 {
		return fmt.Errorf("token %s: unexpected argument %q", args[0], fs.Arg(0))
	}
	if *dsn == "" {
		*dsn = DefaultConfig().DatabaseURL
	}
	db, err := postgres.Open(ctx, *dsn)
	if err != nil {
		return fmt.Errorf("token %s: opening database: %w", args[0], err)
	}
	defer db.Close()
	return run(postgres.NewStore(db))
}

// flagError names the command-line flag behind a store's field error.
func flagError(err error) error {
	if f := controller.ErrorField(err); f != "" {
		return fmt.Errorf("--%s: %s", f, controller.ErrorMessage(err))
	}
	return err
}

// printTokens writes one line per token: never a secret (none is stored).
func printTokens(w io.Writer, list []controller.Token, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTENANT\tROLE\tAGENT\tNAME\tSTATUS\tCREATED\tLAST USED")
	for _, t := range list {
		status := "active"
		switch {
		case t.RevokedAt != nil && !now.Before(*t.RevokedAt):
			status = "revoked"
		case t.ExpiresAt != nil && !now.Before(*t.ExpiresAt):
			status = "expired"
		case t.ExpiresAt != nil:
			status = "expires " + t.ExpiresAt.UTC().Format(time.RFC3339)
		}
		last := "never"
		if t.LastUsed != nil {
			last = t.LastUsed.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.TenantID, t.Role, dash(t.AgentID),
			dash(strings.ReplaceAll(t.Name, "\t", " ")), status, t.CreatedAt.UTC().Format(time.RFC3339), last)
	}
	_ = tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// issueToken creates a token of role in tenant on the running Main's
// database and returns its secret (the bench and the end-to-end tests call
// the API with it).
func (m *Main) issueToken(ctx context.Context, tenant string, role controller.Role, agentID string) (string, controller.Token, error) {
	if m.db == nil {
		return "", controller.Token{}, errors.New("issuing a token: the database is not open")
	}
	secret := controller.NewTokenSecret()
	t, err := postgres.NewStore(m.db).CreateToken(ctx, controller.Token{TenantID: tenant, Role: role, AgentID: agentID,
		Name: "issued by " + m.Config.InstanceID}, controller.HashTokenSecret(secret))
	if err != nil {
		return "", t, fmt.Errorf("issuing a token: %w", err)
	}
	return secret, t, nil
}
