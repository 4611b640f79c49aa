package freeswitch

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/stretchr/testify/require"
)

func eventsConfig(addr string) *Config {
	return &Config{Name: "fs1", Address: addr, Password: "ClueCon", CommandTimeout: 5 * time.Second}
}

// TestDialEvents: auth, then `event plain` with the driver's event list;
// the reader then starts exactly at the first event.
func TestDialEvents(t *testing.T) {
	t.Parallel()
	srv := newFakeESL(t, nil)
	ec, err := dialEvents(context.Background(), eventsConfig(srv.addr()))
	require.NoError(t, err)
	defer ec.nc.Close()
	sess := waitFor(t, srv.evs)
	require.Equal(t, subscribeCommand{events: subscribedEvents}.BuildMessage(), waitFor(t, sess.commands))

	body := "Event-Name: CHANNEL_ANSWER\nUnique-ID: " + testUUID + "\n\n"
	srv.emit(fmt.Appendf(nil, "Content-Length: %d\nContent-Type: text/event-plain\n\n%s", len(body), body))
	f, err := ec.r.next()
	require.NoError(t, err)
	require.Equal(t, ctEventPlain, f.contentType)
	require.Equal(t, body, string(f.body))
}

// rawServer accepts connections and runs serve on each.
func rawServer(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				serve(c)
			})
		}
	})
	return ln.Addr().String()
}

func TestDialEventsFailures(t *testing.T) {
	t.Parallel()
	const secret = "wrong-secret-pw"
	refuseSubscribe := newFakeESL(t, func(s *fakeSession, cmd string) bool {
		if strings.HasPrefix(cmd, "event ") {
			s.reply("-ERR no keywords supplied")
			return true
		}
		return false
	})
	rude := rawServer(t, func(c net.Conn) {
		_, _ = c.Write([]byte("Content-Type: text/rude-rejection\nContent-Length: 24\n\nAccess Denied, go away.\n"))
	})
	silent := rawServer(t, func(c net.Conn) { _, _ = c.Read(make([]byte, 1)) })
	badFrame := rawServer(t, func(c net.Conn) { _, _ = c.Write([]byte("Content-Type: auth/request\nContent-Length: -5\n\n")) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().String()
	ln.Close()

	for _, tc := range []struct {
		name, addr, password, want string
	}{
		{"wrong password", newFakeESL(t, nil).addr(), secret, `authentication refused: switch replied "-ERR invalid"`},
		{"subscription refused", refuseSubscribe.addr(), "ClueCon", `subscribing: switch replied "-ERR no keywords supplied"`},
		{"rude rejection", rude, "ClueCon", "waiting for the auth request: switch closed the connection (text/rude-rejection)"},
		{"silent switch", silent, "ClueCon", "waiting for the auth request: "},
		{"bad frame", badFrame, "ClueCon", errFrameLength.Error()},
		{"nobody listening", closed, "ClueCon", "connecting to " + closed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := eventsConfig(tc.addr)
			cfg.Password, cfg.CommandTimeout = tc.password, 300*time.Millisecond
			_, err := dialEvents(context.Background(), cfg)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.NotContains(t, err.Error(), tc.password)
		})
	}
}

// TestDialEventsCancelled: ending ctx aborts a handshake the switch does
// not answer, long before CommandTimeout.
func TestDialEventsCancelled(t *testing.T) {
	t.Parallel()
	accepted := make(chan struct{})
	addr := rawServer(t, func(c net.Conn) {
		close(accepted)
		_, _ = c.Read(make([]byte, 1))
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-accepted
		cancel()
	}()
	cfg := eventsConfig(addr)
	cfg.CommandTimeout = time.Hour
	_, err := dialEvents(ctx, cfg)
	require.ErrorIs(t, err, context.Canceled)
}

// TestConnectionRoles: the event connection is subscribed before the
// command connection runs anything; the command connection never
// subscribes; originates go on the command connection.
func TestConnectionRoles(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var order []string
	h := setup(t, newFakeESL(t, func(s *fakeSession, cmd string) bool {
		mu.Lock()
		defer mu.Unlock()
		role := "cmd"
		if s.events {
			role = "ev"
		}
		order = append(order, role+": "+strings.Fields(cmd)[0]+" "+strings.Fields(cmd)[1])
		if strings.HasPrefix(cmd, "bgapi originate ") {
			s.write([]byte("Content-Type: command/reply\nReply-Text: +OK Job-UUID: a6d17d55-e84c-49c7-942b-000000000001\n\n"))
			return true
		}
		return false
	}), nil)
	require.NoError(t, h.sw.Originate(context.Background(), req(testUUID, "1003", time.Second)))
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"ev: event plain", "cmd: api status", "cmd: bgapi originate"}, order)
	h.srv.mu.Lock()
	defer h.srv.mu.Unlock()
	require.Equal(t, 1, h.srv.nSubs)
	require.Equal(t, 1, h.srv.nCmds)
}

// TestEventConnectionFailureReconnects: whatever ends the event connection
// — the switch closing it, a disconnect notice, an unreadable frame — both
// connections are closed and re-dialled, and the sink hears SwitchConnected
// again; events then flow on the new event connection.
func TestEventConnectionFailureReconnects(t *testing.T) {
	t.Parallel()
	for name, kill := range map[string]func(s *fakeSession){
		"closed":            func(s *fakeSession) { s.c.Close() },
		"disconnect notice": func(s *fakeSession) { s.write([]byte(disconnectNotice)) },
		"bad length":        func(s *fakeSession) { s.write([]byte("Content-Length: -1\nContent-Type: text/event-plain\n\n")) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := setup(t, newFakeESL(t, nil), nil)
			cmd1, ev1 := waitFor(t, h.srv.cmds), waitFor(t, h.srv.evs)
			h.sw.Track(testUUID)
			kill(ev1)
			waitFor(t, ev1.gone)
			waitFor(t, cmd1.gone) // callgate closed the healthy command connection too
			require.Equal(t, "fs1", waitFor(t, h.sink.connected))
			st := h.sw.Status()
			require.True(t, st.Connected)
			require.Equal(t, 1, st.Reconnects)
			require.Contains(t, h.logs.String(), "event connection")

			waitFor(t, h.srv.evs)
			body := "Event-Name: CHANNEL_ANSWER\nUnique-ID: " + testUUID + "\nEvent-Sequence: 9\n\n"
			h.srv.emit(fmt.Appendf(nil, "Content-Length: %d\nContent-Type: text/event-plain\n\n%s", len(body), body))
			ev := waitFor(t, h.sink.events)
			require.Equal(t, controller.EventAnswer, ev.Kind)
			require.Equal(t, uint64(9), ev.Sequence)
		})
	}
}

const disconnectNotice = "Content-Type: text/disconnect-notice\nContent-Length: 67\n\n" +
	"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
