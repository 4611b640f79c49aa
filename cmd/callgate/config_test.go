package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// envOf returns an environment of m, with a keyring file unless m names
// one (CALLGATE_KEYS "" for none).
func envOf(m map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := m[k]; ok || k != "CALLGATE_KEYS" {
			return v
		}
		if m["CALLGATE_RECORDING_KEYS"] != "" {
			return ""
		}
		return "/etc/callgate/keys.json"
	}
}

func TestLoadConfigPrecedence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "callgate.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`
listen: 127.0.0.1:9000
log_level: debug
switches:
  - name: fs1
    address: 10.0.0.5:8021
    password: from-file
    dial_template: sofia/gateway/{trunk}/{number}
    trunk: carrier
    max_sessions: 200
`), 0o600))
	cfg, err := LoadConfig([]string{"--config", file, "--listen", "127.0.0.1:9100"}, envOf(map[string]string{
		"CALLGATE_LISTEN":       "127.0.0.1:9050",
		"CALLGATE_ESL":          "127.0.0.1:8021",
		"CALLGATE_ESL_PASSWORD": "from-env",
		"CALLGATE_POLICY":       "us",
	}))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9100", cfg.Listen, "flag beats env beats file")
	require.Equal(t, "debug", cfg.LogLevel)
	require.Len(t, cfg.Switches, 1)
	require.Equal(t, "127.0.0.1:8021", cfg.Switches[0].Address, "env replaces the file's switch of the same name")
	require.Equal(t, "from-env", cfg.Switches[0].Password)
	require.Equal(t, 200, cfg.Switches[0].MaxSessions)
}

func TestLoadConfigErrorsNameTheField(t *testing.T) {
	t.Parallel()
	ok := map[string]string{"CALLGATE_ESL": "127.0.0.1:8021", "CALLGATE_ESL_PASSWORD": "s3cret", "CALLGATE_POLICY": "lab"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range ok {
			m[a] = b
		}
		m[k] = v
		return m
	}
	tests := []struct {
		env   map[string]string
		field string
	}{
		{map[string]string{"CALLGATE_POLICY": "lab"}, "switches"},
		{with("CALLGATE_POLICY", ""), "policy"},
		{with("CALLGATE_POLICY", "/nonexistent/policy.json"), "policy"},
		{with("CALLGATE_DEFAULT_REGION", "usa"), "default_region"},
		{with("CALLGATE_ESL_PASSWORD", "ClueCon"), "switches[0].password"},
		{with("CALLGATE_ESL_PASSWORD", ""), "switches[0].password"},
		{with("CALLGATE_ESL", "nohost"), "switches[0].address"},
		{with("CALLGATE_DIAL_TEMPLATE", "loopback/1001"), "switches[0].dial_template"},
		{with("CALLGATE_LISTEN", "8080"), "listen"},
		{with("CALLGATE_LOG_LEVEL", "loud"), "log_level"},
		{with("CALLGATE_MIGRATE", "perhaps"), "migrate"},
		{with("CALLGATE_CLAIM_BATCH", "0"), "dialer.claim_batch"},
		{with("CALLGATE_ARI_URL", "http://10.0.0.7:8088/ari"), "switches[1].url"},
		{with("CALLGATE_ARI_URL", "http://127.0.0.1:8088/ari"), "switches[1].user"},
		{with("CALLGATE_KEYS", ""), "keys_file"},
		{with("CALLGATE_RECORDING_SPOOL_DIR", "/spool"), "media"},
		{with("CALLGATE_PROMPT_DIR", "relative"), "media.prompt_dir"},
		{with("CALLGATE_PURGE_SCHEDULE", "every night"), "media.purge_schedule"},
		{with("CALLGATE_PURGE_SCHEDULE", "@every 24h"), "media.purge_schedule"}, // controllers would not agree on its firings
	}
	for _, tt := range tests {
		_, err := LoadConfig(nil, envOf(tt.env))
		require.Error(t, err, tt.field)
		require.True(t, strings.Contains(err.Error(), tt.field), "%q does not name %s", err, tt.field)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(file, []byte("listn: 127.0.0.1:1\n"), 0o600))
	_, err := LoadConfig([]string{"--config", file}, envOf(ok))
	require.ErrorContains(t, err, "listn")
}

func TestLoadConfigAsterisk(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(nil, envOf(map[string]string{
		"CALLGATE_POLICY": "lab", "CALLGATE_ARI_URL": "http://127.0.0.1:8088/ari",
		"CALLGATE_ARI_USER": "callgate", "CALLGATE_ARI_PASSWORD": "s3cret",
	}))
	require.NoError(t, err)
	require.Len(t, cfg.Switches, 1)
	sw := cfg.Switches[0]
	require.Equal(t, SwitchConfig{Name: "ast1", Kind: "asterisk", URL: "http://127.0.0.1:8088/ari", User: "callgate",
		Password: "s3cret", App: "callgate", DialTemplate: "Local/{number}@callgate-test", MaxSessions: 1000}, sw)
}

func TestLoadConfigTrunks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(trunks string) string {
		file := filepath.Join(dir, "t.yaml")
		require.NoError(t, os.WriteFile(file, []byte(`
switches:
  - name: fs1
    address: 10.0.0.5:8021
    password: s3cret
    dial_template: sofia/gateway/{trunk}/{number}
    trunk: carrier
    trunks:
`+trunks), 0o600))
		return file
	}
	env := envOf(map[string]string{"CALLGATE_POLICY": "lab"})
	cfg, err := LoadConfig([]string{"--config", write(`
      - {name: carrier, max_sessions: 30}
      - {name: mobile-gw, max_sessions: 2, max_cps: 1}
`)}, env)
	require.NoError(t, err)
	require.Equal(t, []TrunkConfig{{Name: "carrier", MaxSessions: 30}, {Name: "mobile-gw", MaxSessions: 2, MaxCPS: 1}},
		cfg.Switches[0].Trunks)
	for trunks, field := range map[string]string{
		"      - {name: a b}\n":                  "switches[0].trunks[0].name",
		"      - {name: x}\n      - {name: x}\n": "switches[0].trunks[1].name",
		"      - {name: x, max_sessions: -1}\n":  "switches[0].trunks[0].max_sessions",
		"      - {name: x, max_cps: -1}\n":       "switches[0].trunks[0].max_cps",
	} {
		_, err := LoadConfig([]string{"--config", write(trunks)}, env)
		require.ErrorContains(t, err, field, trunks)
	}
}
