// Package asterisk drives an Asterisk media server over ARI (REST and the
// events WebSocket). It is the only package in callgate that imports
// github.com/CyCoreSystems/ari/v6; it uses the library's event names and
// timestamp type but neither its HTTP client (no timeout, no context, error
// bodies dropped) nor its event bus (100-event subscriptions that drop,
// one goroutine per subscriber so no order): see rest.go and readEvents.
//
// # Shape
//
// Like the FreeSWITCH driver: Config/Validate, New, Start (a supervisor that
// keeps the events WebSocket up, reconnecting with exponential backoff and
// full jitter, heart-beating with GET /asterisk/ping, and calling
// sink.SwitchConnected after every connect so the dialer reconciles with
// Channels), Stop, Status. One goroutine reads the WebSocket in order and
// queues the events of callgate's calls; one dispatcher delivers them, so a
// call's events reach the sink in the order Asterisk sent them.
//
// # Mapping (Asterisk 22 fixtures → the events FreeSWITCH's driver sends)
//
// Calls are originated with POST /channels?endpoint=…&app=App&channelId=<call
// id>: the ;1 half of the channel is the Stasis channel and carries the call
// id; the ;2 half ("<id>;2") and every channel callgate did not create are
// ignored. Asterisk answers 200 even for a call that fails at once, so the
// REST reply means nothing; outcomes are events:
//
//	ChannelStateChange Ringing / Dial RINGING     → EventProgress (once)
//	ChannelStateChange Up / StasisStart state Up  → EventAnswer (At = event time), then EventOriginateAccepted
//	ChannelDestroyed, never answered              → EventOriginateFailed, EventHangupComplete, EventDestroy
//	ChannelDestroyed after an answer              → EventHangup, EventHangupComplete (Answered, AnsweredAt,
//	                                                Billsec = answer→end, Duration = creation→end), EventDestroy
//	ChannelDtmfReceived, Playback*, Recording*    → IVR steps only, not the sink
//
// The hangup cause comes from failureCause (events.go): a final Dial status
// BUSY or CONGESTION wins (Busy() and Congestion() destroy the channel with
// cause 0), else ChannelDestroyed's Q.850 code by FreeSWITCH's name, else
// NO_ANSWER / REQUESTED_CHAN_UNAVAIL for those Dial statuses, else
// NO_ROUTE_DESTINATION for a channel that died with cause 0 and no Dial
// status (an unknown extension: what FreeSWITCH reports for an unknown
// loopback extension). ChannelHangupRequest's cause with soft:true is a
// soft-hangup flag and is never used. A channel that vanishes without a
// single event (originated into a Stasis app that is not registered: README
// 09b) is found by a lookup after the ring timeout and fails with
// SERVICE_UNAVAILABLE.
//
// # Differences from ESL that matter
//
//   - No job reply: there is no BACKGROUND_JOB. EventOriginateAccepted is
//     synthesised when the answered channel enters Stasis, and
//     EventOriginateFailed at ChannelDestroyed.
//   - No CHANNEL_CREATE / CHANNEL_HANGUP for a failed call: the failure
//     sequence is originate_failed, hangup_complete, destroy.
//   - Billsec and Duration are computed from event timestamps (ms
//     precision), truncated to seconds like FreeSWITCH's.
//   - Originate REST errors: 409 (duplicate channelId) is ECONFLICT, other
//     4xx/5xx EREFUSED (nothing was created); a refused connection is
//     ErrNotSent; a timeout after sending is ambiguous and never retried.
//   - Channel variables cannot be set on originate (EINVALID).
//   - IVR steps have no switch-side application: Play is POST
//     /channels/{id}/play with a playbackId callgate chooses (registered
//     before the request: PlaybackStarted can overtake the reply); Gather is
//     play_and_get_digits rebuilt in Go from ChannelDtmfReceived events
//     (gather.go); recordings use two snoop channels (record.go); Transfer
//     uses a mixing bridge and a second originate (transfer.go).
//   - Prompts: /path/name.wav → sound:/path/name; tone_stream://%(on,off,f1[,f2])
//     → tone:f1[+f2] stopped after the tone's length; silence_stream://ms is
//     a wait; http(s) URLs are refused (EINVALID) because the fixtures do
//     not show Asterisk 22 playing them.
//   - EventRecordStop of a recording still running when the call ends is
//     delivered after the call's EventDestroy (the files are fetched from
//     Asterisk once the snoops are gone); on FreeSWITCH RECORD_STOP comes
//     before CHANNEL_HANGUP_COMPLETE.
package asterisk
