package asterisk

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/websocket"

	"github.com/callgate/callgate/controller"
)

// TestReconnect: a dropped WebSocket is re-dialled and the sink hears
// SwitchConnected again; originates meanwhile are ErrNotSent.
func TestReconnect(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.Handle("/ari/events", websocket.Handler(func(ws *websocket.Conn) {
		if conns.Add(1) == 1 {
			<-release // the first link drops when the test says so
			return
		}
		<-ws.Request().Context().Done()
	}))
	mux.HandleFunc("/ari/asterisk/ping", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"ping":"pong"}`)) })
	srv := httptest.NewServer(authOnly(mux))
	t.Cleanup(srv.Close)
	rp := &replay{srv: srv}
	s, sk := startReplay(t, rp, nil)
	require.True(t, s.Status().Connected)
	close(release)
	select {
	case name := <-sk.connected:
		require.Equal(t, "ast1", name)
	case <-time.After(deadline):
		t.Fatal("no reconnect")
	}
	require.EqualValues(t, 2, conns.Load())
	st := s.Status()
	require.True(t, st.Connected)
	require.Equal(t, 1, st.Reconnects)
}

func TestNotConnectedIsNotSent(t *testing.T) {
	t.Parallel()
	s := benchSwitch(t)
	err := s.Originate(context.Background(), controller.OriginateRequest{CallID: "cg-x", To: "1001"})
	require.ErrorIs(t, err, controller.ErrNotSent)
	_, err = s.Channels(context.Background())
	require.Equal(t, controller.EUNAVAILABLE, controller.ErrorCode(err))
}

func monoWAV(samples ...int16) []byte {
	var b bytes.Buffer
	b.WriteString("RIFF")
	_ = binary.Write(&b, binary.LittleEndian, uint32(36+2*len(samples)))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(8000), uint32(16000), uint16(2), uint16(16)} {
		_ = binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	_ = binary.Write(&b, binary.LittleEndian, uint32(2*len(samples)))
	_ = binary.Write(&b, binary.LittleEndian, samples)
	return b.Bytes()
}

// TestStereoMerge: two mono recordings become one stereo WAV, left = in,
// right = out, the shorter padded; a header-only file (a callee that sends
// no media, fixture 03) is silence.
func TestStereoMerge(t *testing.T) {
	t.Parallel()
	in, rate, err := monoPCM(monoWAV(1, 2, 3))
	require.NoError(t, err)
	require.EqualValues(t, 8000, rate)
	out, _, err := monoPCM(monoWAV())
	require.NoError(t, err, "44-byte header-only file")
	require.Empty(t, out)
	path := filepath.Join(t.TempDir(), "call.wav")
	ms, err := writeStereo(path, in, monoWAVData(t, 9), rate)
	require.NoError(t, err)
	require.Zero(t, ms)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.EqualValues(t, 2, binary.LittleEndian.Uint16(b[22:]))
	var got []int16
	for p := 44; p < len(b); p += 2 {
		got = append(got, int16(binary.LittleEndian.Uint16(b[p:])))
	}
	require.Equal(t, []int16{1, 9, 2, 0, 3, 0}, got)
	_, _, err = monoPCM([]byte("not a wav"))
	require.Error(t, err)
}

func monoWAVData(t *testing.T, s ...int16) []byte {
	d, _, err := monoPCM(monoWAV(s...))
	require.NoError(t, err)
	return d
}
