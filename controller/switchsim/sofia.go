package switchsim

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// SofiaProfile is one sofia SIP profile as "sofia status profile" reports
// it. Nothing else in the simulator depends on profiles: calls to
// sofia/<profile>/… and sofia/gateway/… are placed whatever this says.
type SofiaProfile struct {
	Running bool // false: "Invalid Profile!", as for a profile that failed to start
	TLS     bool // tls=true: TLS-URL and TLS-BIND-URL lines are printed
	SIPPort int  // sip-port; 0 means 5080 (5082 for a TLS profile, as shipped)
	TLSPort int  // tls-sip-port; 0 means 5081
}

// sofiaProfiles returns a copy of the configured profiles, or the shipped
// freeswitch-conf ones.
func sofiaProfiles(cfg map[string]SofiaProfile) map[string]SofiaProfile {
	if cfg == nil {
		return map[string]SofiaProfile{
			"external":     {Running: true},
			"external-tls": {Running: true, TLS: true},
		}
	}
	return maps.Clone(cfg)
}

// SetSofiaProfile adds or replaces a sofia profile, e.g. to stop
// "external-tls" in a test (Running: false).
func (s *Sim) SetSofiaProfile(name string, p SofiaProfile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sofia[name] = p
}

// OriginateCommands returns the arguments of every ESL originate (api and
// bgapi) received so far, in order, exactly as they arrived after
// "originate ": what a test asserts the driver sent.
func (s *Sim) OriginateCommands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.originates)
}

// sofiaLine is mod_sofia's separator line (97 '=').
var sofiaLine = strings.Repeat("=", 97)

// sofiaAPI answers "sofia <arg>". Only "status profile <name>" is modelled,
// after mod_sofia.c cmd_status in 1.10: the profile block, an empty
// registrations list, or "Invalid Profile!".
func (s *Sim) sofiaAPI(arg string) string {
	args := strings.Fields(arg)
	if len(args) == 0 || !strings.EqualFold(args[0], "status") {
		return "-ERR switchsim: only \"sofia status profile <name>\" is simulated\n"
	}
	args = args[1:]
	switch {
	case len(args) == 1:
		return "Invalid Syntax!\n"
	case len(args) >= 2 && strings.EqualFold(args[0], "profile"):
		s.mu.Lock()
		p, ok := s.sofia[args[1]]
		s.mu.Unlock()
		if !ok || !p.Running {
			return "Invalid Profile!\n"
		}
		return sofiaProfileStatus(args[1], p)
	}
	return "-ERR switchsim: only \"sofia status profile <name>\" is simulated\n"
}

// sofiaProfileStatus renders one profile like cmd_status; addresses are
// the loopback ones the shipped vars.xml defaults to.
func sofiaProfileStatus(name string, p SofiaProfile) string {
	sip, tls := p.SIPPort, p.TLSPort
	if sip == 0 {
		sip = 5080
		if p.TLS {
			sip = 5082
		}
	}
	if tls == 0 {
		tls = 5081
	}
	const ip = "127.0.0.1"
	var b strings.Builder
	row := func(key, value string) { fmt.Fprintf(&b, "%-17s\t%s\n", key, value) }
	b.WriteString(sofiaLine + "\n")
	row("Name", name)
	row("Domain Name", "N/A")
	row("Auto-NAT", "false")
	row("DBName", "sofia_reg_"+name)
	row("Pres Hosts", "")
	row("Dialplan", "XML")
	row("Context", "public")
	row("Challenge Realm", "auto_to")
	row("RTP-IP", ip)
	row("SIP-IP", ip)
	row("URL", fmt.Sprintf("sip:mod_sofia@%s:%d", ip, sip))
	row("BIND-URL", fmt.Sprintf("sip:mod_sofia@%s:%d;maddr=%s", ip, sip, ip))
	if p.TLS {
		row("TLS-URL", fmt.Sprintf("sip:mod_sofia@%s:%d", ip, tls))
		row("TLS-BIND-URL", fmt.Sprintf("sips:mod_sofia@%s:%d;maddr=%s;transport=tls", ip, tls, ip))
	}
	row("HOLD-MUSIC", "N/A")
	row("OUTBOUND-PROXY", "N/A")
	row("CODECS IN", "PCMU,PCMA")
	row("CODECS OUT", "PCMU,PCMA")
	row("TEL-EVENT", "101")
	row("DTMF-MODE", "rfc2833")
	row("CNG", "13")
	row("SESSION-TO", "0")
	row("MAX-DIALOG", "0")
	row("NOMEDIA", "false")
	row("LATE-NEG", "false")
	row("PROXY-MEDIA", "false")
	row("AGGRESSIVENAT", "false")
	row("STUN-ENABLED", "true")
	row("STUN-AUTO-DISABLE", "false")
	row("CALLS-IN", "0")
	row("FAILED-CALLS-IN", "0")
	row("CALLS-OUT", "0")
	row("FAILED-CALLS-OUT", "0")
	b.WriteString("\nRegistrations:\n" + sofiaLine + "\n" + sofiaLine + "\n")
	return b.String()
}
