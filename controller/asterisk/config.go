package asterisk

import (
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/callgate/callgate/controller"
)

// Config configures one Asterisk switch driven over ARI. cmd/callgate fills
// it from a switches entry of kind asterisk, or from CALLGATE_ARI_URL,
// CALLGATE_ARI_USER, CALLGATE_ARI_PASSWORD, CALLGATE_ARI_APP, CALLGATE_ARI_NAME
// and CALLGATE_ARI_DIAL_TEMPLATE.
type Config struct {
	// Name identifies the switch in events and the API.
	Name string
	// URL is ARI's base URL, http(s)://host:port/ari.
	URL string
	// WebSocketURL is the events WebSocket without its query; empty derives
	// ws(s)://host:port/ari/events from URL.
	WebSocketURL string
	// User and Password are the ARI user (ari.conf). The password is never
	// logged.
	User, Password string
	// AllowInsecure permits plain http/ws to a host that is not loopback
	// (credentials and call audio then cross the network in clear).
	AllowInsecure bool
	// App is the Stasis application callgate registers and originates into.
	App string
	// DialTemplate builds the endpoint from the number, e.g.
	// "PJSIP/{number}@trunk", "PJSIP/{number}@{trunk}" or
	// "Local/{number}@cgtest". {number} is required; {trunk} is replaced by
	// the request's trunk (Trunk when it names none).
	DialTemplate string
	// Trunk replaces {trunk} in DialTemplate: the default trunk, for
	// requests that name none. Required when DialTemplate uses {trunk}.
	Trunk string
	// Trunks are the other trunks an OriginateRequest may name (routing
	// rules choose them); a request naming any other trunk is refused.
	// They need {trunk} in DialTemplate. cmd/callgate fills it from
	// switches[].trunks (YAML only).
	Trunks []string
	// MaxSessions caps callgate's concurrent calls on the switch; 0 means no
	// cap.
	MaxSessions int
	// MaxCPS caps originates per second from this driver; 0 means no cap.
	//
	MaxCPS int
	// RequestTimeout bounds every REST request and the WebSocket handshake;
	// default 5s.
	RequestTimeout time.Duration
	// HeartbeatInterval is how often GET /asterisk/ping checks the link;
	// default 10s.
	HeartbeatInterval time.Duration
	// ReconnectMin and ReconnectMax bound the reconnect backoff; defaults
	// 200ms and 30s.
	ReconnectMin, ReconnectMax time.Duration
	// Logger receives the driver's logs; nil discards them.
	Logger *slog.Logger
}

var (
	nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	appRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	userRE = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,64}$`)
	// templateRE is what a dial template may hold around {number}:
	// technology/resource@context with no characters ARI or a dial string
	// would read specially (no ',', '&', '(' or blanks).
	templateRE = regexp.MustCompile(`^[A-Za-z0-9/_.@:+=-]*$`)
	// trunkRE is a trunk name: it fills {trunk} in a dial string.
	trunkRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
)

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.RequestTimeout, 5*time.Second)
	def(&c.HeartbeatInterval, 10*time.Second)
	def(&c.ReconnectMin, 200*time.Millisecond)
	def(&c.ReconnectMax, 30*time.Second)
	if c.WebSocketURL == "" && c.URL != "" {
		if u, err := url.Parse(c.URL); err == nil {
			switch u.Scheme {
			case "https":
				u.Scheme = "wss"
			default:
				u.Scheme = "ws"
			}
			u.Path = strings.TrimSuffix(u.Path, "/") + "/events"
			u.RawQuery = ""
			c.WebSocketURL = u.String()
		}
	}
	return c
}

// Validate checks the configuration (after defaults are applied) and returns
// an EINVALID error naming the first bad field.
func (c Config) Validate() error {
	c = c.withDefaults() // an empty WebSocketURL is derived from URL
	bad := controller.FieldError
	if !nameRE.MatchString(c.Name) {
		return bad("Name", "must be 1-64 letters, digits, _ . or -")
	}
	if err := checkURL(c.URL, "http", "https", c.AllowInsecure); err != nil {
		return bad("URL", "%v", err)
	}
	if err := checkURL(c.WebSocketURL, "ws", "wss", c.AllowInsecure); err != nil {
		return bad("WebSocketURL", "%v", err)
	}
	if !userRE.MatchString(c.User) {
		return bad("User", "must be 1-64 letters, digits or _ . @ -")
	}
	if c.Password == "" || strings.ContainsFunc(c.Password, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return bad("Password", "must be non-empty without control characters")
	}
	if !appRE.MatchString(c.App) {
		return bad("App", "must be 1-64 letters, digits, _ . or -")
	}
	if c.Trunk != "" && !trunkRE.MatchString(c.Trunk) {
		return bad("Trunk", "must be 1-64 letters, digits, _ . or -")
	}
	if err := validateDialTemplate(c.DialTemplate); err != nil {
		return bad("DialTemplate", "%v", err)
	}
	if strings.Contains(c.DialTemplate, "{trunk}") && c.Trunk == "" {
		return bad("Trunk", "required: DialTemplate uses {trunk}")
	}
	for _, t := range c.Trunks {
		if !trunkRE.MatchString(t) {
			return bad("Trunks", "%q must be 1-64 letters, digits, _ . or -", t)
		}
		if !strings.Contains(c.DialTemplate, "{trunk}") {
			return bad("Trunks", "other trunks need {trunk} in DialTemplate")
		}
	}
	if c.MaxSessions < 0 {
		return bad("MaxSessions", "must not be negative")
	}
	if c.MaxCPS < 0 {
		return bad("MaxCPS", "must not be negative")
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"RequestTimeout", c.RequestTimeout}, {"HeartbeatInterval", c.HeartbeatInterval},
		{"ReconnectMin", c.ReconnectMin}, {"ReconnectMax", c.ReconnectMax}} {
		if f.d <= 0 {
			return bad(f.name, "must be positive")
		}
	}
	if c.ReconnectMin > c.ReconnectMax {
		return bad("ReconnectMin", "must not exceed ReconnectMax")
	}
	return nil
}

// checkURL accepts plain or secure URLs of the two schemes given; the plain
// one only to a loopback host unless insecure is allowed.
func checkURL(raw, plain, secure string, insecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errorString("must be " + plain + "(s)://host:port/path without credentials or query")
	}
	switch u.Scheme {
	case secure:
		return nil
	case plain:
		if insecure || isLoopback(u.Hostname()) {
			return nil
		}
		return errorString("plain " + plain + ":// to a non-loopback host needs AllowInsecure")
	}
	return errorString("scheme must be " + plain + " or " + secure)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type errorString string

func (e errorString) Error() string { return string(e) }

// validateDialTemplate requires exactly one {number}, at most one {trunk}
// and nothing a dial string or query could read specially.
func validateDialTemplate(t string) error {
	if strings.Count(t, "{number}") != 1 {
		return errorString("must contain {number} exactly once")
	}
	if strings.Count(t, "{trunk}") > 1 {
		return errorString("must contain {trunk} at most once")
	}
	rest := strings.NewReplacer("{number}", "", "{trunk}", "").Replace(t)
	if !strings.Contains(rest, "/") || !templateRE.MatchString(rest) || len(t) > 256 {
		return errorString("must look like Tech/{number}@context of letters, digits and /_.@:+=-")
	}
	return nil
}
