package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "callgate test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestAPIServesTLS12Plus(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := selfSigned(t)
	m := &Main{Config: Config{Listen: "127.0.0.1:0", TLSCertFile: certFile, TLSKeyFile: keyFile}}
	ln, err := m.listen()
	require.NoError(t, err)
	srv := &http.Server{Handler: securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}), true), ReadHeaderTimeout: time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	url := "https://" + ln.Addr().String() + "/healthz"

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(url)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.GreaterOrEqual(t, resp.TLS.Version, uint16(tls.VersionTLS12))
	require.Equal(t, "max-age=31536000", resp.Header.Get("Strict-Transport-Security"))
	require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))

	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	_, err = old.Get(url)
	require.Error(t, err, "TLS 1.1 is refused")

	resp, err = http.Get("http://" + ln.Addr().String() + "/healthz")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "plaintext to the TLS port is refused: %s", body)
	}
}

func TestPlaintextOnlyOnLoopback(t *testing.T) {
	t.Parallel()
	base := map[string]string{"CALLGATE_ESL": "127.0.0.1:8021", "CALLGATE_ESL_PASSWORD": "s3cret", "CALLGATE_POLICY": "lab"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	_, err := LoadConfig(nil, envOf(with("CALLGATE_LISTEN", "0.0.0.0:8080")))
	require.ErrorContains(t, err, "not a loopback address")
	_, err = LoadConfig(nil, envOf(with("CALLGATE_LISTEN", "[::1]:8080")))
	require.NoError(t, err)
	_, err = LoadConfig(nil, envOf(with("CALLGATE_LISTEN", "0.0.0.0:8080", "CALLGATE_ALLOW_PLAINTEXT", "true")))
	require.NoError(t, err)
	_, err = LoadConfig(nil, envOf(with("CALLGATE_LISTEN", "0.0.0.0:8443", "CALLGATE_TLS_CERT", "/c.pem", "CALLGATE_TLS_KEY", "/k.pem")))
	require.NoError(t, err)
	_, err = LoadConfig(nil, envOf(with("CALLGATE_TLS_CERT", "/c.pem")))
	require.ErrorContains(t, err, "tls_cert_file and tls_key_file")
}
