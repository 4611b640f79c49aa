package freeswitch

import (
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/percipia/eslgo/command"
	"github.com/stretchr/testify/require"
)

const testUUID = "e102a1a5-891d-435e-b5ce-eef820d35ed0"

var testPlan = dialPlan{template: "sofia/gateway/{trunk}/{number}", trunk: "carrier1", trunks: map[string]bool{"carrier2": true},
	allowedNames: map[string]bool{"campaign_id": true}}

// Wire commands satisfy eslgo's command.Command.
var (
	_ command.Command = subscribeCommand{}
	_ command.Command = apiCommand{}
	_ command.Command = originateCommand{}
)

func TestCommandGolden(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cmd  command.Command
		want string
	}{
		{"subscribe", subscribeCommand{events: subscribedEvents},
			"event plain CHANNEL_CREATE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_ANSWER CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE CHANNEL_DESTROY CHANNEL_EXECUTE_COMPLETE DTMF RECORD_START RECORD_STOP BACKGROUND_JOB"},
		{"status", statusCommand, "api status"},
		{"channels", channelsCommand, "api show channels as json"},
		{"kill", killCommand(testUUID, "NORMAL_CLEARING"), "api uuid_kill " + testUUID + " NORMAL_CLEARING"},
		{"originate minimal", mustOriginate(t, dialPlan{template: "loopback/{number}/cgcap"}, controller.OriginateRequest{
			CallID: testUUID, To: "1003", CallerIDNumber: "4000", Timeout: 5 * time.Second}),
			// byte for byte what fixture 05-busy sent to a real FreeSWITCH
			"bgapi originate {origination_uuid=" + testUUID + ",origination_caller_id_number=4000,originate_timeout=5}loopback/1003/cgcap &park()"},
		{"originate full", mustOriginate(t, testPlan, controller.OriginateRequest{
			CallID: testUUID, To: "+15551234567", CallerIDNumber: "+15550000001", CallerIDName: "Acme, Inc. Sales",
			Timeout: 2500 * time.Millisecond, Variables: map[string]string{"cg_lead": "42", "campaign_id": "spring sale", "cg_empty": " "}}),
			`bgapi originate {origination_uuid=` + testUUID + `,origination_caller_id_number=+15550000001,origination_caller_id_name=Acme\,\sInc.\sSales,originate_timeout=3,campaign_id=spring\ssale,cg_lead=42}sofia/gateway/carrier1/+15551234567 &park()`},
		{"originate default timeout", mustOriginate(t, testPlan, controller.OriginateRequest{CallID: testUUID, To: "1001"}),
			"bgapi originate {origination_uuid=" + testUUID + ",originate_timeout=60}sofia/gateway/carrier1/1001 &park()"},
		{"originate srtp", mustOriginate(t, testPlan, controller.OriginateRequest{CallID: testUUID, To: "1001",
			Media: controller.MediaRequirement{SRTP: true, TLS: true, Suites: []string{"AES_CM_128_HMAC_SHA1_80", "AEAD_AES_256_GCM_8"}}}),
			// FreeSWITCH 1.10 syntax; ':' needs no escape inside {}
			"bgapi originate {origination_uuid=" + testUUID + ",originate_timeout=60,rtp_secure_media=mandatory:AES_CM_128_HMAC_SHA1_80:AEAD_AES_256_GCM_8}sofia/gateway/carrier1/1001 &park()"},
		{"originate srtp, switch's suites", mustOriginate(t, testPlan, controller.OriginateRequest{CallID: testUUID, To: "1001",
			Media: controller.MediaRequirement{SRTP: true, TLS: true}}),
			"bgapi originate {origination_uuid=" + testUUID + ",originate_timeout=60,rtp_secure_media=mandatory}sofia/gateway/carrier1/1001 &park()"},
		{"originate tls only", mustOriginate(t, testPlan, controller.OriginateRequest{CallID: testUUID, To: "1001",
			Media: controller.MediaRequirement{TLS: true}}),
			"bgapi originate {origination_uuid=" + testUUID + ",originate_timeout=60}sofia/gateway/carrier1/1001 &park()"},
		{"originate on another trunk", mustOriginate(t, testPlan, controller.OriginateRequest{CallID: testUUID, To: "+15551234567", Trunk: "carrier2"}),
			"bgapi originate {origination_uuid=" + testUUID + ",originate_timeout=60}sofia/gateway/carrier2/+15551234567 &park()"},
		{"originate naming the default trunk", mustOriginate(t, testPlan, controller.OriginateRequest{CallID: testUUID, To: "+15551234567", Trunk: "carrier1"}),
			"bgapi originate {origination_uuid=" + testUUID + ",originate_timeout=60}sofia/gateway/carrier1/+15551234567 &park()"},
		{"sofia status", sofiaStatusCommand("external-tls"), "api sofia status profile external-tls"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.cmd.BuildMessage())
		})
	}
}

func mustOriginate(t *testing.T, p dialPlan, req controller.OriginateRequest) originateCommand {
	t.Helper()
	cmd, err := buildOriginate(p, req)
	require.NoError(t, err)
	return cmd
}

// TestOriginateHostileInput feeds hostile values through buildOriginate and
// parses every accepted command back with the port of FreeSWITCH's parsers:
// the variables, endpoint and application must be exactly the intended ones.
func TestOriginateHostileInput(t *testing.T) {
	t.Parallel()
	base := func() controller.OriginateRequest {
		return controller.OriginateRequest{CallID: testUUID, To: "+15551234567", CallerIDNumber: "4000"}
	}
	hostile := []string{
		"a,origination_uuid=00000000-0000-0000-0000-000000000000",
		"x,cg_other=1",
		"John Smith",
		"  padded  ",
		"a, b ,c",
		"tab,=,=,eq=ual",
		"x &bridge(sofia/gateway/evil/1)",
		"100% (ok) #1 *2 @home; a=b & c",
		"张三, 李四",
		"Zoë Ünal",
		"end:_",
		",,,,",
		"a,",
		":,_,:",
	}
	for _, v := range hostile {
		t.Run("accepted/"+v, func(t *testing.T) {
			req := base()
			req.CallerIDName = v
			req.Variables = map[string]string{"cg_note": v, "campaign_id": v}
			cmd, err := buildOriginate(testPlan, req)
			require.NoError(t, err)
			want := strings.Trim(v, " ")
			requireParsesTo(t, cmd.BuildMessage(), [][2]string{
				{"origination_uuid", testUUID},
				{"origination_caller_id_number", "4000"},
				{"origination_caller_id_name", want},
				{"originate_timeout", "60"},
				{"campaign_id", want},
				{"cg_note", want},
			}, "sofia/gateway/carrier1/+15551234567")
		})
	}

	rejected := []struct {
		name  string
		edit  func(*controller.OriginateRequest)
		field string
	}{
		{"newline in name", func(r *controller.OriginateRequest) { r.CallerIDName = "x\nbgapi originate loopback/1 &park()" }, "caller_id_name"},
		{"unknown trunk", func(r *controller.OriginateRequest) { r.Trunk = "carrier9" }, "trunk"},
		{"trunk path", func(r *controller.OriginateRequest) { r.Trunk = "carrier2/evil" }, "trunk"},
		{"trunk injection", func(r *controller.OriginateRequest) { r.Trunk = "x &bridge(evil)" }, "trunk"},
		{"CR in name", func(r *controller.OriginateRequest) { r.CallerIDName = "x\r" }, "caller_id_name"},
		{"NUL in var", func(r *controller.OriginateRequest) { r.Variables = map[string]string{"cg_a": "x\x00y"} }, "variables.cg_a"},
		{"tab", func(r *controller.OriginateRequest) { r.CallerIDName = "a\tb" }, "caller_id_name"},
		{"line separator", func(r *controller.OriginateRequest) { r.CallerIDName = "a\u2028b" }, "caller_id_name"},
		{"close brace", func(r *controller.OriginateRequest) { r.CallerIDName = "x}loopback/9999 &bridge(evil)" }, "caller_id_name"},
		{"open brace", func(r *controller.OriginateRequest) { r.CallerIDName = "{x" }, "caller_id_name"},
		{"single quote", func(r *controller.OriginateRequest) { r.CallerIDName = "O'Brien" }, "caller_id_name"},
		{"double quote", func(r *controller.OriginateRequest) { r.CallerIDName = `say "hi"` }, "caller_id_name"},
		{"backslash", func(r *controller.OriginateRequest) { r.CallerIDName = `a\,b` }, "caller_id_name"},
		{"brackets", func(r *controller.OriginateRequest) { r.CallerIDName = "[x]" }, "caller_id_name"},
		{"angle", func(r *controller.OriginateRequest) { r.CallerIDName = "<x>" }, "caller_id_name"},
		{"pipe", func(r *controller.OriginateRequest) { r.CallerIDName = "a|b" }, "caller_id_name"},
		{"caret", func(r *controller.OriginateRequest) { r.CallerIDName = "^^:a=b" }, "caller_id_name"},
		{"expansion", func(r *controller.OriginateRequest) { r.Variables = map[string]string{"cg_a": "${system(id)}"} }, "variables.cg_a"},
		{"enterprise", func(r *controller.OriginateRequest) { r.CallerIDName = "a:_:loopback/9999" }, "caller_id_name"},
		{"invalid utf8", func(r *controller.OriginateRequest) { r.CallerIDName = "a\xffb" }, "caller_id_name"},
		{"too long", func(r *controller.OriginateRequest) { r.CallerIDName = strings.Repeat("a", 257) }, "caller_id_name"},
		{"var name syntax", func(r *controller.OriginateRequest) { r.Variables = map[string]string{"cg_a=b": "1"} }, "variables"},
		{"var name comma", func(r *controller.OriginateRequest) { r.Variables = map[string]string{"a,b": "1"} }, "variables"},
		{"var name space", func(r *controller.OriginateRequest) { r.Variables = map[string]string{"cg a": "1"} }, "variables"},
		{"override uuid", func(r *controller.OriginateRequest) { r.Variables = map[string]string{"origination_uuid": testUUID} }, "variables.origination_uuid"},
		{"override case", func(r *controller.OriginateRequest) { r.Variables = map[string]string{"Originate_Timeout": "999"} }, "variables.Originate_Timeout"},
		{"hook variable", func(r *controller.OriginateRequest) { r.Variables = map[string]string{"api_on_answer": "system id"} }, "variables.api_on_answer"},
		{"caller id spoof", func(r *controller.OriginateRequest) {
			r.Variables = map[string]string{"effective_caller_id_number": "911"}
		}, "variables.effective_caller_id_number"},
		{"srtp off", func(r *controller.OriginateRequest) { r.Variables = map[string]string{"rtp_secure_media": "false"} }, "variables.rtp_secure_media"},
		{"srtp outbound off", func(r *controller.OriginateRequest) {
			r.Variables = map[string]string{"RTP_SECURE_MEDIA_OUTBOUND": "forbidden"}
		}, "variables.RTP_SECURE_MEDIA_OUTBOUND"},
		{"srtp suite injection", func(r *controller.OriginateRequest) {
			r.Media = controller.MediaRequirement{SRTP: true, TLS: true, Suites: []string{"AES_CM_128_HMAC_SHA1_80,cg_x=1"}}
		}, "media.suites"},
		{"too many vars", func(r *controller.OriginateRequest) {
			r.Variables = map[string]string{}
			for i := range 33 {
				r.Variables["cg_v"+strings.Repeat("x", i)] = "1"
			}
		}, "variables"},
		{"to letters", func(r *controller.OriginateRequest) { r.To = "1555abc" }, "to"},
		{"to injection", func(r *controller.OriginateRequest) { r.To = "1555 &bridge(x)" }, "to"},
		{"to separator", func(r *controller.OriginateRequest) { r.To = "1555,loopback/1" }, "to"},
		{"to empty", func(r *controller.OriginateRequest) { r.To = "" }, "to"},
		{"to plus only", func(r *controller.OriginateRequest) { r.To = "+" }, "to"},
		{"from comma", func(r *controller.OriginateRequest) { r.CallerIDNumber = "4000,cg_x=1" }, "from"},
		{"endpoint override", func(r *controller.OriginateRequest) { r.Endpoint = "sofia/gateway/evil/+15551234567" }, "endpoint"},
		{"call id upper", func(r *controller.OriginateRequest) { r.CallID = controller.CallID(strings.ToUpper(testUUID)) }, "call_id"},
		{"call id injection", func(r *controller.OriginateRequest) { r.CallID = "x,origination_caller_id_number=1" }, "call_id"},
		{"negative timeout", func(r *controller.OriginateRequest) { r.Timeout = -time.Second }, "timeout_seconds"},
		{"huge timeout", func(r *controller.OriginateRequest) { r.Timeout = time.Hour }, "timeout_seconds"},
	}
	for _, tc := range rejected {
		t.Run("rejected/"+tc.name, func(t *testing.T) {
			req := base()
			tc.edit(&req)
			_, err := buildOriginate(testPlan, req)
			require.Error(t, err)
			require.Equal(t, controller.EINVALID, controller.ErrorCode(err))
			require.Equal(t, tc.field, controller.ErrorField(err))
		})
	}
}

func requireParsesTo(t *testing.T, line string, vars [][2]string, endpoint string) {
	t.Helper()
	p, err := fsParseOriginate(line)
	require.NoError(t, err, line)
	require.Equal(t, vars, p.vars, line)
	require.Equal(t, endpoint, p.endpoint, line)
	require.Equal(t, "&park()", p.exten, line)
}

// FuzzOriginateEscaping: whatever a user sends, buildOriginate either
// rejects it or builds a command FreeSWITCH parses into exactly the intended
// variables, endpoint and application.
func FuzzOriginateEscaping(f *testing.F) {
	for _, s := range []string{"John Smith", "a,b", "x}y", "a\nb", "O'Brien", `a\,b`, "^^:x", "a:_:b", "${x}", "  ", "张三"} {
		f.Add(s, s, "1555")
	}
	f.Fuzz(func(t *testing.T, name, value, to string) {
		req := controller.OriginateRequest{CallID: testUUID, To: to, CallerIDName: name,
			Variables: map[string]string{"cg_v": value}}
		cmd, err := buildOriginate(testPlan, req)
		if err != nil {
			require.Equal(t, controller.EINVALID, controller.ErrorCode(err))
			return
		}
		want := [][2]string{{"origination_uuid", testUUID}}
		if n := strings.Trim(name, " "); n != "" {
			want = append(want, [2]string{"origination_caller_id_name", n})
		}
		want = append(want, [2]string{"originate_timeout", "60"})
		if v := strings.Trim(value, " "); v != "" {
			want = append(want, [2]string{"cg_v", v})
		}
		requireParsesTo(t, cmd.BuildMessage(), want, "sofia/gateway/carrier1/"+to)
	})
}

func TestValidateDialTemplate(t *testing.T) {
	t.Parallel()
	require.NoError(t, validateDialTemplate("sofia/gateway/{trunk}/{number}", "carrier"))
	require.NoError(t, validateDialTemplate("loopback/{number}/callgate-test", ""))
	for _, bad := range []string{"", "loopback/1000", "sofia/gateway/{trunk}/{number}", "{x}loopback/{number}",
		"loopback/{number} &bridge", "loopback/{number},loopback/2", "a|{number}", "[x]{number}", "a:_:{number}"} {
		require.Error(t, validateDialTemplate(bad, ""), bad)
	}
	require.Error(t, validateDialTemplate("x:{trunk}:{number}", "_"), "trunk completing :_:")

	c := Config{Name: "fs1", Address: "127.0.0.1:8021", Password: "x", DialTemplate: "sofia/gateway/{trunk}/{number}",
		Trunk: "carrier1", Trunks: []string{"carrier2"}}.withDefaults()
	require.NoError(t, c.Validate())
	c.Trunks = []string{"a b"}
	require.Equal(t, "Trunks", controller.ErrorField(c.Validate()))
	c.Trunks, c.SecureProfile, c.DialTemplate = []string{"carrier2"}, "external-tls", "sofia/gateway/{trunk}/{number}"
	require.NoError(t, c.Validate(), "every trunk is a gateway of the secure profile")
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	good := Config{Name: "fs1", Address: "127.0.0.1:8021", Password: "ClueCon", DialTemplate: "loopback/{number}/cgcap"}.withDefaults()
	require.NoError(t, good.Validate())
	cases := map[string]func(*Config){
		"Name":              func(c *Config) { c.Name = "" },
		"Address":           func(c *Config) { c.Address = "localhost" },
		"Password":          func(c *Config) { c.Password = "Clue\nCon" },
		"DialTemplate":      func(c *Config) { c.DialTemplate = "loopback/1000" },
		"Trunk":             func(c *Config) { c.Trunk = "a b" },
		"Trunks":            func(c *Config) { c.Trunks = []string{"carrier2"} }, // the template has no {trunk}
		"MaxSessions":       func(c *Config) { c.MaxSessions = -1 },
		"MaxCPS":            func(c *Config) { c.MaxCPS = -1 },
		"HeartbeatInterval": func(c *Config) { c.HeartbeatInterval = -time.Second },
		"ReconnectMin":      func(c *Config) { c.ReconnectMin = time.Hour },
		"AllowedVariables":  func(c *Config) { c.AllowedVariables = []string{"origination_uuid"} },
	}
	for field, edit := range cases {
		c := good
		edit(&c)
		err := c.Validate()
		require.Error(t, err, field)
		require.Equal(t, field, controller.ErrorField(err))
		require.NotContains(t, err.Error(), "Clue")
	}
}

// TestFSParserModel pins the port of FreeSWITCH's parsers to behaviour known
// from the field, and shows why the naive quoting (eslgo.BuildVars) is unsafe.
func TestFSParserModel(t *testing.T) {
	t.Parallel()
	cases := []struct {
		line string
		vars [][2]string
	}{
		// The fixtures' own command.
		{"bgapi originate {origination_uuid=" + testUUID + ",originate_timeout=5}loopback/1003/cgcap &park()",
			[][2]string{{"origination_uuid", testUUID}, {"originate_timeout", "5"}}},
		// Single quotes are eaten by originate's blank split: the comma splits.
		{"bgapi originate {a='x,y'}loopback/1 &park()", [][2]string{{"a", "x"}}},
		// The documented work-around for commas in api originate: \'…\'.
		{`bgapi originate {absolute_codec_string=\'PCMA,PCMU\'}loopback/1 &park()`, [][2]string{{"absolute_codec_string", "PCMA,PCMU"}}},
		// callgate's encoding.
		{`bgapi originate {n=a\,\sb}loopback/1 &park()`, [][2]string{{"n", "a, b"}}},
	}
	for _, tc := range cases {
		p, err := fsParseOriginate(tc.line)
		require.NoError(t, err, tc.line)
		require.Equal(t, tc.vars, p.vars, tc.line)
		require.Equal(t, "&park()", p.exten)
	}
	// eslgo.BuildVars quotes values with a space, nothing else: a value can
	// add a variable or end the block.
	p, err := fsParseOriginate("bgapi originate {cg_x=1,origination_caller_id_number=911}loopback/1 &park()")
	require.NoError(t, err)
	require.Len(t, p.vars, 2, "a comma in a value adds a variable")
	_, err = fsParseOriginate("bgapi originate {cg_x='a b}loopback/9 &bridge(x)'}loopback/1 &park()")
	require.Error(t, err, "a brace in a quoted value ends the block")
	_, err = fsParseOriginate("bgapi originate {cg_x=a}loopback/1 &park()\nbgapi originate loopback/2 &park()")
	require.Error(t, err, "a newline starts a second command")
}
