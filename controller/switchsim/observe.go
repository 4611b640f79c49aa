package switchsim

import (
	"context"
	"errors"
	"net"
	"slices"
)

// What tests can watch and steer beyond the wire: waiting for the switch
// to reach a state, counting what it refused, refusing connections.

// ErrClosed is returned by waits when the simulator is closed.
var ErrClosed = errors.New("switchsim: closed")

// wake releases everyone waiting in waitUntil so they re-check their
// condition. Caller holds s.mu.
func (s *Sim) wake() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitUntil blocks until cond (checked under s.mu) holds. Returns ctx's
// error or ErrClosed if that comes first.
func (s *Sim) waitUntil(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ok, changed := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return ErrClosed
		}
	}
}

// WaitChannelGone blocks until no channel has the UUID (destroyed or never
// created). Returns ctx's error if it ends first.
func (s *Sim) WaitChannelGone(ctx context.Context, uuid string) error {
	return s.waitUntil(ctx, func() bool {
		return s.channels[uuid] == nil && (s.ari == nil || s.ari.channels[uuid] == nil)
	})
}

// Refusals returns how many originates the switch refused before creating
// any channel (session limit or duplicate origination_uuid).
func (s *Sim) Refusals() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refusals
}

// WaitRefusals blocks until at least n originates have been refused.
// Returns ctx's error if it ends first.
func (s *Sim) WaitRefusals(ctx context.Context, n int) error {
	return s.waitUntil(ctx, func() bool { return s.refusals >= n })
}

// HupallCount returns how many hupall commands the switch has run.
func (s *Sim) HupallCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hupalls
}

// SetRefuseConnections makes the switch turn away new ESL connections, the
// way FreeSWITCH answers a client its ACL rejects (text/rude-rejection,
// then close), and new ARI events WebSockets (HTTP 503 instead of the
// upgrade), until called with false. Existing connections stay.
func (s *Sim) SetRefuseConnections(refuse bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseConns = refuse
}

const rudeRejection = "Content-Type: text/rude-rejection\nContent-Length: 24\n\nAccess Denied, go away.\n"

// reject turns a new connection away.
func (s *Sim) reject(nc net.Conn) {
	defer s.wg.Done()
	_, _ = nc.Write([]byte(rudeRejection))
	_ = nc.Close()
}

// HangupChannel ends a channel as if its far end hung up with cause,
// whether or not any client is connected. Returns false if there is no
// such channel.
func (s *Sim) HangupChannel(uuid, cause string) bool {
	s.lock()
	defer s.unlock()
	ch := s.channels[uuid]
	if ch == nil {
		return s.ariHangupFault(uuid, cause)
	}
	s.hangupChannel(ch, parseCause(cause), false)
	return true
}

// WaitOriginated blocks until the simulator has received at least n
// originates. Returns ctx's error or ErrClosed if that comes first.
func (s *Sim) WaitOriginated(ctx context.Context, n int) error {
	return s.waitUntil(ctx, func() bool { return s.originated >= n })
}

// OriginatedUUIDs counts the ESL originates received per origination_uuid
// (a UUID seen twice is a call placed twice).
func (s *Sim) OriginatedUUIDs() map[string]int {
	s.mu.Lock()
	args := slices.Clone(s.originates)
	s.mu.Unlock()
	out := make(map[string]int, len(args))
	for _, a := range args {
		o, _ := ParseOriginate(a)
		for _, v := range o.Vars {
			if v.Name == "origination_uuid" {
				out[v.Value]++
			}
		}
	}
	return out
}
