package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// runBenchDialerCmd runs `callgate bench dialer` with args and returns its
// standard output.
func runBenchDialerCmd(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"bench", "dialer"}, args...), func(string) string { return "" }, &stdout, &stderr)
	require.NoError(t, err, "stderr:\n%s", stderr.String())
	return stdout.String()
}

// TestBenchDialer runs `callgate bench dialer` on a short shift, so that
// the command behind the README's pacing figures keeps working, and
// parses its table.
func TestBenchDialer(t *testing.T) {
	t.Parallel()
	out := runBenchDialerCmd(t, "--hours", "0.5", "--agents", "20")
	t.Log("\n" + out)
	require.Contains(t, out, "command:  callgate bench dialer --agents 20 --answer-rate 0.2 --talk 120s --wrap 10s --hours 0.5 --mode both --target-abandon 0.03 --seed 1\n")
	rows := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 11 && (f[0] == "progressive" || f[0] == "predictive") {
			rows[f[0]] = f
		}
	}
	require.Len(t, rows, 2, "a row for each mode")
	num := func(mode string, col int) float64 {
		v, err := strconv.ParseFloat(rows[mode][col], 64)
		require.NoError(t, err, "%s column %d", mode, col)
		return v
	}
	for mode := range rows {
		require.Equal(t, 20.0, num(mode, 1), "agents")
		require.Positive(t, num(mode, 2), "placed")
		require.LessOrEqual(t, num(mode, 3), num(mode, 2), "answered ≤ placed")
		require.LessOrEqual(t, num(mode, 4), num(mode, 3), "abandoned ≤ answered")
		require.InDelta(t, 100*num(mode, 4)/num(mode, 3), num(mode, 5), 0.01, "abandon %")
		require.Positive(t, num(mode, 6), "utilisation %")
		require.LessOrEqual(t, num(mode, 6), 100.0)
	}
	require.Zero(t, num("progressive", 4), "progressive pacing never abandons")
	require.Greater(t, num("predictive", 6), num("progressive", 6), "predictive keeps agents busier")
}

// TestBenchDialerJSON checks --json, one mode, and that the same seed
// gives the same figures.
func TestBenchDialerJSON(t *testing.T) {
	t.Parallel()
	args := []string{"--hours", "0.25", "--agents", "10", "--mode", "predictive", "--answer-rate", "0.3", "--talk", "60s", "--json"}
	var rep dialerBenchReport
	require.NoError(t, json.Unmarshal([]byte(runBenchDialerCmd(t, args...)), &rep))
	require.Len(t, rep.Results, 1)
	r := rep.Results[0]
	require.Equal(t, "predictive", string(r.Mode))
	require.Equal(t, 10, r.Agents)
	require.InDelta(t, 0.25, r.Hours, 1e-9)
	require.Equal(t, 0.3, rep.Callees.AnswerRate)
	require.Equal(t, 60.0, rep.Callees.TalkMeanSeconds)
	require.Positive(t, r.Placed)
	require.Positive(t, r.WallSeconds)

	var again dialerBenchReport
	require.NoError(t, json.Unmarshal([]byte(runBenchDialerCmd(t, args...)), &again))
	r.WallSeconds, again.Results[0].WallSeconds = 0, 0
	require.Equal(t, r, again.Results[0])
}

func TestBenchDialerRejectsBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--mode", "preview"},
		{"--hours", "0"},
		{"--answer-rate", "1.5"},
		{"--agents", "0"},
		{"--target-abandon", "0.9"},
		{"extra"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"bench", "dialer"}, args...), func(string) string { return "" }, &stdout, &stderr)
		require.Error(t, err, "%v", args)
	}
}
