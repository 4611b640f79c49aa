package freeswitch

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/callgate/callgate/controller"
)

// Secure media (DESIGN 1.2: TLS for SIP, mandatory SRTP on every origination).
//
// What callgate can and cannot see. An originate names an endpoint, not a
// transport: sofia/gateway/<gw>/<number> uses whatever profile and
// transport the gateway is defined with, which ESL does not report per
// gateway in a form worth trusting. So the operator declares, with
// Config.SecureProfile, the TLS profile the dial template leaves through,
// and the driver checks what it can:
//
//   - at configuration time (Validate, checkSecureTemplate): the template
//     is sofia/gateway/<gw>/… (the gateway must be defined under
//     SecureProfile: freeswitch-conf/sip_profiles/external-tls/), or
//     sofia/<SecureProfile>/…;transport=tls (a SIP URI on that profile
//     that names TLS itself). loopback/, error/, another profile, or a
//     sofia/<SecureProfile>/ URI without ;transport=tls are refused: they
//     are never TLS.
//   - at run time (checkSecure, on every connect before the switch reports
//     Connected, then every SecureCheckInterval on the heartbeat):
//     `api sofia status profile <SecureProfile>` must answer the profile's
//     details (mod_sofia answers "Invalid Profile!" for a profile that is
//     not running) with a TLS-BIND-URL line (printed only when the
//     profile has tls=true). Then SwitchStatus.SecureMedia is
//     confirmed; anything else (not connected, no reply, profile down, no
//     TLS) is unconfirmed with the reason in SecureMediaDetail.
//   - per call (Originate): a request whose Media requires TLS or SRTP is
//     not sent (ErrNotSent wrapping ErrMediaInsecure) unless the switch is
//     confirmed at that moment; SRTP adds
//     rtp_secure_media=mandatory:<suite>:<suite>… to the originate, so
//     FreeSWITCH offers only RTP/SAVP with those suites and fails the call
//     (488, INCOMPATIBLE_DESTINATION) if the far end refuses SRTP.
//
// SRTP itself is not in sofia status: it is enforced per call by that
// variable (which API users cannot set or override: it is reserved), and
// by the shipped configuration's global default (freeswitch-conf/vars.xml).

// ErrMediaInsecure is wrapped (with controller.ErrNotSent) when a call that
// requires TLS or SRTP reaches a switch that cannot confirm them.
var ErrMediaInsecure = controller.Errorf(controller.EREFUSED, "%s: the switch cannot confirm TLS signalling and SRTP", controller.ReasonMediaInsecure)

// suiteRE is an SRTP crypto suite name as FreeSWITCH spells them.
var suiteRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,63}$`)

// sofiaStatusCommand is `api sofia status profile <name>`; name is
// Config.SecureProfile, validated by Config.Validate.
func sofiaStatusCommand(profile string) apiCommand {
	return apiCommand{command: "sofia", args: []string{"status", "profile", profile}}
}

// checkSecureTemplate enforces the rule above on an operator's template.
func checkSecureTemplate(template, trunk, profile string) error {
	endpoint := dialPlan{template: template, trunk: trunk}.expand("1")
	parts := strings.SplitN(endpoint, "/", 4)
	switch {
	case len(parts) == 4 && parts[0] == "sofia" && parts[1] == "gateway" && parts[2] != "":
		return nil
	case len(parts) >= 3 && parts[0] == "sofia" && parts[1] == profile:
		if !strings.Contains(strings.ToLower(endpoint), ";transport=tls") {
			return fmt.Errorf("with SecureProfile, a sofia/%s/… endpoint must end in ;transport=tls", profile)
		}
		return nil
	}
	return fmt.Errorf("with SecureProfile %q, must be sofia/gateway/<gateway>/… (a gateway of that profile) or sofia/%s/…;transport=tls", profile, profile)
}

// secureUnknown is the SecureMedia state while nothing is verified.
func (s *Switch) secureUnknown(why string) (string, string) {
	if s.cfg.SecureProfile == "" {
		return controller.SecureMediaNotConfigured, "no SecureProfile configured"
	}
	return controller.SecureMediaUnconfirmed, why
}

// checkSecure asks the switch about SecureProfile and records the result in
// the status. It never fails the connection: a switch that cannot confirm
// TLS still carries calls that do not require it.
func (s *Switch) checkSecure(ctx context.Context, c *conn) {
	if s.cfg.SecureProfile == "" {
		s.updateStatus(func(st *controller.SwitchStatus) {
			st.SecureMedia, st.SecureMediaDetail = s.secureUnknown("")
		})
		return
	}
	state, detail := controller.SecureMediaUnconfirmed, ""
	resp, err := c.run(ctx, "api sofia status", sofiaStatusCommand(s.cfg.SecureProfile))
	switch {
	case err != nil:
		detail = fmt.Sprintf("sofia status profile %s: %v", s.cfg.SecureProfile, err)
	case replyError(resp) != "":
		detail = fmt.Sprintf("sofia status profile %s: %s", s.cfg.SecureProfile, replyError(resp))
	default:
		var ok bool
		ok, detail = parseSofiaProfileTLS(s.cfg.SecureProfile, string(resp.Body))
		if ok {
			state = controller.SecureMediaConfirmed
		}
	}
	prev := s.Status().SecureMedia
	s.updateStatus(func(st *controller.SwitchStatus) { st.SecureMedia, st.SecureMediaDetail = state, detail })
	switch {
	case state != controller.SecureMediaConfirmed:
		s.log.Warn("secure media not confirmed; calls that require TLS or SRTP will not be sent here", "detail", detail)
	case prev != state:
		s.log.Info("secure media confirmed", "detail", detail)
	}
}

// parseSofiaProfileTLS reads `sofia status profile <name>` (mod_sofia.c
// cmd_status): "Invalid Profile!" when the profile is not running, else
// tab-separated "KEY<spaces>\tvalue" lines where TLS-BIND-URL appears only
// for a profile with TLS. It returns whether the profile runs with a TLS
// transport, and why.
func parseSofiaProfileTLS(profile, body string) (bool, string) {
	if strings.Contains(body, "Invalid Profile!") {
		return false, fmt.Sprintf("sofia profile %s is not running", profile)
	}
	named := false
	for line := range strings.Lines(body) {
		key, value, ok := strings.Cut(strings.TrimRight(line, "\r\n"), "\t")
		if !ok {
			continue
		}
		switch strings.TrimSpace(key) {
		case "Name":
			named = strings.TrimSpace(value) == profile
		case "TLS-BIND-URL":
			if named && strings.TrimSpace(value) != "" && strings.TrimSpace(value) != "(null)" {
				return true, fmt.Sprintf("sofia profile %s is running with TLS at %s", profile, strings.TrimSpace(value))
			}
		}
	}
	if !named {
		return false, fmt.Sprintf("sofia status profile %s: unrecognised reply", profile)
	}
	return false, fmt.Sprintf("sofia profile %s is running without TLS (no TLS-BIND-URL: tls=true missing?)", profile)
}

// secureRefusal returns nil if req may be sent on this switch, else the
// error Originate returns: not sent, EREFUSED media_insecure.
func (s *Switch) secureRefusal(req controller.OriginateRequest) error {
	if !req.Media.Required() {
		return nil
	}
	st := s.Status()
	if st.SecureMedia == controller.SecureMediaConfirmed {
		return nil
	}
	return fmt.Errorf("originating call %s on %s: %w: %w (%s: %s)", req.CallID, s.cfg.Name,
		controller.ErrNotSent, ErrMediaInsecure, st.SecureMedia, st.SecureMediaDetail)
}

// secureMediaValue is the rtp_secure_media value for m, or "" when m does
// not require SRTP. Returns EINVALID for a suite FreeSWITCH cannot name.
func secureMediaValue(m controller.MediaRequirement) (string, error) {
	if !m.SRTP {
		return "", nil
	}
	v := "mandatory"
	for _, suite := range m.Suites {
		if !suiteRE.MatchString(suite) {
			return "", controller.FieldError("media.suites", "%q is not an SRTP suite name", suite)
		}
		v += ":" + suite
	}
	return v, nil
}
