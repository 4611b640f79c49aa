package driverkit_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller/driverkit"
)

func TestInboxKeepsOrderAndDrainsOnClose(t *testing.T) {
	t.Parallel()
	q := &driverkit.Inbox[int]{Max: 1000}
	var got []int
	done := make(chan struct{})
	go func() { q.Run(func(v *int) { got = append(got, *v) }); close(done) }()
	for i := range 1000 {
		require.True(t, q.Push(i))
	}
	q.Close()
	<-done
	require.Len(t, got, 1000, "everything queued before Close is handled")
	for i, v := range got {
		require.Equal(t, i, v, "in order")
	}
	require.False(t, q.Push(1), "nothing is queued after Close")
}

func TestInboxFull(t *testing.T) {
	t.Parallel()
	q := &driverkit.Inbox[int]{Max: 2}
	require.True(t, q.Push(1))
	require.True(t, q.Push(2))
	require.False(t, q.Push(3), "full: dropped, not blocked")
	var got []int
	go q.Run(func(v *int) { got = append(got, *v) })
	q.Close()
	require.Equal(t, []int{1, 2}, got)
}
