package switchsim

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestObservationHooks(t *testing.T) {
	t.Parallel()
	s, clock := manualSim(t, Config{MaxSessions: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := dial(t, s, "ClueCon")
	uuid := newUUID()
	require.Equal(t, "+OK "+uuid+"\n",
		c.api(`originate {origination_uuid=`+uuid+`,origination_caller_id_name='Smith\, John',cg_ref=42}loopback/+15550001006/callgate-test &park()`))
	ch, ok := s.Channel(uuid)
	require.True(t, ok)
	require.Equal(t, "+15550001006", ch.Dest)
	require.Equal(t, "Smith, John", ch.Vars["origination_caller_id_name"])
	require.Equal(t, "42", ch.Vars["cg_ref"])
	require.Equal(t, "loopback/+15550001006-a", ch.Name)

	require.Equal(t, "-ERR DESTINATION_OUT_OF_ORDER\n", c.api("originate loopback/1005 &park()"))
	require.NoError(t, s.WaitRefusals(ctx, 1))
	require.Equal(t, 1, s.Refusals())

	clock.Advance(3 * time.Second) // 1006 hangs up after 2 s
	require.NoError(t, s.WaitChannelGone(ctx, uuid))
	_, ok = s.Channel(uuid)
	require.False(t, ok)

	require.Equal(t, 0, s.HupallCount())
	c.api("hupall")
	require.Equal(t, 1, s.HupallCount())

	short, cancelShort := context.WithCancel(ctx)
	cancelShort()
	require.ErrorIs(t, s.WaitRefusals(short, 5), context.Canceled)
}

func TestRefuseConnections(t *testing.T) {
	t.Parallel()
	s, _ := manualSim(t, Config{})
	kept := dial(t, s, "ClueCon")
	s.SetRefuseConnections(true)
	nc, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(10*time.Second)))
	got, err := io.ReadAll(nc)
	require.NoError(t, err)
	require.Equal(t, rudeRejection, string(got))
	require.Equal(t, "false", kept.api("uuid_exists x"), "existing connections stay")
	s.SetRefuseConnections(false)
	dial(t, s, "ClueCon")
}
