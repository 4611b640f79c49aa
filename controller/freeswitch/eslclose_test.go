package freeswitch

import (
	"context"
	"testing"
	"time"

	"github.com/percipia/eslgo"
	"github.com/stretchr/testify/require"
)

// TestDisarmKnowsEslgoLayout pins the eslgo fields disarm reaches into: after
// it, eslgo's Close is inert and the raw socket closes the connection.
func TestDisarmKnowsEslgoLayout(t *testing.T) {
	t.Parallel()
	srv := newFakeESL(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	opts := eslgo.InboundOptions{Options: eslgo.Options{Context: ctx}, Network: "tcp", Password: "ClueCon", AuthTimeout: 5 * time.Second}
	c, err := opts.Dial(srv.addr())
	require.NoError(t, err)
	sess := waitFor(t, srv.sessions)

	raw, ok := disarm(c)
	require.True(t, ok, "eslgo's Conn layout changed: review eslclose.go")
	c.Close() // inert now
	resp, err := c.SendCommand(ctx, statusCommand)
	require.NoError(t, err, "the connection survived Close")
	require.Contains(t, string(resp.Body), "session(s) max")

	cancel()
	require.NoError(t, raw.Close())
	waitFor(t, sess.gone)
}
