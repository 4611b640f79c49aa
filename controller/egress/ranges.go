package egress

import "net/netip"

// blockedRange is a range of addresses a connection is refused to by
// default. Internal ranges are the ones AllowPrivate opens.
type blockedRange struct {
	prefix   netip.Prefix
	kind     string
	internal bool
}

// blocked is checked in order: the first match names the kind.
var blocked = []blockedRange{
	// IPv4
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified", false}, // "this network": 0.0.0.0 reaches the host itself
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback", true},
	{netip.MustParsePrefix("10.0.0.0/8"), "private", true},
	{netip.MustParsePrefix("172.16.0.0/12"), "private", true},
	{netip.MustParsePrefix("192.168.0.0/16"), "private", true},
	{netip.MustParsePrefix("100.64.0.0/10"), "CGNAT", true},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local", false}, // cloud metadata: 169.254.169.254
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol", false},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking", true},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast", false},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved", false}, // 255.255.255.255 too
	// IPv6
	{netip.MustParsePrefix("::/128"), "unspecified", false},
	{netip.MustParsePrefix("::1/128"), "loopback", true},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible", false},
	{netip.MustParsePrefix("100::/64"), "discard-only", false},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local NAT64", true},
	{netip.MustParsePrefix("fe80::/10"), "link-local", false},
	{netip.MustParsePrefix("fec0::/10"), "site-local", true},
	{netip.MustParsePrefix("fc00::/7"), "private", true}, // unique local
	{netip.MustParsePrefix("ff00::/8"), "multicast", false},
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")    // well-known NAT64: the last 32 bits are IPv4
	siit      = netip.MustParsePrefix("::ffff:0:0:0/96") // IPv4-translated (SIIT)
	sixToFour = netip.MustParsePrefix("2002::/16")       // 6to4: bits 16-48 are IPv4
)

// Classify returns the kind of a refused-by-default address ("loopback",
// "private", "link-local", …; "" for a public one) and whether it is
// internal (opened by AllowPrivate). IPv4-mapped, IPv4-translated, NAT64
// and 6to4 addresses are classified by the IPv4 address they carry.
func Classify(ip netip.Addr) (kind string, internal bool) {
	ip = ip.WithZone("").Unmap()
	if ip.Is6() {
		b := ip.As16()
		var v4 netip.Addr
		switch {
		case nat64.Contains(ip), siit.Contains(ip):
			v4 = netip.AddrFrom4([4]byte(b[12:16]))
		case sixToFour.Contains(ip):
			v4 = netip.AddrFrom4([4]byte(b[2:6]))
		}
		if v4.IsValid() {
			if k, in := Classify(v4); k != "" {
				return "IPv4-embedded " + k, in
			}
			return "", false
		}
	}
	for _, r := range blocked {
		if r.prefix.Contains(ip) {
			return r.kind, r.internal
		}
	}
	return "", false
}
