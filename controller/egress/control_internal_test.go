package egress

import (
	"errors"
	"testing"
)

// TestControlChecksTheSocketAddress: whatever led to a dial, the address
// the socket connects to is checked last.
func TestControlChecksTheSocketAddress(t *testing.T) {
	t.Parallel()
	g, err := New(Config{Allow: []string{"hooks.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"127.0.0.1:80", "[::1]:443", "[::ffff:169.254.169.254]:80", "10.0.0.1:8080", "not-an-ip:80"} {
		if err := g.control("tcp", addr, nil); !errors.Is(err, ErrRefused) {
			t.Errorf("control(%s) = %v, want a refusal", addr, err)
		}
	}
	if err := g.control("tcp", "8.8.8.8:443", nil); err != nil {
		t.Errorf("control(8.8.8.8:443) = %v", err)
	}
}
