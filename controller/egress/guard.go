// Package egress guards the URLs callgate itself reaches out to (IVR
// webhooks, and later SMS and CRM hooks) and the ones it hands to a switch
// to fetch (prompt URLs): a URL must use https (http only when allowed),
// name a host on the configured allowlist, and — checked again on every
// connection, on the address actually dialled, so DNS rebinding cannot
// slip past a check made earlier — must not lead to an internal address
// (loopback, link-local and cloud metadata, private ranges, CGNAT, and
// the IPv4-mapped and NAT64 forms of those) unless an admin allowed it.
//
// A Guard is immutable and safe for concurrent use; to change the
// allowlist, build a new one.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrRefused is matched (errors.Is) by every refusal of a Guard, whether
// found when a URL was checked or when a connection was about to be made.
var ErrRefused = errors.New("refused by the egress guard")

// RefusedError says why the guard refused a URL or an address.
type RefusedError struct {
	Target string // the URL's host, or the host:port being dialled
	Reason string // e.g. "host not allowed by the egress allowlist"
}

func (e *RefusedError) Error() string {
	if e.Target == "" {
		return "egress: " + e.Reason
	}
	return "egress: " + e.Target + ": " + e.Reason
}

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Reason returns the reason of the RefusedError in err's chain, or err's
// message if there is none ("" for nil).
func Reason(err error) string {
	var r *RefusedError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &r):
		return r.Reason
	}
	return err.Error()
}

// Reasons of refusal that callers may show as they are.
const (
	ReasonEmptyAllowlist = "no outbound URL is allowed: the egress allowlist is empty"
	ReasonHostNotAllowed = "host not allowed by the egress allowlist"
)

// Resolver returns the addresses of a host name.
type Resolver func(ctx context.Context, host string) ([]netip.Addr, error)

// Config configures a Guard.
type Config struct {
	// Allow lists where outbound URLs may go (env CALLGATE_EGRESS_ALLOW,
	// comma-separated). Each entry is one of:
	//   - a host name, matched exactly (case-insensitive): hooks.example.com
	//   - a wildcard, matching any name under the domain at any depth but
	//     not the domain itself: *.crm.example.com
	//   - an IP address or CIDR: 203.0.113.7, 203.0.113.0/24, 2001:db8::/32.
	//     A URL naming an IP literal must fall inside one; and an address
	//     inside one is dialled even if it is internal (this is how an admin
	//     allows one internal service).
	// A CIDR never allows a host name: names are matched by name.
	// Empty: no outbound URL is allowed at all.
	Allow []string
	// AllowPrivate lets allowlisted hosts resolve to loopback, private
	// (10/8, 172.16/12, 192.168/16, fc00::/7) and CGNAT (100.64/10)
	// addresses (env CALLGATE_EGRESS_ALLOW_PRIVATE). Link-local addresses
	// (169.254/16 with the cloud metadata service, fe80::/10), unspecified,
	// multicast and reserved addresses stay refused unless inside a CIDR
	// of Allow. Default false.
	AllowPrivate bool
	// AllowHTTP lets URLs use plain http (env CALLGATE_EGRESS_ALLOW_HTTP);
	// default false: https only.
	AllowHTTP bool
	// Resolver looks host names up when dialling; nil: the system
	// resolver. Tests use it to make a name resolve where they want.
	Resolver Resolver
	// DialTimeout bounds one connection attempt; 0: 10 s.
	DialTimeout time.Duration
}

// Validate checks the allowlist. Returns EINVALID naming the entry at fault
// ("allow[2]").
func (c Config) Validate() error {
	_, _, _, err := parseAllow(c.Allow)
	return err
}

// Guard checks outbound URLs and the addresses they lead to.
type Guard struct {
	cfg       Config
	hosts     map[string]bool // exact names
	wildcards []string        // ".crm.example.com"
	prefixes  []netip.Prefix
	dialer    net.Dialer
	transport *http.Transport
}

// New returns a Guard for cfg. Returns EINVALID naming a malformed
// allowlist entry.
func New(cfg Config) (*Guard, error) {
	hosts, wildcards, prefixes, err := parseAllow(cfg.Allow)
	if err != nil {
		return nil, err
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	g := &Guard{cfg: cfg, hosts: hosts, wildcards: wildcards, prefixes: prefixes}
	g.dialer = net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second, Control: g.control}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil // a proxy would be dialled instead of the checked address
	t.DialContext = g.DialContext
	t.DialTLSContext = nil
	g.transport = t
	return g, nil
}

// Empty reports whether the allowlist is empty (no URL is allowed).
func (g *Guard) Empty() bool {
	return len(g.hosts) == 0 && len(g.wildcards) == 0 && len(g.prefixes) == 0
}

// CheckURL checks a URL without resolving it: an http or https URL
// (http only with AllowHTTP), without credentials, whose host is on the
// allowlist. Returns a *RefusedError (ErrRefused) saying why not.
func (g *Guard) CheckURL(raw string) error {
	if strings.ContainsAny(raw, "\\ \t\r\n") {
		return &RefusedError{Reason: "the URL must not contain spaces or backslashes"}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return &RefusedError{Reason: "not an absolute http or https URL"}
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !g.cfg.AllowHTTP {
			return &RefusedError{Target: u.Host, Reason: "http is not allowed: only https (AllowHTTP is off)"}
		}
	default:
		return &RefusedError{Target: u.Host, Reason: fmt.Sprintf("scheme %q is not allowed: only https", u.Scheme)}
	}
	if u.User != nil {
		return &RefusedError{Target: u.Host, Reason: "credentials in the URL are not allowed"}
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return &RefusedError{Target: u.Host, Reason: "the port must be 1 to 65535"}
		}
	}
	return g.checkHost(u.Hostname())
}

// CheckResolved is CheckURL, then resolves the URL's host and checks every
// address it has as a connection would. It is for URLs another system
// fetches (a switch fetching a prompt): callgate cannot guard that
// connection, so this narrows, but cannot close, a DNS rebinding window.
func (g *Guard) CheckResolved(ctx context.Context, raw string) error {
	if err := g.CheckURL(raw); err != nil {
		return err
	}
	u, _ := url.Parse(raw)
	host := normalizeHost(u.Hostname())
	ips, err := g.lookup(ctx, host)
	if err != nil {
		return err
	}
	for _, ip := range ips {
		if err := g.CheckIP(ip); err != nil {
			return &RefusedError{Target: host, Reason: "resolved address refused: " + Reason(err)}
		}
	}
	return nil
}

// checkHost matches a URL's host against the allowlist.
func (g *Guard) checkHost(host string) error {
	host = normalizeHost(host)
	if g.Empty() {
		return &RefusedError{Target: host, Reason: ReasonEmptyAllowlist}
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if g.inPrefixes(ip) {
			return nil
		}
		return &RefusedError{Target: host, Reason: ReasonHostNotAllowed}
	}
	if !validName(host) || looksNumeric(host) {
		return &RefusedError{Target: host, Reason: "not a valid host name or IP address"}
	}
	if g.hosts[host] {
		return nil
	}
	for _, w := range g.wildcards {
		if strings.HasSuffix(host, w) {
			return nil
		}
	}
	return &RefusedError{Target: host, Reason: ReasonHostNotAllowed}
}

// CheckIP checks an address about to be dialled. Returns a *RefusedError
// naming its kind ("127.0.0.1 is a loopback address …").
func (g *Guard) CheckIP(ip netip.Addr) error {
	ip = ip.WithZone("")
	if g.inPrefixes(ip) || g.inPrefixes(ip.Unmap()) {
		return nil
	}
	kind, internal := Classify(ip)
	switch {
	case kind == "":
		return nil
	case internal && g.cfg.AllowPrivate:
		return nil
	case internal:
		return &RefusedError{Target: ip.String(), Reason: fmt.Sprintf("%s is a %s address: not in an allowlisted CIDR and AllowPrivate is off", ip, kind)}
	}
	return &RefusedError{Target: ip.String(), Reason: fmt.Sprintf("%s is a %s address: not in an allowlisted CIDR", ip, kind)}
}

// DialContext dials addr ("host:port") for an outbound request: the host
// must be on the allowlist; a name is resolved once and only the addresses
// CheckIP accepts are dialled, each checked again on the socket itself.
// Returns a *RefusedError (ErrRefused) when nothing may be dialled.
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &RefusedError{Target: addr, Reason: "not a host:port address"}
	}
	host = normalizeHost(host)
	if err := g.checkHost(host); err != nil {
		return nil, err
	}
	ips, err := g.lookup(ctx, host)
	if err != nil {
		return nil, err
	}
	var first error
	for _, ip := range ips {
		if !familyOK(network, ip) {
			continue
		}
		if err := g.CheckIP(ip); err != nil {
			if first == nil {
				first = &RefusedError{Target: net.JoinHostPort(host, port), Reason: "resolved address refused: " + Reason(err)}
			}
			continue
		}
		conn, err := g.dialer.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return conn, nil
		}
		if first == nil || errors.Is(first, ErrRefused) {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	if first == nil {
		first = fmt.Errorf("dialing %s: no %s address", addr, network)
	}
	return nil, first
}

// control is the dialer's last word: the socket's address itself.
func (g *Guard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &RefusedError{Target: address, Reason: "not an IP address"}
	}
	return g.CheckIP(ap.Addr())
}

func (g *Guard) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	var (
		ips []netip.Addr
		err error
	)
	if g.cfg.Resolver != nil {
		ips, err = g.cfg.Resolver(ctx, host)
	} else {
		ips, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", host, err)
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("resolving %s: no addresses", host)
	}
	return ips, nil
}

// Transport returns the guard's shared transport: it dials through
// DialContext and uses no proxy. Callers must not change it once in use
// (tests may set TLSClientConfig.RootCAs first).
func (g *Guard) Transport() *http.Transport { return g.transport }

// Client returns a client that checks every request's URL (CheckURL),
// dials through the guard and follows no redirect (a 3xx is the reply).
// Clients of one Guard share its connection pool.
func (g *Guard) Client() *http.Client {
	return &http.Client{
		Transport:     roundTripper{g: g},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type roundTripper struct{ g *Guard }

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := rt.g.CheckURL(req.URL.String()); err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	return rt.g.transport.RoundTrip(req)
}

func familyOK(network string, ip netip.Addr) bool {
	switch network {
	case "tcp4", "udp4":
		return ip.Unmap().Is4()
	case "tcp6", "udp6":
		return ip.Is6() && !ip.Is4In6()
	}
	return true
}
