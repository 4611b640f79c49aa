package asterisk

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := Config{Name: "a", URL: "http://127.0.0.1:8088/ari", User: "u", Password: "p", App: "callgate",
		DialTemplate: "PJSIP/{number}@trunk"}
	require.NoError(t, ok.withDefaults().Validate())
	require.Equal(t, "ws://127.0.0.1:8088/ari/events", ok.withDefaults().WebSocketURL)
	for field, mod := range map[string]func(*Config){
		"URL":          func(c *Config) { c.URL = "http://asterisk.example.com:8088/ari" },
		"Password":     func(c *Config) { c.Password = "" },
		"App":          func(c *Config) { c.App = "a b" },
		"DialTemplate": func(c *Config) { c.DialTemplate = "PJSIP/trunk" },
		"Name":         func(c *Config) { c.Name = "" },
		"Trunk":        func(c *Config) { c.DialTemplate = "PJSIP/{number}@{trunk}" }, // and no Trunk
		"Trunks":       func(c *Config) { c.Trunks = []string{"other"} },              // the template has no {trunk}
	} {
		c := ok
		mod(&c)
		err := c.withDefaults().Validate()
		require.Equal(t, field, controller.ErrorField(err), "%v", err)
	}
	c := ok
	c.URL, c.AllowInsecure = "http://asterisk.example.com:8088/ari", true
	require.NoError(t, c.withDefaults().Validate())
	c.URL, c.AllowInsecure = "https://asterisk.example.com/ari", false
	require.Equal(t, "wss://asterisk.example.com/ari/events", c.withDefaults().WebSocketURL)
	require.NoError(t, c.withDefaults().Validate())
}

// TestInputSafety: what could inject into a URL path, a query or a dial
// string is rejected before anything is sent.
func TestInputSafety(t *testing.T) {
	t.Parallel()
	s := benchSwitch(t)
	ctx := context.Background()
	for _, to := range []string{"1001&app=evil", "1001@other", "1001/2", "+", "", "1 001", "1001;2", "%31"} {
		err := s.Originate(ctx, controller.OriginateRequest{CallID: "cg-ok", To: to})
		require.Equal(t, controller.EINVALID, controller.ErrorCode(err), "%q: %v", to, err)
	}
	for _, id := range []string{"../asterisk/info", "a;2", "a?b", "a/b", "", "a%2F"} {
		err := s.Originate(ctx, controller.OriginateRequest{CallID: controller.CallID(id), To: "1001"})
		require.Equal(t, controller.EINVALID, controller.ErrorCode(err), "%q: %v", id, err)
		require.Equal(t, controller.EINVALID, controller.ErrorCode(s.Hangup(ctx, controller.CallID(id), "")))
	}
	err := s.Originate(ctx, controller.OriginateRequest{CallID: "cg-ok", To: "1001", CallerIDName: `x" <evil>`})
	require.Equal(t, controller.EINVALID, controller.ErrorCode(err))
	require.Equal(t, controller.EINVALID, controller.ErrorCode(s.Hangup(ctx, "cg-ok", "NOT_A_CAUSE")))
	for _, p := range []string{"/x/../etc/passwd", "/x y.wav", "sound:hello", "relative.wav", "tone_stream://%(1,0,440);loops=-1",
		"https://example.com/a.wav", "/a.wav\n", "tone_stream://%(100,0,440&x)"} {
		_, err := translate("prompt", p)
		require.Equal(t, controller.EINVALID, controller.ErrorCode(err), "%q", p)
	}
	for _, p := range []string{"../x.wav", "/rec/a b.wav", "/rec/a?.wav", "rec.wav"} {
		err := s.Record(ctx, "cg-ok", controller.RecordStart, p)
		require.Equal(t, controller.EINVALID, controller.ErrorCode(err), "%q", p)
	}
	for _, d := range []string{"PJSIP/a,b", "PJSIP/a&b", "Local/x@y/n(", "nope", "PJSIP/a b"} {
		_, err := s.Transfer(ctx, "cg-ok", d)
		require.Equal(t, controller.EINVALID, controller.ErrorCode(err), "%q", d)
	}
	q, err := s.originateQuery(controller.OriginateRequest{CallID: "cg-ok", To: "+15551231001", CallerIDNumber: "+1212", CallerIDName: "Call Gate"})
	require.NoError(t, err)
	enc := q.Encode()
	back, err := url.ParseQuery(enc)
	require.NoError(t, err)
	require.Equal(t, "Local/+15551231001@cgtest", back.Get("endpoint"))
	require.Equal(t, `"Call Gate" <+1212>`, back.Get("callerId"))
}

func TestTranslate(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]media{
		"/var/lib/callgate/prompts/consent.wav":    {uri: "sound:/var/lib/callgate/prompts/consent"},
		"tone_stream://%(500,0,440)":               {uri: "tone:440", ms: 500},
		"tone_stream://%(250,250,350,440);loops=2": {uri: "tone:350+440", ms: 1000},
		"silence_stream://250":                     {ms: 250},
	} {
		got, err := translate("prompt", in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
}

func TestFailureCause(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		dial     string
		code     int
		answered bool
		want     string
	}{
		{"BUSY", 0, false, "USER_BUSY"}, {"BUSY", 17, false, "USER_BUSY"}, {"CONGESTION", 0, false, "NORMAL_CIRCUIT_CONGESTION"},
		{"NOANSWER", 21, false, "CALL_REJECTED"}, {"NOANSWER", 1, false, "UNALLOCATED_NUMBER"}, {"", 19, false, "NO_ANSWER"},
		{"", 0, false, "NO_ROUTE_DESTINATION"}, {"", 16, true, "NORMAL_CLEARING"}, {"", 0, true, "NORMAL_CLEARING"},
		{"NOANSWER", 0, false, "NO_ANSWER"}, {"", 250, false, "NORMAL_UNSPECIFIED"},
	} {
		require.Equal(t, tc.want, failureCause(tc.dial, tc.code, tc.answered), "%+v", tc)
	}
}

// TestTrunkEndpoint: {trunk} is the request's trunk, the default one when it
// names none; a trunk the switch does not have is refused before anything
// is sent.
func TestTrunkEndpoint(t *testing.T) {
	t.Parallel()
	s, err := New(Config{Name: "b", URL: "http://127.0.0.1:1/ari", User: "u", Password: "p", App: "callgate",
		DialTemplate: "PJSIP/{number}@{trunk}", Trunk: "carrier1", Trunks: []string{"carrier2"}, RequestTimeout: time.Millisecond}, &nopSink{})
	require.NoError(t, err)
	for trunk, want := range map[string]string{"": "PJSIP/+15551231001@carrier1", "carrier1": "PJSIP/+15551231001@carrier1",
		"carrier2": "PJSIP/+15551231001@carrier2"} {
		q, err := s.originateQuery(controller.OriginateRequest{CallID: "cg-ok", To: "+15551231001", Trunk: trunk})
		require.NoError(t, err, trunk)
		require.Equal(t, want, q.Get("endpoint"), trunk)
	}
	for _, trunk := range []string{"carrier9", "carrier2&app=evil", "a/b", "x@y", "carrier2,PJSIP/1"} {
		err := s.Originate(context.Background(), controller.OriginateRequest{CallID: "cg-ok", To: "+15551231001", Trunk: trunk})
		require.Equal(t, "trunk", controller.ErrorField(err), "%q: %v", trunk, err)
	}
	require.Error(t, s.DeclareSecureTrunk("carrier1"), "a secure trunk is one fixed PJSIP endpoint, not {trunk}")
}
