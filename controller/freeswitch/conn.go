package freeswitch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/percipia/eslgo"
	"github.com/percipia/eslgo/command"
)

// Errors a command can end with. Both wrap a controller error so the HTTP
// layer maps them; callers tell them apart with errors.Is.
var (
	// ErrNotConnected: there is no usable connection to the switch; nothing
	// was written.
	ErrNotConnected = controller.Errorf(controller.EUNAVAILABLE, "switch not connected")
	// ErrNoReply: the command was written but no reply came in time (or the
	// connection died first). The switch may have run it. The connection is
	// closed and re-dialled, because a late reply would otherwise be read as
	// the answer to the next command.
	ErrNoReply = controller.Errorf(controller.EUNAVAILABLE, "no reply from switch; the command may have run")
)

var errDisconnected = errors.New("switch closed the connection")

// cmdError classifies a failed command.
type cmdError struct {
	sent bool // the command may have reached the switch
	err  error
}

func (e *cmdError) Error() string { return e.err.Error() }
func (e *cmdError) Unwrap() error { return e.err }

// conn is the switch's command connection, authenticated by eslgo. It
// subscribes to no events (eventConn carries those); its context also ends
// when the event connection fails, so the pair lives and dies together.
//
// eslgo's SendCommand writes the command, then takes the next reply from a
// channel shared by every caller: two concurrent callers can swap replies.
// So mu is held across SendCommand, one command at a time. A command that
// gets no reply poisons the connection (kill): its reply could still arrive
// and would be taken by the next command.
type conn struct {
	esl     *eslgo.Conn
	raw     net.Conn        // see eslclose.go; nil if eslgo's layout is unknown
	ctx     context.Context // done once the connection must not be used
	kill    context.CancelCauseFunc
	timeout time.Duration
	since   time.Time
	mu      sync.Mutex
}

// close tears the connection down without eslgo's racy Close (see
// eslclose.go). cause is kept if it is the first. Safe to call repeatedly.
func (c *conn) close(cause error) {
	c.kill(cause)
	if c.raw != nil {
		_ = c.raw.Close()
		return
	}
	c.esl.Close()
}

// alive reports whether the connection may still carry commands.
func (c *conn) alive() bool { return c.ctx.Err() == nil }

// run sends cmd and waits for its reply, at most c.timeout (or ctx's
// deadline if sooner). name is a short label for errors, never the command
// itself (it can hold a phone number). Returns a *cmdError on failure.
func (c *conn) run(ctx context.Context, name string, cmd command.Command) (*eslgo.RawResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.alive() {
		return nil, &cmdError{err: fmt.Errorf("%s: %w (%v)", name, ErrNotConnected, context.Cause(c.ctx))}
	}
	if err := ctx.Err(); err != nil {
		return nil, &cmdError{err: fmt.Errorf("%s: %w", name, err)}
	}
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	stop := context.AfterFunc(c.ctx, cancel) // a dying connection aborts the wait
	defer stop()
	resp, err := c.esl.SendCommand(cctx, cmd)
	if err == nil {
		return resp, nil
	}
	if writeFailed(err) {
		// Write returned an error, so it did not write every byte: the
		// command's terminating blank line never reached the switch, and the
		// connection is closed before anything else can complete it.
		c.kill(fmt.Errorf("writing %s: %w", name, err))
		return nil, &cmdError{err: fmt.Errorf("%s: %w: %v", name, ErrNotConnected, err)}
	}
	c.kill(fmt.Errorf("no reply to %s: %w", name, err))
	return nil, &cmdError{sent: true, err: fmt.Errorf("%s: %w: %v", name, ErrNoReply, err)}
}

// writeFailed reports whether err came from eslgo's conn.Write (as opposed
// to waiting for the reply). eslgo returns the raw write error.
func writeFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "write"
}

// dialESL connects and authenticates. It gives up when ctx ends even though
// eslgo's Dial cannot be cancelled (its net.Dial has no timeout): the dial
// goroutine then closes whatever it gets.
func dialESL(ctx context.Context, cfg *Config, log *slog.Logger) (*conn, error) {
	cctx, kill := context.WithCancelCause(ctx)
	opts := eslgo.InboundOptions{
		Options: eslgo.Options{
			Context:     cctx,
			Logger:      eslLogger{log: log, password: cfg.Password},
			ExitTimeout: cfg.CommandTimeout,
		},
		Network:      "tcp",
		Password:     cfg.Password,
		AuthTimeout:  cfg.CommandTimeout,
		OnDisconnect: func() { kill(errDisconnected) },
	}
	type result struct {
		c   *eslgo.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := opts.Dial(cfg.Address)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			kill(r.err)
			return nil, fmt.Errorf("connecting to %s: %s", cfg.Address, scrubSecret(r.err.Error(), cfg.Password))
		}
		c := &conn{esl: r.c, ctx: cctx, kill: kill, timeout: cfg.CommandTimeout, since: time.Now()}
		var ok bool
		if c.raw, ok = disarm(r.c); !ok {
			log.Warn("unknown eslgo layout: closing connections with eslgo's racy Close")
		}
		return c, nil
	case <-ctx.Done():
		kill(ctx.Err())
		go func() {
			if r := <-ch; r.c != nil {
				if raw, ok := disarm(r.c); ok {
					_ = raw.Close()
				} else {
					r.c.Close()
				}
			}
		}()
		return nil, ctx.Err()
	}
}

// replyError turns a -ERR reply into an error; nil for +OK (and for api
// output that is not an error line).
func replyError(resp *eslgo.RawResponse) string {
	reply := strings.TrimSpace(resp.GetReply())
	if strings.HasPrefix(reply, "-ERR") || strings.HasPrefix(reply, "-USAGE") {
		return reply
	}
	return ""
}

// switchStatus is what `api status` says.
type switchStatus struct {
	sessions, max int
}

var (
	sessionsRE = regexp.MustCompile(`(?m)^(\d+) session\(s\) - peak`)
	maxRE      = regexp.MustCompile(`(?m)^(\d+) session\(s\) max`)
)

// parseStatus reads the live session count and the switch's max_sessions.
func parseStatus(body string) (switchStatus, bool) {
	var st switchStatus
	m1, m2 := sessionsRE.FindStringSubmatch(body), maxRE.FindStringSubmatch(body)
	if m1 == nil || m2 == nil {
		return st, false
	}
	st.sessions, _ = strconv.Atoi(m1[1])
	st.max, _ = strconv.Atoi(m2[1])
	return st, true
}

// eslLogger adapts eslgo's printf logger to slog at debug level. eslgo
// prints whole frames in some messages (events carry caller numbers), so
// every message is scrubbed and truncated.
type eslLogger struct {
	log      *slog.Logger
	password string
}

func (l eslLogger) Debug(format string, args ...any) { l.emit("debug", format, args) }
func (l eslLogger) Info(format string, args ...any)  { l.emit("info", format, args) }
func (l eslLogger) Warn(format string, args ...any)  { l.emit("warn", format, args) }
func (l eslLogger) Error(format string, args ...any) { l.emit("error", format, args) }

func (l eslLogger) emit(level, format string, args []any) {
	if !l.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	msg := scrub(fmt.Sprintf(format, args...), l.password)
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	l.log.Debug("eslgo", "eslgo_level", level, "detail", strings.TrimSpace(msg))
}

// scrubSecret removes the ESL password from s.
func scrubSecret(s, password string) string {
	if password == "" {
		return s
	}
	return strings.ReplaceAll(s, password, "****")
}

// scrub removes the ESL password from s and masks every run of five or more
// digits (a phone number, possibly) to its last four: "****1234". For text
// that may hold frames from the switch.
func scrub(s, password string) string {
	s = scrubSecret(s, password)
	var b strings.Builder
	for i := 0; i < len(s); {
		j, d := i, i
		if s[j] == '+' {
			j, d = j+1, j+1
		}
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		switch {
		case j-d >= 5:
			b.WriteString(controller.MaskNumber(s[i:j]))
			i = j
		case j > i:
			b.WriteString(s[i:j])
			i = j
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}
