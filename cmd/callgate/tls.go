package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
)

// listen opens the API's listener: TLS (1.2 or later) when a certificate is
// configured, plaintext otherwise — which Config.Validate allows only on a
// loopback address unless AllowPlaintext says so.
func (m *Main) listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", m.Config.Listen)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", m.Config.Listen, err)
	}
	if m.Config.TLSCertFile == "" {
		return ln, nil
	}
	cert, err := tls.LoadX509KeyPair(m.Config.TLSCertFile, m.Config.TLSKeyFile)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("config: tls_cert_file / tls_key_file: %w", err)
	}
	return tls.NewListener(ln, &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
	}), nil
}

// securityHeaders adds the headers every API response carries: no sniffing,
// no framing, no caching of personal data, no active content, and HSTS when
// served over TLS.
func securityHeaders(next http.Handler, tlsOn bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		if h.Get("Cache-Control") == "" {
			h.Set("Cache-Control", "no-store")
		}
		if tlsOn {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// loopback reports whether a listen address binds only to loopback.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
