package switchsim

import (
	"bufio"
	"bytes"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hangupCompleteFixture builds the largest event a loopback call sends.
func hangupCompleteFixture(s *Sim) *event {
	s.mu.Lock()
	defer s.mu.Unlock()
	sp, _ := planOriginate(Originate{Endpoint: "loopback/1001/callgate-test", App: "park",
		Vars: []Var{{"origination_uuid", newUUID()}, {"origination_caller_id_number", "4000"}, {"originate_timeout", "60"}}})
	sp.job = &job{sync: make(chan string, 1)}
	s.startCall(sp)
	a := s.channels[sp.uuid]
	a.hangupCause, a.hungupAt, a.showHangupTime = "NORMAL_CLEARING", s.now.Add(3*time.Second), true
	setCDRVariables(a)
	a.setState("CS_REPORTING", 11)
	e := s.channelEvent(a, "CHANNEL_HANGUP_COMPLETE")
	cp := &event{name: e.name, headers: append([]header(nil), e.headers...)}
	cp.headers[seqIndex].value = "12345"
	return cp
}

func BenchmarkSerializePlain(b *testing.B) {
	s := New(Config{Clock: NewManualClock(time.Now())})
	defer s.Close()
	e := hangupCompleteFixture(s)
	b.SetBytes(int64(len(serializePlain(e))))
	b.ReportAllocs()
	for b.Loop() {
		serializePlain(e)
	}
}

func BenchmarkSerializeJSON(b *testing.B) {
	s := New(Config{Clock: NewManualClock(time.Now())})
	defer s.Close()
	e := hangupCompleteFixture(s)
	b.SetBytes(int64(len(serializeJSON(e))))
	b.ReportAllocs()
	for b.Loop() {
		serializeJSON(e)
	}
}

// BenchmarkBuildAndEmitEvent is one channel event built and queued on one
// subscribed connection, as during a call.
func BenchmarkBuildAndEmitEvent(b *testing.B) {
	s := New(Config{Clock: NewManualClock(time.Now())})
	defer s.Close()
	e := hangupCompleteFixture(s)
	_ = e
	c := newConn(s, nil)
	c.listening, c.all = true, true
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns = []*conn{c}
	var ch *channel
	for _, x := range s.channels {
		if x.kind == legLoopbackA {
			ch = x
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		s.emitChannel(ch, "CHANNEL_EXECUTE", "Application", "park", "Application-UUID", ch.uuid)
		c.mu.Lock()
		c.out, c.queued = c.out[:0], 0
		c.mu.Unlock()
	}
}

// BenchmarkOriginateThroughput originates calls over TCP as fast as one
// client can send them and read every event back (the client subscribes to
// what callgate's driver subscribes to). Each call answers, stays 1 ms of
// wall time (1 s at TimeScale 0.001) and hangs up. It reports calls/s.
func BenchmarkOriginateThroughput(b *testing.B) {
	for _, tc := range []struct{ name, endpoint string }{
		{"sofia", "sofia/gateway/carrier/+1555000"},
		{"loopback", "loopback/555"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := New(Config{TimeScale: 0.001, MaxSessions: 100000})
			require.NoError(b, s.Listen("127.0.0.1:0"))
			defer s.Close()
			nc, err := net.Dial("tcp", s.Addr())
			require.NoError(b, err)
			defer nc.Close()
			r := bufio.NewReaderSize(nc, 1<<20)
			w := bufio.NewWriterSize(nc, 1<<16)
			_, _ = w.WriteString("auth ClueCon\n\n" + allChannelEvents + "\n\n")
			require.NoError(b, w.Flush())
			done := make(chan int, 1)
			n := b.N
			b.ResetTimer()
			start := time.Now()
			go func() {
				destroyed, events := 0, 0
				var scratch []byte
				for destroyed < n {
					ct, body, err := nextFrameFast(r, &scratch)
					if err != nil {
						done <- -1
						return
					}
					if ct == "text/event-plain" {
						events++
						if bytes.HasPrefix(body, []byte("Event-Name: CHANNEL_DESTROY\n")) &&
							(tc.name == "sofia" || bytes.Contains(body, []byte("-a\nUnique-ID"))) {
							destroyed++
						}
					}
				}
				done <- events
			}()
			for i := 0; i < n; i++ {
				_, _ = w.WriteString("bgapi originate {originate_timeout=30}" + tc.endpoint + strconv.Itoa(1100+i%8000) + " &park()\n\n")
			}
			require.NoError(b, w.Flush())
			events := <-done
			require.Positive(b, events)
			elapsed := time.Since(start)
			b.ReportMetric(float64(n)/elapsed.Seconds(), "calls/s")
			b.ReportMetric(float64(events)/float64(n), "events/call")
		})
	}
}

// nextFrameFast reads one frame, returning its content type and body
// (valid until the next call).
func nextFrameFast(r *bufio.Reader, scratch *[]byte) (string, []byte, error) {
	ct, length := "", 0
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return "", nil, err
		}
		if len(line) == 1 {
			if ct == "" && length == 0 {
				continue
			}
			break
		}
		switch {
		case bytes.HasPrefix(line, []byte("Content-Type: ")):
			ct = string(line[len("Content-Type: ") : len(line)-1])
		case bytes.HasPrefix(line, []byte("Content-Length: ")):
			length, _ = strconv.Atoi(string(line[len("Content-Length: ") : len(line)-1]))
		}
	}
	if cap(*scratch) < length {
		*scratch = make([]byte, length)
	}
	body := (*scratch)[:length]
	_, err := io_ReadFull(r, body)
	return ct, body, err
}

func io_ReadFull(r *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
