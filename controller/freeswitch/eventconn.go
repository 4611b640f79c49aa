package freeswitch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// The event connection
//
// Each switch has two inbound ESL connections: eslgo's carries commands
// (auth, api, bgapi, sendmsg, the heartbeat) and subscribes to nothing; this
// one carries events only and is read by callgate's own frameReader (see
// eventparse.go) on one goroutine, in wire order. FreeSWITCH broadcasts
// every event, BACKGROUND_JOB included, to every connection subscribed to
// it, so the job results of bgapi commands sent on the command connection
// arrive here.
//
// The connection sends nothing after subscribing. A peer that vanishes is
// found by TCP keep-alive (net.Dialer's default) or, with the switch
// process, by the command connection's heartbeat: either connection failing
// closes both.

// eventConn is an authenticated, subscribed event connection.
type eventConn struct {
	nc   net.Conn
	r    *frameReader
	done chan struct{} // closed when the read loop has returned
}

// longAgo is a deadline in the past: it aborts a blocked read or write.
var longAgo = time.Unix(1, 0)

// dialEvents connects, authenticates and subscribes to subscribedEvents,
// within cfg.CommandTimeout and ctx. Returns ctx.Err() if ctx ended first;
// any other error says which step failed and never holds the password.
func dialEvents(ctx context.Context, cfg *Config) (*eventConn, error) {
	d := net.Dialer{Timeout: cfg.CommandTimeout}
	nc, err := d.DialContext(ctx, "tcp", cfg.Address)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("connecting to %s: %w", cfg.Address, err)
	}
	ec := &eventConn{nc: nc, r: newFrameReader(nc), done: make(chan struct{})}
	if err := ec.handshake(ctx, cfg); err != nil {
		_ = nc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errors.New(scrubSecret(err.Error(), cfg.Password))
	}
	return ec, nil
}

// handshake runs auth and `event plain` with a deadline that ctx can
// bring forward.
func (e *eventConn) handshake(ctx context.Context, cfg *Config) error {
	if err := e.nc.SetDeadline(time.Now().Add(cfg.CommandTimeout)); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = e.nc.SetDeadline(longAgo) })
	defer stop()
	if _, err := e.await(ctAuthRequest); err != nil {
		return fmt.Errorf("waiting for the auth request: %w", err)
	}
	reply, err := e.command("auth " + cfg.Password)
	if err != nil {
		return fmt.Errorf("authenticating: %w", err)
	}
	if !strings.HasPrefix(reply, "+OK") {
		return fmt.Errorf("authentication refused: switch replied %q", reply)
	}
	reply, err = e.command(subscribeCommand{events: subscribedEvents}.BuildMessage())
	if err != nil {
		return fmt.Errorf("subscribing: %w", err)
	}
	if !strings.HasPrefix(reply, "+OK") {
		return fmt.Errorf("subscribing: switch replied %q", reply)
	}
	if !stop() {
		return context.Cause(ctx) // the deadline may already be in the past
	}
	return e.nc.SetDeadline(time.Time{})
}

// command writes one command and returns its Reply-Text.
func (e *eventConn) command(line string) (string, error) {
	if _, err := e.nc.Write([]byte(line + "\n\n")); err != nil {
		return "", err
	}
	f, err := e.await(ctCommandReply)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(f.replyText), nil
}

// await reads frames until one of content type ct, skipping others; a
// disconnect notice or rejection is an error.
func (e *eventConn) await(ct string) (frame, error) {
	for {
		f, err := e.r.next()
		if err != nil {
			return f, err
		}
		switch f.contentType {
		case ct:
			return f, nil
		case ctDisconnect, ctRudeRejection:
			return f, fmt.Errorf("%w (%s)", errDisconnected, f.contentType)
		}
	}
}

// close closes the socket and waits for the read loop, which must have
// been started.
func (e *eventConn) close() {
	_ = e.nc.Close()
	<-e.done
}

// readEvents reads events until the stream fails and returns why
// (errDisconnected for a disconnect notice). Frames other than events are
// skipped.
func (s *Switch) readEvents(r *frameReader) error {
	var p eventParser
	for {
		f, err := r.next()
		if err != nil {
			return err
		}
		switch f.contentType {
		case ctEventPlain:
			s.onEvent(&p, f.body)
		case ctDisconnect:
			return errDisconnected
		}
	}
}

// onEvent parses one event body, drops what callgate does not need —
// unmapped names, channels callgate did not originate, jobs other than
// originate — without allocating, and queues the rest for the dispatcher.
func (s *Switch) onEvent(p *eventParser, body []byte) {
	if err := p.parse(body); err != nil {
		s.stats.malformed.Add(1)
		return
	}
	name := p.value(hEventName)
	if string(name) == eventBackgroundJob {
		if string(p.value(hJobCommand)) != "originate" {
			s.stats.ignored.Add(1)
			return
		}
	} else {
		if _, ok := channelKinds[string(name)]; !ok {
			s.stats.ignored.Add(1)
			return
		}
		if !s.calls.has(p.value(hUniqueID)) {
			s.stats.foreign.Add(1)
			return
		}
	}
	s.disp.push(p.event())
}
