package egress

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/callgate/callgate/controller"
)

// parseAllow splits the allowlist into exact names, wildcard suffixes
// (".crm.example.com") and prefixes.
func parseAllow(list []string) (map[string]bool, []string, []netip.Prefix, error) {
	hosts := map[string]bool{}
	var (
		wildcards []string
		prefixes  []netip.Prefix
	)
	for i, raw := range list {
		field := fmt.Sprintf("allow[%d]", i)
		e := strings.TrimSpace(raw)
		switch {
		case e == "":
			return nil, nil, nil, controller.FieldError(field, "is empty")
		case strings.Contains(e, "/"):
			p, err := netip.ParsePrefix(e)
			if err != nil {
				return nil, nil, nil, controller.FieldError(field, "%q is not a CIDR such as 203.0.113.0/24", e)
			}
			prefixes = append(prefixes, p.Masked())
			continue
		}
		if ip, err := netip.ParseAddr(strings.Trim(e, "[]")); err == nil {
			if ip.Zone() != "" {
				return nil, nil, nil, controller.FieldError(field, "%q: an address with a zone cannot be allowed", e)
			}
			prefixes = append(prefixes, netip.PrefixFrom(ip, ip.BitLen()))
			continue
		}
		name := normalizeHost(e)
		if rest, ok := strings.CutPrefix(name, "*."); ok {
			if !validName(rest) || !strings.Contains(rest, ".") || looksNumeric(rest) {
				return nil, nil, nil, controller.FieldError(field, "%q: a wildcard must be *. followed by a domain of two labels or more, such as *.crm.example.com", e)
			}
			wildcards = append(wildcards, "."+rest)
			continue
		}
		if !validName(name) || looksNumeric(name) {
			return nil, nil, nil, controller.FieldError(field, "%q must be a host name (hooks.example.com), a wildcard (*.example.com), an IP address or a CIDR", e)
		}
		hosts[name] = true
	}
	return hosts, wildcards, prefixes, nil
}

func (g *Guard) inPrefixes(ip netip.Addr) bool {
	for _, p := range g.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// normalizeHost lowercases a host and drops a final dot and IPv6 brackets.
func normalizeHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	return h
}

// validName reports whether h is an ASCII DNS name: labels of letters,
// digits, '-' and '_', 1 to 63 bytes, 253 in all.
func validName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// looksNumeric reports whether a name that is not a canonical IP address
// would still be read as one by some resolvers (inet_aton: "2130706433",
// "0x7f.1", "127.1"): its last label is a number.
func looksNumeric(h string) bool {
	labels := strings.Split(h, ".")
	last := labels[len(labels)-1]
	if strings.HasPrefix(last, "0x") {
		return true
	}
	for _, c := range []byte(last) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
