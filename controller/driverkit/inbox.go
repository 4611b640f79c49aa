package driverkit

import "sync"

// Inbox is the queue between a switch connection's reader, which must never
// wait for the sink, and the one goroutine that handles what it read, in
// order. Push appends (it never blocks for longer than an append); Run
// takes everything queued in one batch and hands the items to handle in the
// order they were pushed. Past Max items, Push drops and says so: the reader
// counts the loss instead of blocking or growing without bound.
type Inbox[T any] struct {
	// Max bounds the queue (0: 1<<18).
	Max int

	mu     sync.Mutex
	items  []T
	spare  []T // owned by Run: a batch buffer kept for reuse
	closed bool
	wake   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// keepSpare is the largest batch buffer kept for reuse after a burst.
const keepSpare = 1 << 14

func (q *Inbox[T]) init() {
	q.once.Do(func() {
		q.wake, q.done = make(chan struct{}, 1), make(chan struct{})
		if q.Max <= 0 {
			q.Max = 1 << 18
		}
	})
}

// Push queues it and reports whether it was queued: false once closed or
// full.
func (q *Inbox[T]) Push(it T) bool {
	q.init()
	q.mu.Lock()
	if q.closed || len(q.items) >= q.Max {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, it)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// Run hands queued items to handle, in order, until Close; it returns once
// everything queued before Close was handled. Call it on one goroutine.
func (q *Inbox[T]) Run(handle func(*T)) {
	q.init()
	defer close(q.done)
	var zero T
	for {
		<-q.wake
		q.mu.Lock()
		batch := q.items
		q.items = q.spare[:0]
		closed := q.closed
		q.mu.Unlock()
		for i := range batch {
			handle(&batch[i])
			batch[i] = zero // let the item's memory go
		}
		q.spare = nil
		if cap(batch) <= keepSpare {
			q.spare = batch[:0]
		}
		if closed {
			return
		}
	}
}

// Close stops the inbox after everything queued is handled, and waits for
// Run to return. Nothing is handled after Close returns.
func (q *Inbox[T]) Close() {
	q.init()
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	<-q.done
}

// Len returns how many items are queued.
func (q *Inbox[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// Drain hands every queued item to handle on the calling goroutine, in
// order, instead of Run (tests and fuzzers that drive the reader
// synchronously). Do not mix it with a running Run.
func (q *Inbox[T]) Drain(handle func(*T)) {
	q.mu.Lock()
	batch := q.items
	q.items = nil
	q.mu.Unlock()
	for i := range batch {
		handle(&batch[i])
	}
}

// Reset drops whatever is queued, keeping the buffer (benchmarks).
func (q *Inbox[T]) Reset() {
	q.mu.Lock()
	clear(q.items)
	q.items = q.items[:0]
	q.mu.Unlock()
}
