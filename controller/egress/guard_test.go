package egress_test

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/egress"
)

// resolveTo makes every name resolve to addrs.
func resolveTo(addrs ...string) egress.Resolver {
	return func(context.Context, string) ([]netip.Addr, error) {
		out := make([]netip.Addr, len(addrs))
		for i, a := range addrs {
			out[i] = netip.MustParseAddr(a)
		}
		return out, nil
	}
}

func newGuard(t *testing.T, cfg egress.Config) *egress.Guard {
	t.Helper()
	g, err := egress.New(cfg)
	require.NoError(t, err)
	return g
}

// server is an httptest server counting the requests it saw.
type server struct {
	*httptest.Server
	hits atomic.Int64
	port string
}

func setupServer(t *testing.T, tls bool) *server {
	t.Helper()
	s := &server{}
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.hits.Add(1)
		_, _ = io.WriteString(w, "ok")
	})
	if tls {
		s.Server = httptest.NewTLSServer(h)
	} else {
		s.Server = httptest.NewServer(h)
	}
	t.Cleanup(s.Close)
	u, err := url.Parse(s.URL)
	require.NoError(t, err)
	s.port = u.Port()
	return s
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, egress.Config{}.Validate(), "an empty allowlist is valid: it allows nothing")
	require.NoError(t, egress.Config{Allow: []string{"hooks.example.com", "*.crm.example.com", "203.0.113.0/24",
		"2001:db8::/32", "198.51.100.7", "[2001:db8::1]", "HOOKS.Example.COM.", "localhost"}}.Validate())
	for _, bad := range []string{"", " ", "*", "*.com", "a.*.example.com", "https://hooks.example.com", "hooks.example.com:443",
		"hooks.example.com/path", "203.0.113.0/33", "not a host", "2130706433", "127.1", "0x7f.1", "-x.example.com", "fe80::1%eth0"} {
		err := egress.Config{Allow: []string{"ok.example.com", bad}}.Validate()
		require.Error(t, err, "%q", bad)
		require.Equal(t, controller.EINVALID, controller.ErrorCode(err))
		require.Equal(t, "allow[1]", controller.ErrorField(err), "%q", bad)
		_, err = egress.New(egress.Config{Allow: []string{bad}})
		require.Error(t, err, "%q", bad)
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	g := newGuard(t, egress.Config{Allow: []string{"hooks.example.com", "*.crm.example.com", "203.0.113.0/24", "2001:db8::/32", "198.51.100.7"}})
	for _, ok := range []string{
		"https://hooks.example.com/hook",
		"https://HOOKS.example.com./hook?x=1",
		"https://hooks.example.com:8443/hook",
		"https://eu.crm.example.com/x",
		"https://a.b.crm.example.com/x", // any depth under the wildcard
		"https://203.0.113.9/hook",
		"https://198.51.100.7/hook",
		"https://[2001:db8::5]:443/hook",
	} {
		require.NoError(t, g.CheckURL(ok), ok)
	}
	for raw, reason := range map[string]string{
		"https://example.com/":                  egress.ReasonHostNotAllowed,
		"https://other.example.com/":            egress.ReasonHostNotAllowed,
		"https://crm.example.com/":              egress.ReasonHostNotAllowed, // a wildcard does not match its apex
		"https://evilcrm.example.com/":          egress.ReasonHostNotAllowed,
		"https://crm.example.com.evil.test/":    egress.ReasonHostNotAllowed,
		"https://hooks.example.com.evil.test":   egress.ReasonHostNotAllowed,
		"https://203.0.114.1/":                  egress.ReasonHostNotAllowed,
		"https://198.51.100.8/":                 egress.ReasonHostNotAllowed,
		"https://[2001:db9::1]/":                egress.ReasonHostNotAllowed,
		"https://127.0.0.1/":                    egress.ReasonHostNotAllowed,
		"https://[::ffff:127.0.0.1]/":           egress.ReasonHostNotAllowed,
		"https://2130706433/":                   "not a valid host name or IP address",
		"https://0x7f.1/":                       "not a valid host name or IP address",
		"http://hooks.example.com/":             "http is not allowed: only https (AllowHTTP is off)",
		"ftp://hooks.example.com/":              `scheme "ftp" is not allowed: only https`,
		"https://user:pw@hooks.example.com/":    "credentials in the URL are not allowed",
		"https://hooks.example.com:0/":          "the port must be 1 to 65535",
		"/relative":                             "not an absolute http or https URL",
		"https://hooks.example.com\\@10.0.0.1/": "the URL must not contain spaces or backslashes",
	} {
		err := g.CheckURL(raw)
		require.ErrorIs(t, err, egress.ErrRefused, raw)
		require.Equal(t, reason, egress.Reason(err), raw)
	}

	g = newGuard(t, egress.Config{Allow: []string{"hooks.example.com"}, AllowHTTP: true})
	require.NoError(t, g.CheckURL("http://hooks.example.com/hook"))

	empty := newGuard(t, egress.Config{AllowHTTP: true, AllowPrivate: true})
	err := empty.CheckURL("https://hooks.example.com/hook")
	require.ErrorIs(t, err, egress.ErrRefused)
	require.Equal(t, egress.ReasonEmptyAllowlist, egress.Reason(err))
	require.True(t, empty.Empty())
}

func TestClassify(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"127.0.0.1":              "loopback",
		"127.255.0.9":            "loopback",
		"10.1.2.3":               "private",
		"172.16.0.1":             "private",
		"172.31.255.255":         "private",
		"192.168.1.1":            "private",
		"169.254.169.254":        "link-local", // cloud metadata
		"100.64.0.1":             "CGNAT",
		"0.0.0.0":                "unspecified",
		"224.0.0.1":              "multicast",
		"255.255.255.255":        "reserved",
		"::":                     "unspecified",
		"::1":                    "loopback",
		"fe80::1":                "link-local",
		"fe80::1%eth0":           "link-local",
		"fd00::1":                "private",
		"fc00::1":                "private",
		"ff02::1":                "multicast",
		"::ffff:127.0.0.1":       "loopback", // IPv4-mapped
		"::ffff:169.254.169.254": "link-local",
		"::ffff:10.0.0.1":        "private",
		"::ffff:0:a00:1":         "IPv4-embedded private", // IPv4-translated 10.0.0.1
		"64:ff9b::7f00:1":        "IPv4-embedded loopback",
		"64:ff9b::a9fe:a9fe":     "IPv4-embedded link-local",
		"2002:7f00:1::1":         "IPv4-embedded loopback", // 6to4 of 127.0.0.1
		"::127.0.0.1":            "IPv4-compatible",
		"8.8.8.8":                "",
		"172.32.0.1":             "",
		"100.128.0.1":            "",
		"203.0.113.10":           "",
		"2606:4700:4700::1111":   "",
		"::ffff:8.8.8.8":         "",
		"64:ff9b::808:808":       "",
		"2002:808:808::1":        "",
	} {
		kind, _ := egress.Classify(netip.MustParseAddr(addr))
		require.Equal(t, want, kind, addr)
	}
}

func TestCheckIP(t *testing.T) {
	t.Parallel()
	strict := newGuard(t, egress.Config{Allow: []string{"hooks.example.com"}})
	private := newGuard(t, egress.Config{Allow: []string{"hooks.example.com"}, AllowPrivate: true})
	cidr := newGuard(t, egress.Config{Allow: []string{"hooks.example.com", "169.254.169.254/32", "10.9.0.0/16", "fd00:1::/32"}})
	for _, tc := range []struct {
		addr                  string
		strict, private, cidr bool // allowed?
	}{
		{"8.8.8.8", true, true, true},
		{"127.0.0.1", false, true, false},
		{"::1", false, true, false},
		{"::ffff:127.0.0.1", false, true, false},
		{"10.9.1.1", false, true, true},
		{"::ffff:10.9.1.1", false, true, true},
		{"10.8.1.1", false, true, false},
		{"192.168.0.10", false, true, false},
		{"100.64.3.3", false, true, false},
		{"fd00:1::5", false, true, true},
		{"169.254.169.254", false, false, true}, // metadata: only by an explicit CIDR
		{"fe80::1", false, false, false},
		{"0.0.0.0", false, false, false},
		{"224.0.0.1", false, false, false},
	} {
		ip := netip.MustParseAddr(tc.addr)
		for _, c := range []struct {
			g    *egress.Guard
			want bool
			name string
		}{{strict, tc.strict, "strict"}, {private, tc.private, "AllowPrivate"}, {cidr, tc.cidr, "CIDR"}} {
			err := c.g.CheckIP(ip)
			if c.want {
				require.NoError(t, err, "%s %s", c.name, tc.addr)
			} else {
				require.ErrorIs(t, err, egress.ErrRefused, "%s %s", c.name, tc.addr)
			}
		}
	}
	err := strict.CheckIP(netip.MustParseAddr("169.254.169.254"))
	require.Equal(t, "169.254.169.254 is a link-local address: not in an allowlisted CIDR", egress.Reason(err))
}

// TestDialRefusesInternalAddresses: an allowlisted name that resolves to
// an internal address is refused when the connection is made, and the
// server never sees the request.
func TestDialRefusesInternalAddresses(t *testing.T) {
	t.Parallel()
	srv := setupServer(t, false)
	for _, addrs := range [][]string{{"127.0.0.1"}, {"::ffff:127.0.0.1"}, {"169.254.169.254"}, {"10.0.0.1"}, {"0.0.0.0"}, {"::1", "127.0.0.1"}} {
		g := newGuard(t, egress.Config{Allow: []string{"hooks.example.com"}, AllowHTTP: true, Resolver: resolveTo(addrs...)})
		resp, err := g.Client().Get("http://hooks.example.com:" + srv.port + "/hook")
		if resp != nil {
			_ = resp.Body.Close()
		}
		require.ErrorIs(t, err, egress.ErrRefused, "%v", addrs)
		require.Contains(t, err.Error(), "hooks.example.com:"+srv.port+": resolved address refused: ")
	}
	require.Zero(t, srv.hits.Load(), "no request reached the server")
}

func TestDialAllowsWhatTheAdminAllowed(t *testing.T) {
	t.Parallel()
	srv := setupServer(t, false)
	for name, cfg := range map[string]egress.Config{
		"AllowPrivate": {Allow: []string{"hooks.example.com"}, AllowPrivate: true},
		"CIDR":         {Allow: []string{"hooks.example.com", "127.0.0.0/8"}},
	} {
		cfg.AllowHTTP, cfg.Resolver = true, resolveTo("127.0.0.1")
		g := newGuard(t, cfg)
		resp, err := g.Client().Get("http://hooks.example.com:" + srv.port + "/hook")
		require.NoError(t, err, name)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.Equal(t, "ok", string(body), name)
	}
	// An IP literal inside an allowlisted CIDR needs no resolver.
	g := newGuard(t, egress.Config{Allow: []string{"127.0.0.0/8"}, AllowHTTP: true})
	resp, err := g.Client().Get(srv.URL)
	require.NoError(t, err)
	_ = resp.Body.Close()
	// Skipping a refused address, the guard dials an allowed one.
	g = newGuard(t, egress.Config{Allow: []string{"hooks.example.com", "127.0.0.0/8"}, AllowHTTP: true,
		Resolver: resolveTo("169.254.169.254", "127.0.0.1")})
	resp, err = g.Client().Get("http://hooks.example.com:" + srv.port + "/")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.EqualValues(t, 4, srv.hits.Load())
}

// TestDialHTTPS: the guard dials the checked address while TLS still
// verifies the URL's host name.
func TestDialHTTPS(t *testing.T) {
	t.Parallel()
	srv := setupServer(t, true) // its certificate is for example.com and 127.0.0.1
	g := newGuard(t, egress.Config{Allow: []string{"example.com"}, AllowPrivate: true, Resolver: resolveTo("127.0.0.1")})
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	g.Transport().TLSClientConfig.RootCAs = pool
	resp, err := g.Client().Get("https://example.com:" + srv.port + "/")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	resp, err = g.Client().Get("http://example.com:" + srv.port + "/")
	if resp != nil {
		_ = resp.Body.Close()
	}
	require.ErrorIs(t, err, egress.ErrRefused, "http is refused on the client too")
	require.Nil(t, g.Transport().Proxy, "no proxy: the checked address is the one dialled")
}

// TestDNSRebinding: a name that resolved to a public address when it was
// checked and to loopback when dialled is refused at the dial.
func TestDNSRebinding(t *testing.T) {
	t.Parallel()
	srv := setupServer(t, false)
	var calls atomic.Int64
	rebind := func(context.Context, string) ([]netip.Addr, error) {
		if calls.Add(1) == 1 {
			return []netip.Addr{netip.MustParseAddr("203.0.113.10")}, nil
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	g := newGuard(t, egress.Config{Allow: []string{"hooks.example.com"}, AllowHTTP: true, Resolver: rebind})
	u := "http://hooks.example.com:" + srv.port + "/hook"
	require.NoError(t, g.CheckResolved(t.Context(), u), "first lookup: public")
	resp, err := g.Client().Get(u)
	if resp != nil {
		_ = resp.Body.Close()
	}
	require.ErrorIs(t, err, egress.ErrRefused)
	require.Contains(t, egress.Reason(err), "127.0.0.1 is a loopback address")
	require.Zero(t, srv.hits.Load())

	err = g.CheckResolved(t.Context(), u)
	require.ErrorIs(t, err, egress.ErrRefused, "CheckResolved checks every address")
	require.Equal(t, "resolved address refused: 127.0.0.1 is a loopback address: not in an allowlisted CIDR and AllowPrivate is off", egress.Reason(err))

	failing := newGuard(t, egress.Config{Allow: []string{"hooks.example.com"}, Resolver: func(context.Context, string) ([]netip.Addr, error) {
		return nil, errors.New("no such host")
	}})
	err = failing.CheckResolved(t.Context(), "https://hooks.example.com/")
	require.Error(t, err)
	require.NotErrorIs(t, err, egress.ErrRefused, "a lookup failure is not a refusal")
}

func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	inner := setupServer(t, false)
	outer := httptest.NewServer(http.RedirectHandler(inner.URL, http.StatusFound))
	t.Cleanup(outer.Close)
	g := newGuard(t, egress.Config{Allow: []string{"127.0.0.0/8"}, AllowHTTP: true})
	resp, err := g.Client().Get(outer.URL)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	require.Zero(t, inner.hits.Load())
}

func TestDialContextDirect(t *testing.T) {
	t.Parallel()
	g := newGuard(t, egress.Config{Allow: []string{"hooks.example.com"}, Resolver: resolveTo("127.0.0.1")})
	_, err := g.DialContext(t.Context(), "tcp", "other.example.com:443")
	require.ErrorIs(t, err, egress.ErrRefused)
	require.Equal(t, egress.ReasonHostNotAllowed, egress.Reason(err))
	_, err = g.DialContext(t.Context(), "tcp", "hooks.example.com:443")
	require.ErrorIs(t, err, egress.ErrRefused)
	_, err = g.DialContext(t.Context(), "tcp", "hooks.example.com")
	require.ErrorIs(t, err, egress.ErrRefused)

	var opErr *net.OpError
	g = newGuard(t, egress.Config{Allow: []string{"127.0.0.0/8"}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	_, err = g.DialContext(t.Context(), "tcp", addr)
	require.ErrorAs(t, err, &opErr, "an allowed address that is down fails as a network error")
	require.NotErrorIs(t, err, egress.ErrRefused)
}
