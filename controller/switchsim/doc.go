// Package switchsim is a simulated FreeSWITCH 1.10 that speaks the Event
// Socket (ESL) protocol byte for byte like the real one, for tests and demos
// of callgate's FreeSWITCH driver, which connects to it over real TCP. On a
// second listener (ListenARI) it is also a simulated Asterisk 22 speaking
// ARI, REST and events WebSocket, for callgate's Asterisk driver (see
// "Asterisk ARI" below).
//
//	s := switchsim.New(switchsim.Config{Password: "secret", TimeScale: 0.01})
//	if err := s.Listen("127.0.0.1:8021"); err != nil { … }
//	defer s.Close()
//
// # What it speaks
//
// Inbound ESL as mod_event_socket does it: auth, event plain|json|xml,
// nixevent, noevents, filter (add/delete, negative and /regex/ values),
// api, bgapi (with Job-UUID and BACKGROUND_JOB), sendmsg (execute and
// hangup, with loops, event-lock, Event-UUID, a Content-Length body) and
// exit. Commands may end in "\n\n" or "\r\n\r\n".
//
// API commands: status, show channels|calls [as json], originate,
// uuid_kill, uuid_exists, uuid_record start|stop|mask|unmask, uuid_getvar,
// uuid_setvar, hupall, fsctl max_sessions|sps, version, hostname, and
// sofia status profile <name> (Config.SofiaProfiles, SetSofiaProfile).
// OriginateCommands returns every ESL originate's arguments as received.
//
// Endpoints: loopback/<number>[/<context>] (two channels, the -a leg
// callgate controls and the -b leg that runs the callee),
// sofia/gateway/<gateway>/<number> and sofia/<profile>/<number>[@host] (one
// channel; the far end is simulated), and error/<CAUSE> (fails at once).
// The last four digits of the number choose the callee's behaviour
// (Scenarios, and dialplans/SCENARIOS.md).
//
// Applications (dialplan steps and sendmsg execute): answer, pre_answer,
// ring_ready, sleep, send_dtmf, hangup, park, echo, playback,
// play_and_get_digits, record_session, stop_record_session, set, export,
// unset and bridge. bridge <dial string> dials the same endpoints as
// originate (same callee scenarios, same session limit, DESTINATION_OUT_OF_ORDER
// when over it), creating the new leg(s) with CHANNEL_OUTGOING/CREATE/
// ORIGINATE and the Other-Type: originator / Other-Leg-* block of capture
// 19. When the callee answers it sets originate_disposition=SUCCESS and
// emits CHANNEL_BRIDGE on the bridging channel; when the callee hangs up,
// CHANNEL_UNBRIDGE with last_bridge_hangup_cause and bridge_hangup_cause
// set, then CHANNEL_EXECUTE_COMPLETE, and the bridging channel stays up
// (it hangs up too only with hangup_after_bridge=true). When the callee
// fails (busy, rejected, unallocated, or no answer within call_timeout,
// the dial string's {originate_timeout}, or 60 s) the new leg hangs up and
// the application completes at once with originate_disposition=<cause>,
// DIALSTATUS, originate_causes and originate_failed_cause as in capture 19.
// If the bridging channel hangs up first, the other leg is cancelled
// (ORIGINATOR_CANCEL) or, once bridged, hung up (NORMAL_CLEARING).
//
// Events have the header set and order of FreeSWITCH 1.10.12 as captured
// in shared/fixtures/freeswitch; TestFixtureReplay replays those sessions
// against the simulator and compares the bytes.
//
// # Asterisk ARI
//
// The same Sim also speaks Asterisk 22's REST Interface and its events
// WebSocket, faithful to the captures in shared/fixtures/asterisk (copied
// to testdata/ari; TestARIFixtures replays every file):
//
//	s := switchsim.New(switchsim.Config{ARIUser: "callgate", ARIPassword: "callgate", TimeScale: 0.01})
//	if err := s.ListenARI("127.0.0.1:8088"); err != nil { … }
//	// http://<s.ARIAddr()>/ari/…, ws://<s.ARIAddr()>/ari/events?app=callgate&api_key=callgate:callgate
//
// Auth is HTTP basic or api_key=user:pass (401 {"message":"Authentication
// required"} with WWW-Authenticate, on the WebSocket handshake too; a
// handshake without app gets Asterisk's HTML 400). Responses carry
// Server: Asterisk, Cache-Control and Content-type: application/json as
// captured; JSON members come in Asterisk's order. Endpoints: asterisk/info,
// asterisk/ping; channels (GET list, POST originate, POST create, GET,
// DELETE with reason_code or reason, answer, dial, play[/id], record,
// dtmf, variable GET/POST, snoop[/id], and ring/hold/mute as no-ops);
// playbacks (GET, DELETE, control); recordings/live (GET, DELETE cancel,
// stop, mute, pause); recordings/stored (list, GET, DELETE, file as
// audio/wav); bridges (list, POST create, GET, DELETE, addChannel,
// removeChannel, record, play); applications (list, GET). Unknown paths
// answer 404 "Resource not found", a known path with another method 405
// "Invalid method" with Allow. Originate errors: no endpoint 400, no
// app/extension 400, no "/" 400 "Invalid endpoint specified", a technology
// other than Local, PJSIP or SIP 500 {"error":"Allocation failed"}, a
// duplicate channelId 409.
//
// Endpoints: Local/<exten>@<context> makes the ;1 half (id = channelId,
// in Stasis) and the ;2 half (id <channelId>;2, or otherChannelId) that
// runs the callee; the last four digits of exten choose the callee from
// cgtest-extensions.conf (ARIScenarios: 1001..1009 and 1011..1015, plus
// 1010 from the ESL table; any other number, or a context whose name does
// not start with "cg", is "no such extension"). PJSIP/<number>@<trunk> or
// SIP/… is one channel whose far end follows the same table (an unknown
// number answers 404: Dial NOANSWER, cause 1). POST /channels originates
// (always 200 with state Down; the app is subscribed to both Local halves:
// Dial "" / ChannelStateChange Up / Dial ANSWER / ChannelVarset
// STASISSTATUS / StasisStart Up); channels/create + dial puts the ;1 half
// in Stasis first (Down) and the app sees only it. Busy, congestion,
// Hangup(n), no answer (dial timeout), no such extension and an
// application nobody registered fail with the Dial statuses, hangup
// requests and causes the captures show, for each form. App hangups are
// ChannelHangupRequest soft 32, StasisEnd, STASISSTATUS=SUCCESS,
// ChannelDestroyed (16, or the reason given); far-end hangups a
// non-soft ChannelHangupRequest with the cause.
//
// Callee applications run on the Clock: Answer() waits 500 ms for the
// first media frame (20 ms after a playback starts on the Stasis side,
// 100 ms after it starts sending DTMF), SendDTMF waits 100 ms, then each
// digit lasts its duration (ChannelDtmfReceived at its end) and is
// followed by the gap (250 ms default); MusicOnHold sends audio; Echo
// sends back what the app plays and the DTMF it sends (events on both
// halves). Playbacks: tone: until stopped, sound:hello-world 1.4 s, other
// sound: 1 s, an absolute sound: path with a WAV file its real length,
// recording:<name> the stored file's length (missing: "failed");
// playbacks on a channel queue. Channel recordings write an 8 kHz mono
// 16-bit WAV (a 440 Hz tone for the time the channel heard audio) to
// Config.ARIRecordingDir when they stop; terminateOn stops on the digit;
// a channel in a bridge cannot be recorded (RecordingFailed); snoop
// channels (spy) get their own StasisStart and always hear frames; a
// bridge recording adds a Recorder channel (BRIDGEPEER). Bridges report
// simple_bridge up to two channels.
//
// The Sim-wide API covers ARI channels too: Channel, Channels,
// ChannelCount, Originated, WaitChannelGone and HangupChannel (the far end
// hangs up with the cause); DropConnections cuts the events WebSockets
// without a close frame, SetRefuseConnections answers new handshakes 503,
// Faults.ReplyDelay delays REST replies. StartARIInboundChannel puts an
// inbound PJSIP channel into Stasis(Config.ARIApp).
//
// # Time
//
// Behaviour runs on a Clock in simulated time: Config.TimeScale slows or
// speeds the wall clock (0.01 runs a 60 s ring timeout in 600 ms) and a
// ManualClock lets tests step time. Timestamps and CDR durations are in
// simulated time, so an answered 1 s call reports billsec 1 at any scale.
//
// # Where it deliberately differs from FreeSWITCH
//
//   - Digits the callee sends while the controlled leg only parks wait in
//     its DTMF queue for the next play_and_get_digits; a real park would
//     consume and drop them. This keeps fast-clock tests from depending on
//     how quickly the client sends the prompt.
//   - Only the channel events of the calls it models are produced: no
//     CHANNEL_STATE, CHANNEL_CALLSTATE, CHANNEL_DATA, REQUEST_PARAMS or
//     custom events. HEARTBEAT comes every 20 s of simulated time; its
//     headers and the XML event format are not covered by a capture.
//   - SIP channels carry a reduced, synthetic set of SIP and RTP variables
//     (shape checked against a capture, values invented) and always report
//     variable_sip_term_status.
//   - A loopback call needs two free sessions or is refused whole.
//   - Sessions per second: over budget, an originate waits for the next
//     simulated second (FreeSWITCH 1.10 delays too); "fsctl sps" changes the
//     budget from the next second on. A duplicate origination_uuid fails
//     with DESTINATION_OUT_OF_ORDER, like the session limit.
//   - sendmsg applications run when the channel is parked or idle, queued
//     behind each other; applications the simulator does not model
//     complete at once. Prompts last as long as a tone_stream:// or
//     silence_stream:// says, any other file one second.
//   - Recordings are files only under Config.RecordDir (other paths are
//     just reported): an 8 kHz 16-bit WAV, stereo when RECORD_STEREO=true,
//     holding a 440 Hz tone (660 Hz on the right) instead of call audio.
//     The file lasts exactly record_ms: masked time is left out, where
//     FreeSWITCH writes it as silence (and so makes a longer file than the
//     talk time). It is written whole (temporary file, then rename) when
//     the recording stops, before RECORD_STOP; a failed write is logged and
//     RECORD_STOP still comes with the same completion cause.
//   - bridge dials only the first endpoint of a dial string ("," "|" and
//     ":_:" lists are cut there), sends no ringback or early media to the
//     caller, ignores continue_on_fail, park_after_bridge and
//     transfer_after_bridge, and is not delayed by the sessions-per-second
//     budget. Its ring timeout is the channel's call_timeout or the dial
//     string's {originate_timeout}/{call_timeout}/[leg_timeout], 60 s by
//     default; the bridging channel's own originate_timeout (left from the
//     originate that created it) does not count. A callee failure over
//     loopback completes the application after the new legs'
//     CHANNEL_DESTROY (like originate's BACKGROUND_JOB in capture 05), a
//     SIP failure, timeout or cancel right after the new leg's
//     CHANNEL_HANGUP (capture 19).
//   - No capture holds CHANNEL_BRIDGE or CHANNEL_UNBRIDGE. Their shape
//     (Bridge-A-Unique-ID and Bridge-B-Unique-ID before the channel data,
//     Other-Type: originatee with the new leg's profile and times) follows
//     the FreeSWITCH source and a published FreeSWITCH 1.6 example; the
//     Event-Calling-Line-Number values come from that example, not from
//     1.10.12. The success-path variables (originate_disposition and
//     DIALSTATUS SUCCESS, originate_causes <uuid>;NONE, bridge_to,
//     last_bridge_to, bridge_channel, bridge_uuid, signal_bond,
//     bridge_hangup_cause, bridge_epoch/bridge_stamp) and the DIALSTATUS of
//     causes other than ORIGINATOR_CANCEL follow the source too.
//     last_bridge_hangup_cause (and last_bridge_proto_specific_hangup_cause)
//     is set on the other party when one side hangs up while the other is
//     up, as capture 19 shows on the new leg. show calls does not pair
//     bridged legs.
//   - "sofia status profile <name>" is not covered by a capture: its text
//     follows mod_sofia.c's cmd_status (1.10 source), with invented values
//     (loopback addresses, ports 5080/5082/5081 as shipped, zero counters,
//     no registrations, no Ext-*-IP lines). The profiles are data
//     (Config.SofiaProfiles, default "external" and TLS "external-tls",
//     both running) and do not affect calls: sofia/gateway/… still always
//     uses "external" in channel names, and rtp_secure_media changes
//     nothing: no SRTP is negotiated. A stopped profile answers
//     "Invalid Profile!"; any other sofia subcommand answers an invented
//     -ERR line.
//   - Times are UTC (Event-Date-Local equals GMT); status reports fixed CPU
//     and stack figures; userauth, myevents, linger and log are not
//     implemented.
//
// # Where the ARI side differs from Asterisk 22.10.1
//
//   - Timing is modelled, not measured: a channel recording that hears
//     no audio stops maxDurationSeconds+1.1 s after it began with duration
//     0 and a 44-byte file (as captured); once audio flows it stops
//     maxDurationSeconds+0.25 s after the first frame, duration = whole
//     seconds heard (capped). A bridge recording stops
//     maxDurationSeconds+0.13 s after it began, duration = seconds of
//     audio heard, rounded. Captured files hold a little more audio than
//     the duration says; the simulator's hold exactly the time heard.
//   - Recording files are a tone, not call audio; paused and muted time
//     are both left out of the file (Asterisk writes silence while muted);
//     paused time does not count in duration, muted time does. Only
//     format=wav (422 otherwise); ifExists=append overwrites; beep and
//     maxSilenceSeconds are ignored.
//   - The play reply always says "queued" (Asterisk races: queued or
//     playing). Several media in one play use only the first. Playback
//     control operations are accepted and do nothing. A playback stopped
//     while queued, or cut by a hangup, finishes "done".
//   - No BridgeCreated (none was captured after POST /bridges); bridge
//     events go to the applications of channels that were in the bridge.
//     Bridged channels do not exchange media.
//   - Not captured, invented: a DELETE while the callee still rings sends
//     Dial CANCEL; create+dial to a missing extension hangs up the Stasis
//     channel with cause 0; Congestion()/Hangup(17) in the create form
//     behave like Busy()/Hangup(21) there; a snoop whose target goes away
//     only gets StasisEnd; SIP far-end failures end with ChannelDestroyed
//     carrying the callee's cause (17 for Busy, 34 for Congestion);
//     refused handshakes get 503.
//   - 204 replies carry no "Content-Length: 0" (Go's HTTP server drops
//     it, as RFC 9110 asks; Asterisk sends it); headers are not in
//     Asterisk's order.
//   - An application counts as registered only while an events WebSocket
//     for it is connected (Stasis() fails otherwise, like the
//     unregistered-app capture); every WebSocket of an app gets its
//     events (Asterisk keeps only the newest); subscribeAll is ignored;
//     there is no applications/{app}/subscription, endpoints, device
//     states, mailboxes, sounds or channel variables beyond those set and
//     CHANNEL(state|name|uniqueid), CALLERID(num|name), CONTEXT, EXTEN.
//     Faults.DropAfterEvents does not apply to the WebSockets.
package switchsim
