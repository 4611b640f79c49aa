package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/callgate/callgate/api"
	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
	"github.com/callgate/callgate/controller/dialer"
	"github.com/callgate/callgate/controller/postgres"
)

// benchNumbers returns n distinct valid New York numbers from a random
// starting exchange, avoiding switchsim's scenario suffixes (so every
// callee answers, holds 1 s scaled and hangs up): the daily cap is per
// number, and runs on the same day must not reuse each other's.
func benchNumbers(n int) []string {
	out := make([]string, 0, n)
	ex := 200 + rand.IntN(700)
	for i := 0; len(out) < n; i++ {
		out = append(out, fmt.Sprintf("+1212%03d%04d", 200+(ex-200+i/8000)%800, 2000+i%8000))
	}
	return out
}

// leadsCSV renders numbers as a lead CSV with a name and two tags.
func leadsCSV(numbers []string) string {
	var b strings.Builder
	b.Grow(len(numbers) * 48)
	b.WriteString("phone,name,tag:region,tag:size,account\n")
	for i, n := range numbers {
		fmt.Fprintf(&b, "%s,Lead %d,%s,%s,A%d\n", n, i, []string{"Nanshan", "Futian"}[i%2], []string{"small", "large"}[i%3%2], i)
	}
	return b.String()
}

// benchCampaigns builds the campaign service over a database, with no
// switch (imports and administration only).
func benchCampaigns(store *postgres.Store) (*dialer.Campaigns, error) {
	policy, err := loadPolicy("lab")
	if err != nil {
		return nil, err
	}
	gate, err := compliance.New(dialer.PolicySource(policy))
	if err != nil {
		return nil, err
	}
	svc, err := dialer.New(dialer.Config{Owner: "bench", Gate: gate, Policy: policy}, store)
	if err != nil {
		return nil, err
	}
	return dialer.NewCampaigns(dialer.CampaignConfig{Logger: slog.New(slog.DiscardHandler)}, store, svc), nil
}

// runBenchLeads measures a lead CSV import: parse and validate every row
// (libphonenumber), then binary COPY into the list, deduplicated.
func runBenchLeads(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench leads", flag.ContinueOnError)
	rows := fs.Int("rows", 1_000_000, "rows in the CSV")
	dsn := fs.String("database-url", getenv("CALLGATE_DATABASE_URL"), "PostgreSQL URL (CALLGATE_DATABASE_URL)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the import to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	stop, err := startCPUProfile(*cpuprofile)
	if err != nil {
		return err
	}
	defer stop()
	if *rows < 1 || *rows > 10_000_000 {
		return errors.New("bench leads: --rows must be between 1 and 10000000")
	}
	if *dsn == "" {
		*dsn = DefaultConfig().DatabaseURL
	}
	if err := postgres.Migrate(ctx, *dsn); err != nil {
		return err
	}
	db, err := postgres.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	store := postgres.NewStore(db)
	keysFile, err := benchKeysFile(getenv)
	if err != nil {
		return err
	}
	// Leads are sealed with the database's keyring, as a controller would.
	if err := (&Main{Config: Config{KeysFile: keysFile}, Logger: slog.New(slog.DiscardHandler)}).openKeys(ctx, store); err != nil {
		return err
	}
	cs, err := benchCampaigns(store)
	if err != nil {
		return err
	}
	numbers := make([]string, *rows)
	for i := range numbers {
		numbers[i] = fmt.Sprintf("+1%03d%03d%04d", 212+i/8_000_000%10*100, 200+i/10000%800, i%10000)
	}
	csv := leadsCSV(numbers)
	list, err := cs.CreateLeadList(ctx, "", fmt.Sprintf("bench %s", time.Now().Format(time.RFC3339)))
	if err != nil {
		return err
	}
	start := time.Now()
	im, err := cs.RunImport(ctx, "", list.ID, strings.NewReader(csv), "", nil)
	if err != nil {
		return err
	}
	took := time.Since(start)
	fmt.Fprintf(stdout, "rows %d (%.1f MB): imported %d, duplicates %d, rejected %d in %s: %.0f rows/s\n",
		im.Rows, float64(len(csv))/1e6, im.Imported, im.Duplicates, im.Rejected, took.Round(time.Millisecond),
		float64(im.Rows)/took.Seconds())
	if im.State != "done" {
		return fmt.Errorf("bench leads: import %s: %s", im.State, im.Error)
	}
	return nil
}

// runBenchCampaign measures campaign dispatch end to end: leads → dispatch
// (row-locked, limits) → durable attempts → claim → dial-time gate →
// originate over ESL → switchsim → events → CDR → settle.
func runBenchCampaign(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench campaign", flag.ContinueOnError)
	leads := fs.Int("leads", 10_000, "leads to call")
	dsn := fs.String("database-url", getenv("CALLGATE_DATABASE_URL"), "PostgreSQL URL (CALLGATE_DATABASE_URL)")
	scale := fs.Float64("time-scale", 0.01, "switchsim time scale")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *leads < 1 || *leads > 100_000 {
		return errors.New("bench campaign: --leads must be between 1 and 100000")
	}
	m, sim, stopStack, err := startBenchStack(ctx, *dsn, *scale, "sofia/gateway/{trunk}/{number}", getenv, stderr, api.RateLimit{})
	if err != nil {
		return err
	}
	defer stopStack()
	cs := m.Campaigns()
	list, err := cs.CreateLeadList(ctx, "", "bench")
	if err != nil {
		return err
	}
	if _, err := cs.RunImport(ctx, "", list.ID, strings.NewReader(leadsCSV(benchNumbers(*leads))), "", nil); err != nil {
		return err
	}
	c, err := cs.CreateCampaign(ctx, controller.Campaign{Name: "bench", ListIDs: []string{list.ID},
		CallerIDs: []string{"+12125550100"}, Purpose: controller.PurposeService,
		MaxConcurrent: 100_000, MaxCPS: 10_000})
	if err != nil {
		return err
	}
	base := sim.Originated()
	start := time.Now()
	if _, err := cs.TransitionCampaign(ctx, "", c.ID, controller.CampaignStart); err != nil {
		return err
	}
	// The bench's campaign must not outlive it in the database it shares.
	defer func() {
		bg := context.WithoutCancel(ctx)
		if _, err := cs.TransitionCampaign(bg, "", c.ID, controller.CampaignStop); err == nil {
			_, _ = cs.TransitionCampaign(bg, "", c.ID, controller.CampaignArchive)
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := sim.WaitOriginated(wctx, base+*leads); err != nil {
		return fmt.Errorf("bench campaign: %d of %d originated: %w", sim.Originated()-base, *leads, err)
	}
	took := time.Since(start)
	fmt.Fprintf(stdout, "campaign of %d leads: all originated in %s: %.0f originations/s (dispatch, dial-time gate, durable state)\n",
		*leads, took.Round(time.Millisecond), float64(*leads)/took.Seconds())
	return nil
}
