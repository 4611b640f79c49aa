// Package calltest helps tests wait for calls to change without polling.
package calltest

import (
	"sync"
	"testing"
	"time"

	"github.com/callgate/callgate/controller"
)

// Watcher records the last persisted version of every call it is shown
// (wire Observe as the dialer's OnCallUpdate) and lets tests wait, with a
// deadline, for a call to reach a condition.
type Watcher struct {
	mu      sync.Mutex
	last    map[controller.CallID]controller.Call
	changed chan struct{} // closed and replaced on every change: wakes every waiter
	timeout time.Duration
}

// New returns a Watcher whose waits give up after timeout.
func New(timeout time.Duration) *Watcher {
	return &Watcher{last: map[controller.CallID]controller.Call{}, changed: make(chan struct{}), timeout: timeout}
}

// Observe records c and wakes every waiter; it never blocks.
func (w *Watcher) Observe(c controller.Call) {
	w.mu.Lock()
	w.last[c.ID] = c
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

// WaitFor waits until the call satisfies ok and returns it; it fails the
// test if the deadline passes first.
func (w *Watcher) WaitFor(t testing.TB, id controller.CallID, what string, ok func(controller.Call) bool) controller.Call {
	t.Helper()
	deadline := time.NewTimer(w.timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		c, seen := w.last[id]
		changed := w.changed // taken with c: a change after this read closes it
		w.mu.Unlock()
		if seen && ok(c) {
			return c
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("call %s never became %s; last seen %+v", id, what, c)
		}
	}
}

// WaitState waits until the call is in state s.
func (w *Watcher) WaitState(t testing.TB, id controller.CallID, s controller.CallState) controller.Call {
	t.Helper()
	return w.WaitFor(t, id, string(s), func(c controller.Call) bool { return c.State == s })
}

// WaitTerminal waits until the call has ended.
func (w *Watcher) WaitTerminal(t testing.TB, id controller.CallID) controller.Call {
	t.Helper()
	return w.WaitFor(t, id, "ended", func(c controller.Call) bool { return c.State.Terminal() })
}
