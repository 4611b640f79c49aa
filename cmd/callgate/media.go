package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/compliance"
	"github.com/callgate/callgate/controller/ivr"
	"github.com/callgate/callgate/controller/pii"
	"github.com/callgate/callgate/controller/postgres"
	"github.com/callgate/callgate/controller/recording"
)

// startMedia builds the IVR service and, when configured, the recording
// pipeline: it seals what a crash left in the spool before anything else
// runs, and sets the retention purge's recordings step.
func (m *Main) startMedia(ctx context.Context, store *postgres.Store, policy compliance.Policy) error {
	mc := m.Config.Media
	cfg := ivr.ServiceConfig{
		Store:  store,
		Agents: m.agents,
		Switches: func(name string) (controller.Switch, bool) {
			if m.service == nil {
				return nil, false
			}
			return m.service.Switch(name)
		},
		Policy: func(ctx context.Context, tenant string) (compliance.Policy, error) {
			if m.service == nil {
				return policy, nil
			}
			return m.service.Policy(ctx, tenant)
		},
		PromptDir:       mc.PromptDir,
		SwitchPromptDir: mc.SwitchPromptDir,
		SpoolDir:        mc.SpoolDir,
		SwitchSpoolDir:  mc.SwitchSpoolDir,
		Logger:          m.Logger,
		OnRunEnded:      m.OnRunEnded,
		OnSealed:        m.OnSealed,
	}
	guard, err := mc.egress()
	if err != nil {
		return fmt.Errorf("config: media.egress_allow: %w", err)
	}
	cfg.Egress = guard
	if mc.WebhookSecret != "" {
		cfg.WebhookSecret = ivr.StaticSecret([]byte(mc.WebhookSecret))
	}
	if mc.RecordingsEnabled() {
		rec, err := newRecordings(ctx, mc, m.keys.Keyring(), store, policy, m)
		if err != nil {
			return err
		}
		encrypted, removed, err := rec.Sweep(ctx)
		if err != nil {
			return fmt.Errorf("sweeping the recording spool: %w", err)
		}
		if encrypted+removed > 0 {
			m.Logger.Info("recording spool swept after a restart", "sealed", encrypted, "removed", removed)
		}
		cfg.Recordings, cfg.RecordingStore = rec, store
		m.purgeRecordings = rec.Purge
	}
	// The retention purge itself is scheduled with the other off-peak jobs
	// (jobs.go), after this has set purgeRecordings.
	if mc.PromptDir != "" {
		if err := os.MkdirAll(mc.PromptDir, 0o750); err != nil {
			return fmt.Errorf("creating the prompt directory: %w", err)
		}
	}
	svc, err := ivr.NewService(cfg)
	if err != nil {
		return fmt.Errorf("starting IVR flows: %w", err)
	}
	m.media = svc
	return nil
}

// newRecordings opens the recording store, whose data keys keys wraps.
func newRecordings(ctx context.Context, mc MediaConfig, keys *recording.Keyring, store *postgres.Store, policy compliance.Policy, m *Main) (*recording.Service, error) {
	// The switch (another user, sharing a group) writes into the spool;
	// only callgate reads the store.
	if err := os.MkdirAll(mc.SpoolDir, 0o770); err != nil {
		return nil, fmt.Errorf("creating %s: %w", mc.SpoolDir, err)
	}
	var blobs recording.BlobStore = recording.FSStore{Dir: mc.StoreDir}
	if mc.S3.Endpoint != "" {
		s3, err := recording.NewS3Store(ctx, mc.S3.recording())
		if err != nil {
			return nil, fmt.Errorf("config: media.s3: %w", err)
		}
		blobs = s3
	} else if err := os.MkdirAll(mc.StoreDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", mc.StoreDir, err)
	}
	rec, err := recording.New(recording.Config{
		Store:     store,
		Blobs:     blobs,
		Keys:      keys,
		SpoolDir:  mc.SpoolDir,
		Retention: policy.RecordingRetention(),
		CallEnded: store.CallEnded,
		Now:       m.Now,
		Logger:    m.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("starting recordings: %w", err)
	}
	return rec, nil
}

// runKeys is `callgate keys init|rotate`.
func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("keys: say init (create the keyring, or give an older one its index key) or rotate " +
			"(new master key, re-wrap every recording's data key and re-seal every phone number, retire the old keys)")
	}
	switch args[0] {
	case "init":
		fs := flag.NewFlagSet("keys init", flag.ContinueOnError)
		def := getenv("CALLGATE_KEYS")
		if def == "" {
			def = getenv("CALLGATE_RECORDING_KEYS")
		}
		file := fs.String("file", def, "keyring file to create (CALLGATE_KEYS)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *file == "" {
			return errors.New("keys init: --file (or CALLGATE_KEYS) is required")
		}
		if _, err := os.Stat(*file); err == nil {
			// A keyring made before index keys: add one, keep the rest.
			kr, err := recording.LoadKeyring(*file)
			if err != nil {
				return fmt.Errorf("keys init: %w", err)
			}
			if !kr.AddIndexKey() {
				return fmt.Errorf("keys init: %s already exists and has an index key; nothing to do", *file)
			}
			if err := kr.Save(); err != nil {
				return fmt.Errorf("keys init: %w", err)
			}
			fmt.Fprintf(stdout, "added an index key to %s (copy this file to every controller before they start)\n", *file)
			return nil
		}
		kr, err := recording.GenerateKeyring(*file)
		if err != nil {
			return fmt.Errorf("keys init: %w", err)
		}
		fmt.Fprintf(stdout, "created %s with master key %s (mode 0600; back it up: without it no phone number "+
			"or recording can be read; every controller of a database needs this same file)\n", *file, kr.CurrentID())
		return nil
	case "rotate":
		cfg, err := LoadConfig(args[1:], getenv)
		if err != nil {
			return err
		}
		db, err := postgres.Open(ctx, cfg.DatabaseURL)
		if err != nil {
			return fmt.Errorf("keys rotate: opening database: %w", err)
		}
		defer db.Close()
		m := &Main{Config: cfg, Logger: slog.New(slog.DiscardHandler)}
		store := postgres.NewStore(db)
		if err := m.openKeys(ctx, store); err != nil {
			return fmt.Errorf("keys rotate: %w", err)
		}
		kr := m.keys.Keyring()
		reseal := func(ctx context.Context, newID string) (int, error) {
			return store.ResealNumbers(ctx, pii.SealedPrefix(newID))
		}
		var id string
		var n int
		if cfg.Media.RecordingsEnabled() {
			policy, err := loadPolicy(cfg.Policy)
			if err != nil {
				return err
			}
			rec, err := newRecordings(ctx, cfg.Media, kr, store, policy, m)
			if err != nil {
				return err
			}
			id, n, err = rec.RotateKeys(ctx, reseal)
		} else {
			id, n, err = recording.RotateKeyring(ctx, kr, reseal)
		}
		if err != nil {
			return fmt.Errorf("keys rotate: %w (the old keys are kept: run it again)", err)
		}
		fmt.Fprintf(stdout, "new master key %s; %d recording keys and phone numbers moved to it; old keys retired. "+
			"Running controllers load the new keyring before they seal again.\n", id, n)
		return nil
	}
	return fmt.Errorf("keys: unknown command %q (init or rotate)", args[0])
}

// minEvidenceDays is the least time consent evidence is kept after it stops
// being in force, whatever a policy says.
const minEvidenceDays = 730

// purgeData runs (or, dry, reports) the retention purge of call data older
// than the configured call retention and of evidence that stopped being in
// force more than max(policy, two years) ago.
func purgeData(ctx context.Context, store *postgres.Store, cfg Config, policy compliance.Policy, now time.Time, dry bool) (postgres.PurgeReport, error) {
	days := max(policy.EvidenceRetentionDays, minEvidenceDays)
	callsBefore := now.Add(-time.Duration(cfg.CallRetentionDays) * 24 * time.Hour)
	evidenceBefore := now.Add(-time.Duration(days) * 24 * time.Hour)
	return store.PurgeExpired(ctx, callsBefore, evidenceBefore, dry)
}

// runPurge is `callgate purge [--dry-run]`: the retention purge now, or a
// report of what the next one will remove.
func runPurge(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	dry := len(args) > 0 && args[0] == "--dry-run"
	if dry {
		args = args[1:]
	}
	cfg, err := LoadConfig(args, getenv)
	if err != nil {
		return err
	}
	policy, err := loadPolicy(cfg.Policy)
	if err != nil {
		return err
	}
	db, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("purge: opening database: %w", err)
	}
	defer db.Close()
	rep, err := purgeData(ctx, postgres.NewStore(db), cfg, policy, time.Now(), dry)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
