package switchsim

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const consentArgs = "1 1 3 5000 # tone_stream://%(500,0,440) tone_stream://%(200,0,300) consent_digit ^[12]$ 3000"

// answeredCall originates number on a manual clock and waits until the
// a-leg is parked.
func answeredCall(t *testing.T, endpoint string) (*Sim, *ManualClock, *client, string) {
	t.Helper()
	s, clock := manualSim(t, Config{})
	c := dial(t, s, "ClueCon")
	c.command(allChannelEvents)
	uuid := newUUID()
	job := c.originate(uuid, endpoint)
	require.Equal(t, "+OK "+uuid+"\n", c.waitEvent(isJob(job)).eventBody())
	c.waitEvent(isEvent("CHANNEL_PARK", uuid))
	return s, clock, c, uuid
}

func (c *client) sendmsg(uuid, app, arg string, extra ...string) wireFrame {
	c.t.Helper()
	cmd := "sendmsg " + uuid + "\ncall-command: execute\nexecute-app-name: " + app
	if arg != "" {
		cmd += "\nexecute-app-arg: " + arg
	}
	for _, h := range extra {
		cmd += "\n" + h
	}
	return c.command(cmd + "\nevent-lock: true")
}

func TestConsentPromptOutcomes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		number, digit, result string
		playbackMS            string // of the last prompt played
	}{
		{"1001", "1", "success", "500"},
		{"1002", "2", "success", "500"},
		{"1005", "", "failure", "200"},
		{"1010", "", "failure", "500"},
	}
	for _, tc := range cases {
		t.Run(tc.number, func(t *testing.T) {
			t.Parallel()
			_, clock, c, uuid := answeredCall(t, "loopback/"+tc.number)
			appUUID := newUUID()
			require.Equal(t, "+OK", c.sendmsg(uuid, "play_and_get_digits", consentArgs, "Event-UUID: "+appUUID).get("Reply-Text"))
			exec := c.waitEvent(isEvent("CHANNEL_EXECUTE", uuid))
			require.Equal(t, "play_and_get_digits", exec.field("Application"))
			require.Equal(t, appUUID, exec.field("Application-UUID"))
			require.Equal(t, "1", exec.field("variable_current_loop"))
			clock.Advance(30 * time.Second)
			var dtmf []string
			done := c.collectUntil(uuid, func(f wireFrame) bool {
				if isEvent("DTMF", uuid)(f) {
					dtmf = append(dtmf, f.field("DTMF-Digit"))
				}
				return isEvent("CHANNEL_EXECUTE_COMPLETE", uuid)(f) && f.field("Application") == "play_and_get_digits"
			})
			complete := done[len(done)-1]
			require.Equal(t, appUUID, complete.field("Application-UUID"))
			require.Equal(t, tc.result, complete.field("variable_read_result"))
			require.Equal(t, tc.digit, complete.field("variable_consent_digit"))
			require.Equal(t, tc.playbackMS, complete.field("variable_playback_ms"))
			if tc.digit != "" {
				require.Equal(t, []string{tc.digit}, dtmf)
			} else {
				require.Empty(t, dtmf)
			}
		})
	}
}

// TestDigitBeforePrompt: a digit pressed before the prompt starts waits in
// the channel's queue and answers the prompt at once (see doc.go: a real
// park would discard it).
func TestDigitBeforePrompt(t *testing.T) {
	t.Parallel()
	_, clock, c, uuid := answeredCall(t, "loopback/1001")
	clock.Advance(2 * time.Second) // the callee pressed 1 at 1.5 s
	c.sendmsg(uuid, "play_and_get_digits", consentArgs)
	complete := c.waitEvent(func(f wireFrame) bool {
		return isEvent("CHANNEL_EXECUTE_COMPLETE", uuid)(f) && f.field("Application") == "play_and_get_digits"
	})
	require.Equal(t, "success", complete.field("variable_read_result"))
	require.Equal(t, "1", complete.field("variable_consent_digit"))
	require.Equal(t, "0", complete.field("variable_playback_ms"), "the prompt was cut short")
}

func TestWrongDigitRetriesThenFails(t *testing.T) {
	t.Parallel()
	_, clock, c, uuid := answeredCall(t, "loopback/1002")
	c.sendmsg(uuid, "play_and_get_digits", "1 1 2 1000 # silence_stream://300 silence_stream://100 choice ^1$")
	clock.Advance(10 * time.Second)
	complete := c.waitEvent(func(f wireFrame) bool {
		return isEvent("CHANNEL_EXECUTE_COMPLETE", uuid)(f) && f.field("Application") == "play_and_get_digits"
	})
	require.Equal(t, "failure", complete.field("variable_read_result"))
	require.Empty(t, complete.field("variable_choice"))
	require.Equal(t, "100", complete.field("variable_playback_ms"), "the invalid prompt played last")
}

func TestPlaybackLoopsAndQueue(t *testing.T) {
	t.Parallel()
	_, clock, c, uuid := answeredCall(t, "loopback/1005")
	c.sendmsg(uuid, "playback", "silence_stream://1500", "loops: 2")
	c.sendmsg(uuid, "set", "consent_prompt=v2")
	clock.Advance(10 * time.Second)
	var apps []string
	c.collectUntil(uuid, func(f wireFrame) bool {
		if f.eventName() == "CHANNEL_EXECUTE_COMPLETE" {
			apps = append(apps, f.field("Application")+":"+f.field("Application-Response"))
		}
		return f.eventName() == "CHANNEL_EXECUTE_COMPLETE" && f.field("Application") == "set"
	})
	require.Equal(t, []string{"playback:FILE PLAYED", "playback:FILE PLAYED", "set:_none_"}, apps)
	require.Equal(t, "v2", c.api("uuid_getvar "+uuid+" consent_prompt"))
	require.Equal(t, "1500", c.api("uuid_getvar "+uuid+" playback_ms"))
	require.Equal(t, "_undef_", c.api("uuid_getvar "+uuid+" current_loop"))
}

// TestRecordingMaskedTime checks record_ms leaves out masked time, like the
// capture (start, mask 500 ms, unmask, stop: 2021 ms recorded as 1520).
func TestRecordingMaskedTime(t *testing.T) {
	t.Parallel()
	_, clock, c, uuid := answeredCall(t, "loopback/1005")
	path := "/tmp/rec-" + uuid + ".wav"
	require.Equal(t, "+OK Success\n", c.api("uuid_record "+uuid+" start "+path))
	require.Equal(t, path, c.waitEvent(isEvent("RECORD_START", uuid)).field("Record-File-Path"))
	clock.Advance(1000 * time.Millisecond)
	require.Equal(t, "+OK Success\n", c.api("uuid_record "+uuid+" mask "+path))
	clock.Advance(500 * time.Millisecond)
	require.Equal(t, "+OK Success\n", c.api("uuid_record "+uuid+" unmask "+path))
	clock.Advance(521 * time.Millisecond)
	require.Equal(t, "+OK Success\n", c.api("uuid_record "+uuid+" stop "+path))
	stop := c.waitEvent(isEvent("RECORD_STOP", uuid))
	require.Equal(t, "1521", stop.field("variable_record_ms"))
	require.Equal(t, "12168", stop.field("variable_record_samples"))
	require.Equal(t, "24380", stop.field("variable_record_file_size"))
	require.Equal(t, "success-maxtime", stop.field("Record-Completion-Cause"))
	require.Equal(t, "-ERR Cannot stop record session!\n", c.api("uuid_record "+uuid+" stop "+path))
	require.Equal(t, "-ERR Cannot locate session!\n", c.api("uuid_record "+newUUID()+" start "+path))
	require.Equal(t, recordUsage, c.api("uuid_record "+uuid))
}

func TestRecordingStopsAtHangup(t *testing.T) {
	t.Parallel()
	_, clock, c, uuid := answeredCall(t, "loopback/1006")
	c.sendmsg(uuid, "record_session", "/tmp/x.wav")
	c.waitEvent(isEvent("RECORD_START", uuid))
	clock.Advance(3 * time.Second)
	evs := c.collectUntil(uuid, isEvent("CHANNEL_DESTROY", uuid))
	require.Equal(t, []string{"CHANNEL_HANGUP", "CHANNEL_UNPARK", "CHANNEL_EXECUTE_COMPLETE", "RECORD_STOP",
		"CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY"}, names(evs))
}

func TestSendmsgHangupAndErrors(t *testing.T) {
	t.Parallel()
	_, _, c, uuid := answeredCall(t, "loopback/1005")
	unknown := newUUID()
	require.Equal(t, "-ERR invalid session id ["+unknown+"]",
		c.command("sendmsg "+unknown+"\ncall-command: execute\nexecute-app-name: park").get("Reply-Text"))
	require.Equal(t, "+OK", c.command("sendmsg "+uuid+"\ncall-command: hangup\nhangup-cause: CALL_REJECTED").get("Reply-Text"))
	hc := c.waitEvent(isEvent("CHANNEL_HANGUP_COMPLETE", uuid))
	require.Equal(t, "CALL_REJECTED", hc.field("Hangup-Cause"))
}

// TestSendmsgBodyCRLF sends a sendmsg as eslgo writes it: CRLF line ends,
// the application argument in a Content-Length body, and a trailing CRLF
// pair after the body.
func TestSendmsgBodyCRLF(t *testing.T) {
	t.Parallel()
	_, _, c, uuid := answeredCall(t, "loopback/1005")
	body := "silence_stream://100"
	c.send("sendmsg " + uuid + "\r\ncall-command: execute\r\nexecute-app-name: playback\r\ncontent-type: text/plain\r\n" +
		"Content-Length: " + itoa(len(body)) + "\r\n\r\n" + body + "\r\n\r\n")
	for {
		f := c.next()
		if f.isEvent() {
			continue
		}
		require.Equal(t, "+OK", f.get("Reply-Text"))
		break
	}
	exec := c.waitEvent(isEvent("CHANNEL_EXECUTE", uuid))
	require.Equal(t, "playback", exec.field("Application"))
	require.Equal(t, body, exec.field("Application-Data"))
	require.Equal(t, "true", c.api("uuid_exists "+uuid), "the trailing CRLFs are not a command")
}

func TestHangupAppViaSendmsg(t *testing.T) {
	t.Parallel()
	_, _, c, uuid := answeredCall(t, "loopback/1005")
	c.sendmsg(uuid, "hangup", "USER_BUSY")
	evs := c.collectUntil(uuid, isEvent("CHANNEL_DESTROY", uuid))
	require.Equal(t, []string{"CHANNEL_EXECUTE", "CHANNEL_HANGUP", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_UNPARK",
		"CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY"}, names(evs))
	require.Equal(t, "USER_BUSY", evs[5].field("variable_hangup_cause"))
	require.Equal(t, "17", evs[5].field("variable_hangup_cause_q850"))
}
