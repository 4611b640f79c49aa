package main

import (
	"log/slog"
	"path/filepath"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/asterisk"
	"github.com/callgate/callgate/controller/dialer"
	"github.com/callgate/callgate/controller/egress"
	"github.com/callgate/callgate/controller/ivr"
	"github.com/callgate/callgate/controller/recording"
	"github.com/callgate/callgate/controller/schedule"

	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/callgate/callgate/controller/compliance"
	"gopkg.in/yaml.v3"
)

// Config is everything `callgate serve` can be told. Values come from, in
// rising precedence: the defaults below, the YAML file named by --config
// (CALLGATE_CONFIG), CALLGATE_* environment variables, and flags.
type Config struct {
	// Listen is the HTTP API address. Env CALLGATE_LISTEN, flag --listen.
	Listen string `yaml:"listen"`
	// TLSCertFile and TLSKeyFile (PEM) make the API serve TLS 1.2+. Env
	// CALLGATE_TLS_CERT, CALLGATE_TLS_KEY.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// APIRate and APIBurst limit each API token's requests (a second, and
	// at once); 0 takes the defaults (20/s, burst 40). Env CALLGATE_API_RATE,
	// CALLGATE_API_BURST.
	APIRate  float64 `yaml:"api_rate"`
	APIBurst int     `yaml:"api_burst"`
	// AllowPlaintext permits serving the API without TLS on an address that
	// is not loopback (behind a TLS-terminating proxy on the same host or
	// private network). Env CALLGATE_ALLOW_PLAINTEXT.
	AllowPlaintext bool `yaml:"allow_plaintext"`
	// DatabaseURL is the PostgreSQL connection string. Env
	// CALLGATE_DATABASE_URL, flag --database-url.
	DatabaseURL string `yaml:"database_url"`
	// KeysFile is the keyring (JSON, mode 0600, never in the database):
	// phone numbers are sealed at rest with its keys, and recordings use it
	// too. Required; `callgate keys init --file F` creates one, and every
	// controller of a database needs the same file. Env CALLGATE_KEYS;
	// media.keys_file (CALLGATE_RECORDING_KEYS) is taken when it is unset.
	KeysFile string `yaml:"keys_file"`
	// InstanceID names this controller in switch leases and attempt claims;
	// unique per running process. Env CALLGATE_INSTANCE_ID. Default
	// hostname-pid.
	InstanceID string `yaml:"instance_id"`
	// LogLevel is debug, info, warn or error. Env CALLGATE_LOG_LEVEL.
	LogLevel string `yaml:"log_level"`
	// LogFormat is text or json. Env CALLGATE_LOG_FORMAT.
	LogFormat string `yaml:"log_format"`
	// Migrate runs database migrations at start. Env CALLGATE_MIGRATE.
	Migrate bool `yaml:"migrate"`
	// Policy is the compliance policy every attempt is judged by: a preset
	// (cn, us, uk; lab for switchsim demos and tests only) or the path of a
	// policy JSON file. Required: callgate does not guess which law applies.
	// Env CALLGATE_POLICY, flag --policy.
	Policy string `yaml:"policy"`
	// DefaultRegion (ISO 3166 alpha-2, e.g. US) parses numbers given without
	// a leading +; empty requires E.164. Env CALLGATE_DEFAULT_REGION.
	DefaultRegion string `yaml:"default_region"`
	// Switches are the media servers to drive. CALLGATE_ESL (host:port) and
	// CALLGATE_ESL_PASSWORD (or --esl, --esl-password) add or replace one
	// FreeSWITCH named by CALLGATE_ESL_NAME (default fs1); CALLGATE_ARI_URL,
	// CALLGATE_ARI_USER, CALLGATE_ARI_PASSWORD and CALLGATE_ARI_APP (default
	// callgate) one Asterisk named by CALLGATE_ARI_NAME (default ast1), dialling
	// through CALLGATE_ARI_DIAL_TEMPLATE (default Local/{number}@callgate-test).
	Switches []SwitchConfig `yaml:"switches"`
	// Dialer tunes origination.
	Dialer DialerConfig `yaml:"dialer"`
	// AllowedVariables are channel variables API clients may set besides
	// cg_* ones. Never list variables that act on the switch (api_on_answer,
	// rtp_secure_media, effective_caller_id_number…). Env
	// CALLGATE_ALLOWED_VARIABLES, comma separated.
	AllowedVariables []string `yaml:"allowed_variables"`
	// Media configures IVR prompts and call recordings.
	Media MediaConfig `yaml:"media"`
	// CallRetentionDays is how long call data (the call, its events,
	// attempt and decisions, flow run) is kept after the call ended; the
	// purge runs on media.purge_schedule. Consent evidence is kept at least
	// two years after it stopped being in force, longer if the policy's
	// evidence_retention_days says so. Env CALLGATE_CALL_RETENTION_DAYS.
	CallRetentionDays int `yaml:"call_retention_days"`
}

// MediaConfig says where prompts and recordings live. The switch reads
// prompts and writes recordings through a directory it shares with callgate
// (the same path, or the one given as Switch…Dir when it is mounted
// elsewhere). Recordings are enabled when SpoolDir and a store (StoreDir or
// S3) are set; they use the keyring of Config.KeysFile.
type MediaConfig struct {
	// PromptDir holds uploaded prompts. Env CALLGATE_PROMPT_DIR.
	PromptDir string `yaml:"prompt_dir"`
	// SwitchPromptDir is PromptDir as the switch sees it (default
	// PromptDir). Env CALLGATE_SWITCH_PROMPT_DIR.
	SwitchPromptDir string `yaml:"switch_prompt_dir"`
	// SpoolDir is where the switch writes recordings; a plaintext file
	// lives there only until it is sealed. Env CALLGATE_RECORDING_SPOOL_DIR.
	SpoolDir string `yaml:"spool_dir"`
	// SwitchSpoolDir is SpoolDir as the switch sees it (default SpoolDir).
	// Env CALLGATE_SWITCH_SPOOL_DIR.
	SwitchSpoolDir string `yaml:"switch_spool_dir"`
	// StoreDir is the recording store: encrypted recordings only. Env
	// CALLGATE_RECORDING_STORE_DIR. Not needed with S3.
	StoreDir string `yaml:"store_dir"`
	// S3, when its endpoint is set, is the recording store instead of
	// StoreDir: an existing bucket of an S3-compatible service. Env
	// CALLGATE_S3_ENDPOINT (host:port), _BUCKET, _PREFIX, _ACCESS_KEY,
	// _SECRET_KEY (never logged), _REGION, _PLAIN_HTTP (true to allow http).
	S3 S3Config `yaml:"s3"`
	// KeysFile is the keyring of configurations made before the top-level
	// keys_file, which replaces it (and takes it when unset). Env
	// CALLGATE_RECORDING_KEYS.
	KeysFile string `yaml:"keys_file"`
	// EgressAllow lists the hosts, wildcards (*.crm.example.com) and CIDRs
	// flows may reach (webhooks, prompt URLs); empty: none. Env
	// CALLGATE_EGRESS_ALLOW (comma separated).
	EgressAllow []string `yaml:"egress_allow"`
	// EgressAllowPrivate lets allowed hosts resolve to loopback, private and
	// CGNAT addresses; EgressAllowHTTP allows http as well as https. Env
	// CALLGATE_EGRESS_ALLOW_PRIVATE, CALLGATE_EGRESS_ALLOW_HTTP.
	EgressAllowPrivate bool `yaml:"egress_allow_private"`
	EgressAllowHTTP    bool `yaml:"egress_allow_http"`
	// WebhookSecret signs every webhook request (Callgate-Signature, see
	// controller/ivr/signature.go); at least 16 bytes; without it webhooks
	// are not sent. Env CALLGATE_WEBHOOK_SECRET. Never logged.
	WebhookSecret string `yaml:"webhook_secret"`
	// PurgeSchedule is when the retention purge runs (cron, five fields, in
	// the controller's zone unless prefixed CRON_TZ=Area/City; not @every).
	// Exactly one controller runs each firing, so controllers must agree on
	// the zone. Default "17 3 * * *". Env CALLGATE_PURGE_SCHEDULE.
	PurgeSchedule string `yaml:"purge_schedule"`
}

// S3Config names an S3-compatible bucket (see recording.S3Config).
type S3Config struct {
	Endpoint  string `yaml:"endpoint"`
	Bucket    string `yaml:"bucket"`
	Prefix    string `yaml:"prefix"`
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
	Region    string `yaml:"region"`
	PlainHTTP bool   `yaml:"plain_http"`
}

// RecordingsEnabled reports whether recordings are configured (their keys
// are the keyring's: keys_file).
func (m MediaConfig) RecordingsEnabled() bool {
	return m.SpoolDir != "" && (m.StoreDir != "" || m.S3.Endpoint != "")
}

// SwitchConfig describes one media server.
type SwitchConfig struct {
	// Name identifies the switch in the API and in leases.
	Name string `yaml:"name"`
	// Kind is "freeswitch" (ESL) or "asterisk" (ARI).
	Kind string `yaml:"kind"`
	// Address is the ESL host:port (freeswitch); keep it on loopback or a
	// private link.
	Address string `yaml:"address"`
	// URL is ARI's base URL, http(s)://host:port/ari (asterisk); plain
	// http only to a loopback address.
	URL string `yaml:"url"`
	// User is the ARI user (asterisk).
	User string `yaml:"user"`
	// App is the Stasis application (asterisk); default callgate.
	App string `yaml:"app"`
	// SecureProfile (freeswitch) is the sofia profile with TLS signalling
	// its trunks use; callgate confirms it is running before sending calls
	// whose policy requires TLS and SRTP. Env CALLGATE_SECURE_PROFILE.
	SecureProfile string `yaml:"secure_profile"`
	// SecureTrunk (asterisk) declares the PJSIP trunk of DialTemplate as
	// TLS with SRTP (media_encryption=sdes). Env CALLGATE_ARI_SECURE_TRUNK.
	SecureTrunk string `yaml:"secure_trunk"`
	// Password is the ESL or ARI password; never FreeSWITCH's default.
	Password string `yaml:"password"`
	// DialTemplate builds the endpoint from {number} and {trunk}:
	// production sofia/gateway/{trunk}/{number}; real-switch tests
	// loopback/{number}/callgate-test.
	DialTemplate string `yaml:"dial_template"`
	// Trunk fills {trunk} in DialTemplate: the default trunk, for calls no
	// routing rule sends to another.
	Trunk string `yaml:"trunk"`
	// Trunks are the trunks routing rules may send calls through, each
	// with its own limits; listing Trunk here gives the default trunk
	// limits. They need {trunk} in DialTemplate. YAML only: no
	// environment variable sets a list of trunks.
	Trunks []TrunkConfig `yaml:"trunks"`
	// MaxSessions caps callgate's concurrent calls on this switch (0: none).
	MaxSessions int `yaml:"max_sessions"`
	// MaxCPS caps originations per second on this switch (0: none).
	MaxCPS int `yaml:"max_cps"`
}

// TrunkConfig is one trunk of a switch and its limits, which hold within
// the switch's own.
type TrunkConfig struct {
	// Name fills {trunk} in the switch's DialTemplate: 1-64 letters,
	// digits, _ . or -.
	Name string `yaml:"name"`
	// MaxSessions caps callgate's concurrent calls on this trunk (0: none).
	MaxSessions int `yaml:"max_sessions"`
	// MaxCPS caps originations per second on this trunk (0: none).
	MaxCPS int `yaml:"max_cps"`
}

// trunkNameRE is a trunk's name (the drivers check the same).
var trunkNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// checkTrunks reports the first bad trunk as the field at fault and why.
func (s SwitchConfig) checkTrunks() (field, problem string) {
	names := map[string]bool{}
	for j, t := range s.Trunks {
		f := fmt.Sprintf("trunks[%d]", j)
		switch {
		case !trunkNameRE.MatchString(t.Name):
			return f + ".name", fmt.Sprintf("%q must be 1-64 letters, digits, _ . or -", t.Name)
		case names[t.Name]:
			return f + ".name", fmt.Sprintf("%q is listed twice", t.Name)
		case t.MaxSessions < 0:
			return f + ".max_sessions", "must not be negative"
		case t.MaxCPS < 0:
			return f + ".max_cps", "must not be negative"
		case !strings.Contains(s.DialTemplate, "{trunk}"):
			return "trunks", fmt.Sprintf("need {trunk} in dial_template %q", s.DialTemplate)
		}
		names[t.Name] = true
	}
	return "", ""
}

// limits are the dialer's limits for the switch and its trunks.
func (s SwitchConfig) limits() dialer.SwitchLimits {
	l := dialer.SwitchLimits{MaxSessions: s.MaxSessions, MaxCPS: s.MaxCPS, DefaultTrunk: s.Trunk}
	for _, t := range s.Trunks {
		l.Trunks = append(l.Trunks, dialer.TrunkLimits{Name: t.Name, MaxSessions: t.MaxSessions, MaxCPS: t.MaxCPS})
	}
	return l
}

// trunkNames are the names of the switch's listed trunks.
func (s SwitchConfig) trunkNames() []string {
	out := make([]string, 0, len(s.Trunks))
	for _, t := range s.Trunks {
		out = append(out, t.Name)
	}
	return out
}

// DialerConfig tunes the origination loop.
type DialerConfig struct {
	// ClaimBatch is how many due attempts one claim takes. Env CALLGATE_CLAIM_BATCH.
	ClaimBatch int `yaml:"claim_batch"`
	// DefaultTimeout is the ring timeout when a request names none.
	DefaultTimeout time.Duration `yaml:"default_timeout"`
	// LeaseTTL is how long a switch lease lasts without renewal.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// HeartbeatInterval is how often each ESL link is probed.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
}

// keysFile returns the keyring file: keys_file, or media.keys_file from
// configurations made before keys_file.
func (c Config) keysFile() string {
	if c.KeysFile != "" {
		return c.KeysFile
	}
	return c.Media.KeysFile
}

// defaultESLPassword is FreeSWITCH's well-known default, refused.
const defaultESLPassword = "ClueCon"

// DefaultConfig returns the built-in defaults.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		Listen:      "127.0.0.1:8080",
		DatabaseURL: "postgres://callgate@127.0.0.1:55432/callgate?sslmode=disable",
		InstanceID:  fmt.Sprintf("%s-%d", host, os.Getpid()),
		LogLevel:    "info",
		LogFormat:   "text",
		Migrate:     true,
		Dialer: DialerConfig{
			ClaimBatch:        64,
			DefaultTimeout:    30 * time.Second,
			LeaseTTL:          15 * time.Second,
			HeartbeatInterval: 5 * time.Second,
		},
		Media:             MediaConfig{PurgeSchedule: "17 3 * * *"},
		CallRetentionDays: 365,
	}
}

// LoadConfig builds the configuration from args (flags), env and the YAML file.
func LoadConfig(args []string, getenv func(string) string) (Config, error) {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	configPath := fs.String("config", getenv("CALLGATE_CONFIG"), "YAML configuration file (CALLGATE_CONFIG)")
	listen := fs.String("listen", "", "HTTP API address (CALLGATE_LISTEN)")
	dsn := fs.String("database-url", "", "PostgreSQL URL (CALLGATE_DATABASE_URL)")
	esl := fs.String("esl", "", "FreeSWITCH ESL host:port (CALLGATE_ESL)")
	eslPassword := fs.String("esl-password", "", "FreeSWITCH ESL password (CALLGATE_ESL_PASSWORD)")
	logLevel := fs.String("log-level", "", "debug|info|warn|error (CALLGATE_LOG_LEVEL)")
	policy := fs.String("policy", "", "compliance policy: cn, us, uk, lab or a JSON file (CALLGATE_POLICY)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if *configPath != "" {
		b, err := os.ReadFile(*configPath)
		if err != nil {
			return cfg, fmt.Errorf("config: reading %s: %w", *configPath, err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			return cfg, fmt.Errorf("config: %s: %w", *configPath, err)
		}
	}
	str := func(dst *string, env, flagVal string) {
		if v := getenv(env); v != "" {
			*dst = v
		}
		if flagVal != "" {
			*dst = flagVal
		}
	}
	str(&cfg.Listen, "CALLGATE_LISTEN", *listen)
	str(&cfg.TLSCertFile, "CALLGATE_TLS_CERT", "")
	str(&cfg.TLSKeyFile, "CALLGATE_TLS_KEY", "")
	if v := getenv("CALLGATE_ALLOW_PLAINTEXT"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return cfg, fmt.Errorf("config: allow_plaintext (CALLGATE_ALLOW_PLAINTEXT): %q is not a boolean", v)
		}
		cfg.AllowPlaintext = b
	}
	str(&cfg.DatabaseURL, "CALLGATE_DATABASE_URL", *dsn)
	str(&cfg.KeysFile, "CALLGATE_KEYS", "")
	str(&cfg.InstanceID, "CALLGATE_INSTANCE_ID", "")
	str(&cfg.LogLevel, "CALLGATE_LOG_LEVEL", *logLevel)
	str(&cfg.LogFormat, "CALLGATE_LOG_FORMAT", "")
	str(&cfg.Policy, "CALLGATE_POLICY", *policy)
	str(&cfg.DefaultRegion, "CALLGATE_DEFAULT_REGION", "")
	str(&cfg.Media.PromptDir, "CALLGATE_PROMPT_DIR", "")
	str(&cfg.Media.SwitchPromptDir, "CALLGATE_SWITCH_PROMPT_DIR", "")
	str(&cfg.Media.SpoolDir, "CALLGATE_RECORDING_SPOOL_DIR", "")
	str(&cfg.Media.SwitchSpoolDir, "CALLGATE_SWITCH_SPOOL_DIR", "")
	str(&cfg.Media.StoreDir, "CALLGATE_RECORDING_STORE_DIR", "")
	str(&cfg.Media.KeysFile, "CALLGATE_RECORDING_KEYS", "")
	str(&cfg.Media.PurgeSchedule, "CALLGATE_PURGE_SCHEDULE", "")
	str(&cfg.Media.WebhookSecret, "CALLGATE_WEBHOOK_SECRET", "")
	if v := getenv("CALLGATE_EGRESS_ALLOW"); v != "" {
		cfg.Media.EgressAllow = strings.Split(v, ",")
	}
	for env, dst := range map[string]*bool{"CALLGATE_EGRESS_ALLOW_PRIVATE": &cfg.Media.EgressAllowPrivate,
		"CALLGATE_EGRESS_ALLOW_HTTP": &cfg.Media.EgressAllowHTTP} {
		if v := getenv(env); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return cfg, fmt.Errorf("config: media (%s): %q is not a boolean", env, v)
			}
			*dst = b
		}
	}
	str(&cfg.Media.S3.Endpoint, "CALLGATE_S3_ENDPOINT", "")
	str(&cfg.Media.S3.Bucket, "CALLGATE_S3_BUCKET", "")
	str(&cfg.Media.S3.Prefix, "CALLGATE_S3_PREFIX", "")
	str(&cfg.Media.S3.AccessKey, "CALLGATE_S3_ACCESS_KEY", "")
	str(&cfg.Media.S3.SecretKey, "CALLGATE_S3_SECRET_KEY", "")
	str(&cfg.Media.S3.Region, "CALLGATE_S3_REGION", "")
	if v := getenv("CALLGATE_S3_PLAIN_HTTP"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return cfg, fmt.Errorf("config: media.s3.plain_http (CALLGATE_S3_PLAIN_HTTP): %q is not a boolean", v)
		}
		cfg.Media.S3.PlainHTTP = b
	}
	if v := getenv("CALLGATE_MIGRATE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return cfg, fmt.Errorf("config: migrate (CALLGATE_MIGRATE): %q is not a boolean", v)
		}
		cfg.Migrate = b
	}
	if v := getenv("CALLGATE_API_RATE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			return cfg, fmt.Errorf("config: api_rate (CALLGATE_API_RATE): %q is not a non-negative number", v)
		}
		cfg.APIRate = f
	}
	if v := getenv("CALLGATE_API_BURST"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return cfg, fmt.Errorf("config: api_burst (CALLGATE_API_BURST): %q is not a non-negative number", v)
		}
		cfg.APIBurst = n
	}
	if v := getenv("CALLGATE_CALL_RETENTION_DAYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return cfg, fmt.Errorf("config: call_retention_days (CALLGATE_CALL_RETENTION_DAYS): %q is not a number", v)
		}
		cfg.CallRetentionDays = n
	}
	if v := getenv("CALLGATE_CLAIM_BATCH"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return cfg, fmt.Errorf("config: dialer.claim_batch (CALLGATE_CLAIM_BATCH): %q is not a number", v)
		}
		cfg.Dialer.ClaimBatch = n
	}
	if v := getenv("CALLGATE_ALLOWED_VARIABLES"); v != "" {
		cfg.AllowedVariables = strings.Split(v, ",")
	}
	addr, pw := getenv("CALLGATE_ESL"), getenv("CALLGATE_ESL_PASSWORD")
	if *esl != "" {
		addr = *esl
	}
	if *eslPassword != "" {
		pw = *eslPassword
	}
	if addr != "" {
		name := getenv("CALLGATE_ESL_NAME")
		if name == "" {
			name = "fs1"
		}
		sc := SwitchConfig{Name: name, Kind: "freeswitch", Address: addr, Password: pw,
			DialTemplate: getenv("CALLGATE_DIAL_TEMPLATE"), MaxSessions: 1000, SecureProfile: getenv("CALLGATE_SECURE_PROFILE")}
		if sc.DialTemplate == "" {
			sc.DialTemplate = "loopback/{number}/callgate-test"
		}
		replaced := false
		for i := range cfg.Switches {
			if cfg.Switches[i].Name == name {
				cfg.Switches[i].Address, cfg.Switches[i].Password = addr, pw
				replaced = true
			}
		}
		if !replaced {
			cfg.Switches = append(cfg.Switches, sc)
		}
	}
	if u := getenv("CALLGATE_ARI_URL"); u != "" {
		sc := SwitchConfig{Name: getenv("CALLGATE_ARI_NAME"), Kind: "asterisk", URL: u, User: getenv("CALLGATE_ARI_USER"),
			Password: getenv("CALLGATE_ARI_PASSWORD"), App: getenv("CALLGATE_ARI_APP"),
			DialTemplate: getenv("CALLGATE_ARI_DIAL_TEMPLATE"), MaxSessions: 1000, SecureTrunk: getenv("CALLGATE_ARI_SECURE_TRUNK")}
		if sc.Name == "" {
			sc.Name = "ast1"
		}
		if sc.DialTemplate == "" {
			sc.DialTemplate = "Local/{number}@callgate-test"
		}
		replaced := false
		for i := range cfg.Switches {
			if cfg.Switches[i].Name == sc.Name {
				cfg.Switches[i].URL, cfg.Switches[i].User, cfg.Switches[i].Password = sc.URL, sc.User, sc.Password
				replaced = true
			}
		}
		if !replaced {
			cfg.Switches = append(cfg.Switches, sc)
		}
	}
	for i := range cfg.Switches {
		if cfg.Switches[i].Kind == "" {
			cfg.Switches[i].Kind = "freeswitch"
		}
		if cfg.Switches[i].Kind == "asterisk" && cfg.Switches[i].App == "" {
			cfg.Switches[i].App = "callgate"
		}
	}
	return cfg, cfg.Validate()
}

// Validate reports the first problem, naming the field at fault.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("config: listen: %q is not host:port", c.Listen)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("config: tls_cert_file and tls_key_file: set both or neither (CALLGATE_TLS_CERT, CALLGATE_TLS_KEY)")
	}
	if c.TLSCertFile == "" && !c.AllowPlaintext && !loopback(c.Listen) {
		return fmt.Errorf("config: listen: %q is not a loopback address and no TLS certificate is set: "+
			"set CALLGATE_TLS_CERT and CALLGATE_TLS_KEY, or CALLGATE_ALLOW_PLAINTEXT=true behind a TLS proxy", c.Listen)
	}
	if c.DatabaseURL == "" {
		return errors.New("config: database_url: required (CALLGATE_DATABASE_URL)")
	}
	if c.InstanceID == "" {
		return errors.New("config: instance_id: required")
	}
	switch {
	case c.keysFile() == "":
		return errors.New("config: keys_file: required: phone numbers are sealed at rest with the keyring's keys " +
			"(CALLGATE_KEYS; create one with `callgate keys init --file F`)")
	case c.KeysFile != "" && c.Media.KeysFile != "" && c.KeysFile != c.Media.KeysFile:
		return errors.New("config: keys_file and media.keys_file name different files: one keyring serves both; set keys_file only")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: log_level: %q is not debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("config: log_format: %q is not text or json", c.LogFormat)
	}
	if c.Policy == "" {
		return errors.New("config: policy: required (CALLGATE_POLICY: cn, us, uk, lab for demos, or a policy JSON file)")
	}
	if _, err := loadPolicy(c.Policy); err != nil {
		return fmt.Errorf("config: policy: %w", err)
	}
	if c.DefaultRegion != "" && (len(c.DefaultRegion) != 2 || strings.ToUpper(c.DefaultRegion) != c.DefaultRegion) {
		return fmt.Errorf("config: default_region: %q is not an ISO 3166 alpha-2 code such as US", c.DefaultRegion)
	}
	if len(c.Switches) == 0 {
		return errors.New("config: switches: at least one switch is required (set CALLGATE_ESL=host:port or a switches list)")
	}
	seen := map[string]bool{}
	for i, s := range c.Switches {
		f := func(field, format string, args ...any) error {
			return fmt.Errorf("config: switches[%d].%s: %s", i, field, fmt.Sprintf(format, args...))
		}
		switch {
		case s.Name == "":
			return f("name", "required")
		case seen[s.Name]:
			return f("name", "%q is used twice", s.Name)
		}
		if field, problem := s.checkTrunks(); field != "" {
			return f(field, "%s", problem)
		}
		switch {
		case s.Kind == "asterisk":
			if err := s.asterisk(nil).Validate(); err != nil {
				return f(strings.ToLower(controller.ErrorField(err)), "%s", controller.ErrorMessage(err))
			}
			seen[s.Name] = true
			continue
		case s.Kind != "freeswitch":
			return f("kind", "%q is not supported (freeswitch or asterisk)", s.Kind)
		case s.Address == "":
			return f("address", "required (ESL host:port)")
		case s.Password == "":
			return f("password", "required (CALLGATE_ESL_PASSWORD)")
		case s.Password == defaultESLPassword:
			return f("password", "FreeSWITCH's default password is refused; set your own in event_socket.conf.xml")
		case !strings.Contains(s.DialTemplate, "{number}"):
			return f("dial_template", "%q must contain {number}", s.DialTemplate)
		case strings.Contains(s.DialTemplate, "{trunk}") && s.Trunk == "":
			return f("trunk", "required by dial_template %q", s.DialTemplate)
		case s.MaxSessions < 0:
			return f("max_sessions", "must not be negative")
		case s.MaxCPS < 0:
			return f("max_cps", "must not be negative")
		}
		if _, _, err := net.SplitHostPort(s.Address); err != nil {
			return f("address", "%q is not host:port", s.Address)
		}
		seen[s.Name] = true
	}
	if c.Dialer.ClaimBatch < 1 || c.Dialer.ClaimBatch > 1000 {
		return fmt.Errorf("config: dialer.claim_batch: %d is not between 1 and 1000", c.Dialer.ClaimBatch)
	}
	if c.Dialer.DefaultTimeout < time.Second {
		return fmt.Errorf("config: dialer.default_timeout: %s is shorter than 1s", c.Dialer.DefaultTimeout)
	}
	if c.Dialer.LeaseTTL < time.Second {
		return fmt.Errorf("config: dialer.lease_ttl: %s is shorter than 1s", c.Dialer.LeaseTTL)
	}
	if c.Dialer.HeartbeatInterval < 100*time.Millisecond {
		return fmt.Errorf("config: dialer.heartbeat_interval: %s is shorter than 100ms", c.Dialer.HeartbeatInterval)
	}
	if c.CallRetentionDays < 1 {
		return fmt.Errorf("config: call_retention_days: %d is less than 1", c.CallRetentionDays)
	}
	return c.Media.validate()
}

// egress builds the outbound URL guard.
func (m MediaConfig) egress() (*egress.Guard, error) {
	allow := make([]string, 0, len(m.EgressAllow))
	for _, a := range m.EgressAllow {
		if a = strings.TrimSpace(a); a != "" {
			allow = append(allow, a)
		}
	}
	return egress.New(egress.Config{Allow: allow, AllowPrivate: m.EgressAllowPrivate, AllowHTTP: m.EgressAllowHTTP})
}

// recording converts the configuration for controller/recording.
func (c S3Config) recording() recording.S3Config {
	return recording.S3Config{Endpoint: c.Endpoint, Bucket: c.Bucket, Prefix: c.Prefix, AccessKey: c.AccessKey,
		SecretKey: c.SecretKey, Region: c.Region, PlainHTTP: c.PlainHTTP}
}

func (m MediaConfig) validate() error {
	dirs := []struct{ field, v string }{{"prompt_dir", m.PromptDir}, {"switch_prompt_dir", m.SwitchPromptDir},
		{"spool_dir", m.SpoolDir}, {"switch_spool_dir", m.SwitchSpoolDir}, {"store_dir", m.StoreDir}, {"keys_file", m.KeysFile}}
	for _, d := range dirs {
		if d.v != "" && !filepath.IsAbs(d.v) {
			return fmt.Errorf("config: media.%s: %q must be an absolute path", d.field, d.v)
		}
	}
	store := m.StoreDir
	if m.S3.Endpoint != "" {
		if m.StoreDir != "" {
			return errors.New("config: media: store_dir and s3 are both set: choose one recording store")
		}
		if err := m.S3.recording().Validate(); err != nil {
			return fmt.Errorf("config: media.s3: %w", err)
		}
		store = "s3"
	}
	set := 0
	for _, v := range []string{m.SpoolDir, store} {
		if v != "" {
			set++
		}
	}
	if set == 1 {
		return errors.New("config: media: recordings need spool_dir and a store (store_dir or s3) together " +
			"(CALLGATE_RECORDING_SPOOL_DIR, CALLGATE_RECORDING_STORE_DIR or CALLGATE_S3_ENDPOINT)")
	}
	if m.SpoolDir != "" && m.SpoolDir == m.StoreDir {
		return errors.New("config: media.store_dir: must not be the spool directory (plaintext and ciphertext stay apart)")
	}
	if _, err := m.egress(); err != nil {
		return fmt.Errorf("config: media.egress_allow: %w", err)
	}
	if m.WebhookSecret != "" {
		if err := ivr.CheckWebhookSecret([]byte(m.WebhookSecret)); err != nil {
			return fmt.Errorf("config: media.webhook_secret: %w", err)
		}
	}
	if err := schedule.CheckSpec(m.PurgeSchedule); err != nil {
		return fmt.Errorf("config: media.purge_schedule: %s", controller.ErrorMessage(err))
	}
	return nil
}

// asterisk is the driver configuration of an Asterisk switch.
func (s SwitchConfig) asterisk(log *slog.Logger) asterisk.Config {
	return asterisk.Config{Name: s.Name, URL: s.URL, User: s.User, Password: s.Password, App: s.App,
		DialTemplate: s.DialTemplate, Trunk: s.Trunk, Trunks: s.trunkNames(), MaxSessions: s.MaxSessions, MaxCPS: s.MaxCPS, Logger: log}
}

// loadPolicy returns a preset by name or the policy in a JSON file, validated.
func loadPolicy(nameOrPath string) (compliance.Policy, error) {
	if p, ok := compliance.Preset(nameOrPath); ok {
		return p, nil
	}
	b, err := os.ReadFile(nameOrPath)
	if err != nil {
		return compliance.Policy{}, fmt.Errorf("%q is neither a preset (%s) nor a readable file: %w",
			nameOrPath, strings.Join(compliance.PresetNames(), ", "), err)
	}
	p, err := compliance.DecodePolicy(b)
	if err == nil {
		err = p.Validate()
	}
	if err != nil {
		return p, fmt.Errorf("%s: %w", nameOrPath, err)
	}
	return p, nil
}
