package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/callgate/callgate/api"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/postgres"
	"github.com/callgate/callgate/controller/recording"
	"github.com/callgate/callgate/controller/switchsim"
)

// runBench measures the whole stack: HTTP API → durable attempt in
// PostgreSQL → claim → ESL originate → switchsim → events → CDR in
// PostgreSQL. It prints calls accepted per second and originations per second.
func runBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	calls := fs.Int("calls", 5000, "calls to place")
	workers := fs.Int("concurrency", 32, "concurrent API clients")
	dsn := fs.String("database-url", getenv("CALLGATE_DATABASE_URL"), "PostgreSQL URL (CALLGATE_DATABASE_URL)")
	scale := fs.Float64("time-scale", 0.01, "switchsim time scale")
	template := fs.String("dial-template", "sofia/gateway/{trunk}/{number}", "endpoint template; loopback/{number}/callgate-test doubles the events (two legs per call)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	stop, err := startCPUProfile(*cpuprofile)
	if err != nil {
		return err
	}
	defer stop()
	if *calls < 1 || *workers < 1 {
		return errors.New("bench: --calls and --concurrency must be positive")
	}
	// The bench is one client hammering with one token on purpose.
	m, sim, stopStack, err := startBenchStack(ctx, *dsn, *scale, *template, getenv, stderr,
		api.RateLimit{Rate: 1e9, Burst: 1 << 30})
	if err != nil {
		return err
	}
	defer stopStack()

	// The bench calls the API as an admin of the default tenant, with a
	// token revoked when it ends.
	secret, tok, err := m.issueToken(ctx, controller.DefaultTenant, controller.RoleAdmin, "")
	if err != nil {
		return err
	}
	defer func() { _, _ = postgres.NewStore(m.db).RevokeToken(context.WithoutCancel(ctx), tok.ID, time.Now()) }()

	base := sim.Originated()
	url := "http://" + m.Addr() + "/v1/calls"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *workers}}
	var next, failed, blocked atomic.Int64
	// Numbers unique to this run: the daily cap is per number, so a run
	// that reused another run's numbers the same day could be blocked.
	// One random exchange of a New York area code, 8 000 numbers in it.
	exchange := 200 + rand.IntN(800)
	if *calls > 8000 {
		return errors.New("bench: at most 8000 calls per run (one exchange of distinct numbers)")
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(*calls); i = next.Add(1) {
				// A distinct valid number per call (the daily cap is per
				// number); switchsim answers, holds 1 s (scaled), hangs up.
				body := fmt.Sprintf(`{"to":"+1212%03d%04d","from":"+12125550100","purpose":"service","timeout_seconds":30}`, exchange, 2000+i-1)
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
				if err != nil {
					failed.Add(1)
					continue
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+secret)
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				var c struct {
					State string `json:"state"`
				}
				err = json.NewDecoder(resp.Body).Decode(&c)
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case err != nil || resp.StatusCode != http.StatusAccepted:
					failed.Add(1)
				case c.State == "blocked":
					blocked.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	accepted := time.Since(start)
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("bench: %d of %d requests failed", f, *calls)
	}
	if b := blocked.Load(); b > 0 {
		return fmt.Errorf("bench: the compliance gate blocked %d of %d calls; the figures would not be comparable", b, *calls)
	}
	// Wait until switchsim has received every originate.
	for sim.Originated()-base < *calls {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	originated := time.Since(start)
	fmt.Fprintf(stdout, "calls:          %d (concurrency %d, switchsim time scale %g)\n", *calls, *workers, *scale)
	fmt.Fprintf(stdout, "accepted:       %.0f calls/s (POST /v1/calls → 202, attempt durable in PostgreSQL)\n", float64(*calls)/accepted.Seconds())
	fmt.Fprintf(stdout, "originated:     %.0f calls/s (first POST → last originate received by the switch)\n", float64(*calls)/originated.Seconds())
	return nil
}

// benchKeysFile returns the keyring a bench's controller uses: CALLGATE_KEYS,
// else make run's (the bench shares its database, and every controller of
// a database needs the same keyring), made or given an index key if needed.
func benchKeysFile(getenv func(string) string) (string, error) {
	path := getenv("CALLGATE_KEYS")
	if path == "" {
		path = getenv("CALLGATE_RECORDING_KEYS")
	}
	if path == "" {
		path = filepath.Join(".data", "media", "keys.json")
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return "", fmt.Errorf("bench: %w", err)
		}
		_, err := recording.GenerateKeyring(path)
		return path, err
	}
	kr, err := recording.LoadKeyring(path)
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	if kr.AddIndexKey() {
		if err := kr.Save(); err != nil {
			return "", fmt.Errorf("bench: %w", err)
		}
	}
	return path, nil
}

// startCPUProfile starts writing a CPU profile to path ("": none) and
// returns what stops it.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// startBenchStack starts a switchsim and a controller on dsn (the local
// default if empty) that dials it through template, under the lab policy,
// with tokenLimit per API token (zero: the default); stop closes both.
func startBenchStack(ctx context.Context, dsn string, scale float64, template string, getenv func(string) string,
	stderr io.Writer, tokenLimit api.RateLimit) (m *Main, sim *switchsim.Sim, stop func(), err error) {
	if dsn == "" {
		dsn = DefaultConfig().DatabaseURL
	}
	const password = "bench-secret"
	sim = switchsim.New(switchsim.Config{Password: password, MaxSessions: 1 << 20, TimeScale: scale})
	if err := sim.Listen("127.0.0.1:0"); err != nil {
		return nil, nil, nil, err
	}
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DatabaseURL = dsn
	if cfg.KeysFile, err = benchKeysFile(getenv); err != nil {
		sim.Close()
		return nil, nil, nil, err
	}
	cfg.LogLevel = "error"
	cfg.Policy = "lab"
	cfg.Dialer.ClaimBatch = 256
	cfg.Switches = []SwitchConfig{{Name: "bench", Kind: "freeswitch", Address: sim.Addr(), Password: password,
		DialTemplate: template, Trunk: "carrier"}}
	m = &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		TokenLimit: tokenLimit}
	if err := m.Run(ctx); err != nil {
		sim.Close()
		return nil, nil, nil, err
	}
	stop = func() { m.Close(); sim.Close() }
	if err := waitConnected(ctx, m); err != nil {
		stop()
		return nil, nil, nil, err
	}
	return m, sim, stop, nil
}

func waitConnected(ctx context.Context, m *Main) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, st := range m.Service().Switches(ctx) {
			if st.Connected {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return controller.Errorf(controller.EUNAVAILABLE, "switch did not connect within 10s")
}
