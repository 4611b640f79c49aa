package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Listen starts listening for queued attempts and returns once the LISTEN is
// active. WaitForAttempts starts listening by itself; call Listen before the
// first ClaimAttempts so that no wake-up in between is missed. Returns the
// listener's last error (EUNAVAILABLE when the database is down) if ctx ends
// first.
func (s *Store) Listen(ctx context.Context) error { return s.db.listener.listen(ctx) }

// WaitForAttempts blocks until an attempt is queued in the store's schema
// (LISTEN/NOTIFY on one shared connection), the timeout passes or ctx ends.
// It returns nil on a notification or a timeout, ctx.Err() when ctx ends, and
// the listener's error on a timeout while the listener is disconnected. A
// notification that arrived since a previous wait returned ends the next wait
// at once; every goroutine waiting at the time is woken.
func (s *Store) WaitForAttempts(ctx context.Context, timeout time.Duration) error {
	return s.db.listener.wait(ctx, timeout)
}

// listener holds one connection, taken out of the pool, that LISTENs on one
// channel of the pool's schema (the attempts channel unless newListener's
// caller says otherwise) and wakes every waiter on each notification. It
// starts on first use and reconnects with a backoff.
type listener struct {
	pool *pgxpool.Pool
	// what names the channel in errors ("attempts", "tokens").
	what string
	// channelSQL returns the channel's name in the pool's schema.
	channelSQL string
	// onEvent, when set, is told on the listening goroutine that LISTEN
	// became active, that a notification arrived, or that the connection
	// was lost; it must not block.
	onEvent func(listenEvent)
	// afterListen, when set, runs on the listening connection once LISTEN
	// is active, and afterNotify after each notification was relayed; an
	// error from either drops the connection (and reconnects).
	afterListen func(ctx context.Context, conn *pgx.Conn) error
	afterNotify func(ctx context.Context, conn *pgx.Conn, payload string) error

	mu        sync.Mutex
	wake      chan struct{} // closed and replaced on every notification
	pending   bool          // a notification arrived since a wait last returned
	started   bool
	closed    bool
	listening bool
	ready     chan struct{} // closed once LISTEN is first active
	err       error         // why the listener is not listening, if it is not
	cancel    context.CancelFunc
	done      chan struct{}
}

// listenEvent is what a listener tells its onEvent hook.
type listenEvent int

const (
	listenUp       listenEvent = iota // LISTEN is active: notifications from now on are delivered
	listenNotified                    // a notification arrived
	listenDown                        // the connection is lost: notifications may be missed
)

// attemptsChannelSQL returns the attempts channel of the pool's schema.
const attemptsChannelSQL = `
	SELECT callgate_attempts_channel(n.nspname)
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.oid = 'attempts'::regclass`

func newListener(pool *pgxpool.Pool) *listener {
	return &listener{pool: pool, what: "attempts", channelSQL: attemptsChannelSQL,
		wake: make(chan struct{}), ready: make(chan struct{}), done: make(chan struct{})}
}

// event tells the onEvent hook, if any.
func (l *listener) event(e listenEvent) {
	if l.onEvent != nil {
		l.onEvent(e)
	}
}

// start launches the listening goroutine once. Called with l.mu held.
func (l *listener) startLocked() {
	if l.started || l.closed {
		return
	}
	l.started = true
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go l.run(ctx)
}

// listen starts the listener if needed and returns once LISTEN is active.
func (l *listener) listen(ctx context.Context) error {
	l.mu.Lock()
	l.startLocked()
	ready := l.ready
	l.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.err != nil {
			return fmt.Errorf("listening for %s: %w", l.what, l.err)
		}
		return ctx.Err()
	}
}

// wait blocks until a notification, the timeout or the end of ctx. A
// notification that arrived since the last wait returned ends it at once.
func (l *listener) wait(ctx context.Context, timeout time.Duration) error {
	l.mu.Lock()
	l.startLocked()
	if l.pending {
		l.pending = false
		l.mu.Unlock()
		return nil
	}
	wake := l.wake
	l.mu.Unlock()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-wake:
		l.mu.Lock()
		l.pending = false
		l.mu.Unlock()
		return nil
	case <-timer.C:
		l.mu.Lock()
		defer l.mu.Unlock()
		if !l.listening && l.err != nil {
			return fmt.Errorf("waiting for %s: %w", l.what, l.err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *listener) notify() {
	l.mu.Lock()
	l.pending = true
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
}

func (l *listener) run(ctx context.Context) {
	defer close(l.done)
	backoff := 50 * time.Millisecond
	for {
		connected, err := l.session(ctx)
		if connected {
			l.event(listenDown)
		}
		if ctx.Err() != nil {
			return
		}
		l.mu.Lock()
		l.listening, l.err = false, err
		l.mu.Unlock()
		if connected {
			backoff = 50 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// session connects, LISTENs and relays notifications until the connection
// fails or ctx ends. connected reports whether LISTEN succeeded.
func (l *listener) session(ctx context.Context) (connected bool, err error) {
	pc, err := l.pool.Acquire(ctx)
	if err != nil {
		return false, translate(err)
	}
	conn := pc.Hijack()
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	var channel string
	if err := conn.QueryRow(ctx, l.channelSQL).Scan(&channel); err != nil {
		return false, fmt.Errorf("finding the %s channel: %w", l.what, translate(err))
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return false, fmt.Errorf("listening on %s: %w", channel, translate(err))
	}
	if l.afterListen != nil {
		if err := l.afterListen(ctx, conn); err != nil {
			return false, fmt.Errorf("after listening on %s: %w", channel, translate(err))
		}
	}
	l.mu.Lock()
	reconnected := l.err != nil
	l.listening, l.err = true, nil
	select {
	case <-l.ready:
	default:
		close(l.ready)
	}
	l.mu.Unlock()
	l.event(listenUp)
	if reconnected {
		l.notify() // notifications may have been missed while disconnected
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, fmt.Errorf("waiting for notifications on %s: %w", channel, translate(err))
		}
		l.notify()
		l.event(listenNotified)
		if l.afterNotify != nil {
			if err := l.afterNotify(ctx, conn, n.Payload); err != nil {
				return true, fmt.Errorf("after a notification on %s: %w", channel, translate(err))
			}
		}
	}
}

// close stops the listener and closes its connection.
func (l *listener) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	started := l.started
	if started {
		l.cancel()
	}
	l.mu.Unlock()
	if started {
		<-l.done
	}
}
