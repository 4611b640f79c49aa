package switchsim

import (
	"strconv"
	"time"
)

// Faults are failures the simulator injects on purpose. The zero value
// injects none.
type Faults struct {
	// ReplyDelay holds every command reply (and the events a command causes)
	// for this long of wall-clock time, like a switch under load.
	ReplyDelay time.Duration
	// DropAfterEvents cuts a connection abruptly (TCP reset, no disconnect
	// notice) once it has been sent this many events in total. 0 disables.
	DropAfterEvents int
}

// SetFaults replaces the injected faults; they apply from the next command
// or event on.
func (s *Sim) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// DropConnections cuts every client connection now, like a network failure:
// no disconnect notice, TCP reset. Calls keep running and the listener keeps
// accepting; events produced while nobody listens are lost. ARI events
// WebSockets are cut the same way (no close frame); REST keeps working.
func (s *Sim) DropConnections() {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, c := range conns {
		c.abort()
	}
	s.dropARIConns()
}

// Burst sends n filler events to every subscribed client in a single
// write: CHANNEL_EXECUTE / CHANNEL_EXECUTE_COMPLETE pairs of a channel
// callgate never originated, and every tenth a HEARTBEAT. Each client gets
// the ones it subscribed to, through its filters.
func (s *Sim) Burst(n int) {
	s.lock()
	defer s.unlock()
	for _, c := range s.conns {
		c.hold()
	}
	ghost := &channel{
		uuid: newUUID(), name: "sofia/internal/filler@192.0.2.50", kind: legInbound,
		direction: "inbound", state: "CS_EXECUTE", stateNum: 4, callState: "ACTIVE",
		answerState: "answered", hitDialplan: true, codecName: "PCMU", codecRate: "8000",
		codecBits: "64000", created: s.now, answered: s.now,
		prof: profile{dialplan: "XML", cidNumber: "filler", origCidNumber: "filler", ani: "filler",
			dest: "9999", source: "mod_sofia", context: "public", networkAddr: "192.0.2.50"},
	}
	ghost.callUUID = ghost.uuid
	ghost.vars.set("direction", "inbound")
	ghost.vars.set("uuid", ghost.uuid)
	for i := 0; i < n; i++ {
		switch {
		case i%10 == 9:
			e := s.newEvent("HEARTBEAT")
			s.addHeartbeatHeaders(e)
			s.emit(e)
		case i%2 == 0:
			s.emitChannel(ghost, "CHANNEL_EXECUTE", "Application", "playback",
				"Application-Data", "filler-"+strconv.Itoa(i)+".wav", "Application-UUID", newUUID())
		default:
			s.emitChannel(ghost, "CHANNEL_EXECUTE_COMPLETE", "Application", "playback",
				"Application-Data", "filler-"+strconv.Itoa(i)+".wav", "Application-Response", "FILE PLAYED",
				"Application-UUID", newUUID())
		}
	}
	dropAfter := s.faults.DropAfterEvents
	for _, c := range s.conns {
		c.release(nil, dropAfter)
	}
}

// StartForeignChannel creates an inbound call from number that callgate did
// not originate (it answers and parks, and lives until killed), so drivers
// can be tested to ignore channels they do not own. It returns the channel
// UUID.
func (s *Sim) StartForeignChannel(number string) string {
	s.lock()
	defer s.unlock()
	ch := s.newChannel(legInbound, newUUID(), "sofia/external/"+number+"@192.0.2.10")
	ch.number = number
	ch.direction = "inbound"
	ch.callUUID = ch.uuid
	ch.hitDialplan = true
	ch.codecName, ch.codecRate, ch.codecBits = "PCMU", "8000", "64000"
	ch.prof = profile{dialplan: "XML", cidName: number, cidNumber: number, origCidName: number,
		origCidNumber: number, networkAddr: "192.0.2.10", ani: number, dest: "callgate",
		source: "mod_sofia", context: "public"}
	ch.vars.set("direction", "inbound")
	ch.vars.set("uuid", ch.uuid)
	ch.vars.set("session_id", strconv.Itoa(ch.sessionID))
	ch.vars.set("sip_profile_name", "external")
	ch.vars.set("channel_name", ch.name)
	ch.vars.set("sip_from_user", number)
	ch.vars.set("sip_network_ip", "192.0.2.10")
	ch.vars.set("read_codec", "PCMU")
	ch.vars.set("read_rate", "8000")
	ch.vars.set("write_codec", "PCMU")
	ch.vars.set("write_rate", "8000")
	ch.setState("CS_INIT", 2)
	s.emitChannel(ch, "CHANNEL_CREATE")
	ch.script = []Step{{App: "answer"}, {App: "park"}}
	s.startScript(ch)
	return ch.uuid
}
