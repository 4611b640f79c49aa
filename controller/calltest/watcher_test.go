package calltest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/calltest"
)

// Every waiter sees the change it waits for, however many wait at once (a
// single wake-up token let one waiter swallow another's).
func TestEveryWaiterWakes(t *testing.T) {
	t.Parallel()
	w := calltest.New(10 * time.Second)
	ids := []controller.CallID{"a", "b", "c", "d"}
	var started, wg sync.WaitGroup
	for _, id := range ids {
		started.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.Observe(controller.Call{ID: id, State: controller.CallOriginating})
			started.Done()
			w.WaitTerminal(t, id)
		}()
	}
	started.Wait()
	for _, id := range ids {
		w.Observe(controller.Call{ID: id, State: controller.CallCompleted})
	}
	wg.Wait()
}
