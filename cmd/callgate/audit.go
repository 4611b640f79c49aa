package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/postgres"
)

const auditUsage = `usage: callgate audit verify [--database-url URL]

verify walks the whole audit log in seq order and checks its hash chain: it
reports the first edited, removed or reordered entry and fails, or prints the
number of entries and the head hash (keep it: an entry removed from the end
later can only be noticed against a head recorded before).`

// runAudit is `callgate audit verify`.
func runAudit(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprintln(stdout, auditUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil
		}
		return errors.New("audit: expected the subcommand verify")
	}
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(stdout)
	dsn := fs.String("database-url", getenv("CALLGATE_DATABASE_URL"), "PostgreSQL URL (CALLGATE_DATABASE_URL)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("audit verify: unexpected argument %q", fs.Arg(0))
	}
	if *dsn == "" {
		*dsn = DefaultConfig().DatabaseURL
	}
	db, err := postgres.Open(ctx, *dsn)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	defer db.Close()
	store := postgres.NewStore(db)
	n, head, err := verifyChain(func(yield func(controller.AuditEntry) error) error {
		return store.WalkAudit(ctx, 0, yield)
	})
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	if n == 0 {
		fmt.Fprintln(stdout, "audit log intact: 0 entries")
		return nil
	}
	fmt.Fprintf(stdout, "audit log intact: %d entries, head seq %d hash %s\n", n, n, hex.EncodeToString(head))
	return nil
}

// ChainBreak is the first place the audit chain does not hold.
type ChainBreak struct {
	Seq     int64  // the entry at which the chain breaks
	Problem string // what is wrong there, and what it means
}

func (b *ChainBreak) Error() string {
	return fmt.Sprintf("audit chain broken at seq %d: %s", b.Seq, b.Problem)
}

// verifyChain checks the audit entries walk yields, which must be the whole
// log in seq order: the first has seq 1 and a zero PrevHash, every next one
// the seq after and the PrevHash equal to the Hash before, and every Hash is
// controller.AuditHash of its entry. It returns how many entries it checked
// and the hash of the last (nil for none); a *ChainBreak for the first entry
// that breaks the chain, or walk's own error.
//
// Each tampering shows as: an edited entry, a hash mismatch at its seq (or,
// if the attacker recomputed its hash, a broken link at the next seq); a
// removed entry, a gap (or, if the attacker renumbered, a broken link); two
// swapped entries, a broken link at the first of them; entries removed from
// the start, a first seq above 1 or a first PrevHash not zero. Entries
// removed from the end leave a valid, shorter chain: compare the head with a
// recorded one.
func verifyChain(walk func(yield func(controller.AuditEntry) error) error) (n int64, head []byte, err error) {
	zero := make([]byte, 32)
	var prev controller.AuditEntry
	err = walk(func(e controller.AuditEntry) error {
		switch {
		case n == 0 && e.Seq != 1:
			return &ChainBreak{e.Seq, fmt.Sprintf("the log starts at seq %d, not 1: %s removed", e.Seq, seqRange(1, e.Seq-1))}
		case n == 0 && !bytes.Equal(e.PrevHash, zero):
			return &ChainBreak{e.Seq, "the first entry's prev_hash is not zero: the head of the log was removed"}
		case n > 0 && e.Seq <= prev.Seq:
			return &ChainBreak{e.Seq, fmt.Sprintf("it comes after seq %d: entries out of order", prev.Seq)}
		case n > 0 && e.Seq != prev.Seq+1:
			return &ChainBreak{prev.Seq + 1, fmt.Sprintf("seq gap between %d and %d: %s removed",
				prev.Seq, e.Seq, seqRange(prev.Seq+1, e.Seq-1))}
		case n > 0 && !bytes.Equal(e.PrevHash, prev.Hash):
			return &ChainBreak{e.Seq, fmt.Sprintf("prev_hash does not match the hash of seq %d: "+
				"linkage broken (an entry was removed, replaced or reordered)", prev.Seq)}
		case !bytes.Equal(e.Hash, controller.AuditHash(e)):
			return &ChainBreak{e.Seq, "hash mismatch: the entry was edited"}
		}
		prev = e
		n++
		return nil
	})
	if err != nil {
		return n, nil, err
	}
	if n == 0 {
		return 0, nil, nil
	}
	return n, prev.Hash, nil
}

// seqRange names the entries from seq a to seq b, with its verb.
func seqRange(a, b int64) string {
	if a == b {
		return fmt.Sprintf("entry %d was", a)
	}
	return fmt.Sprintf("entries %d to %d were", a, b)
}
