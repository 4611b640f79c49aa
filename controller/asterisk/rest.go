package asterisk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/callgate/callgate/controller"
)

// restClient sends ARI REST requests. It replaces the library's
// client/native transport, whose http.Client has no timeout, whose requests
// take no context and which discards the {"message": …} of an error reply:
// here every request is bounded by the caller's context and by
// Config.RequestTimeout, and an error reply becomes a controller error
// carrying Asterisk's message.
type restClient struct {
	base     string // Config.URL without a trailing slash
	user     string
	password string
	timeout  time.Duration
	http     *http.Client
}

func newRESTClient(cfg *Config) *restClient {
	tr := &http.Transport{
		Proxy:               nil, // ARI is a private link: never through a proxy
		DialContext:         (&net.Dialer{Timeout: cfg.RequestTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: cfg.RequestTimeout,
	}
	return &restClient{
		base:     strings.TrimSuffix(cfg.URL, "/"),
		user:     cfg.User,
		password: cfg.Password,
		timeout:  cfg.RequestTimeout,
		http:     &http.Client{Transport: tr, Timeout: cfg.RequestTimeout},
	}
}

// restError is a failed request: either a reply with a non-2xx status or a
// transport failure. sent is false only when the request certainly never
// reached Asterisk (the connection could not be made).
type restError struct {
	op      string
	status  int
	message string
	sent    bool
	err     error
}

func (e *restError) Error() string {
	if e.status != 0 {
		return fmt.Sprintf("%s: Asterisk replied %d %s", e.op, e.status, e.message)
	}
	return fmt.Sprintf("%s: %v", e.op, e.err)
}

func (e *restError) Unwrap() error { return e.err }

// code maps the reply onto callgate's error codes.
func (e *restError) code() string {
	switch {
	case e.status == 0:
		return controller.EUNAVAILABLE
	case e.status == http.StatusNotFound:
		return controller.ENOTFOUND
	case e.status == http.StatusConflict:
		return controller.ECONFLICT
	case e.status == http.StatusUnauthorized || e.status == http.StatusForbidden || e.status > 500:
		return controller.EUNAVAILABLE
	default:
		return controller.EREFUSED
	}
}

// asController converts err into a controller error with Asterisk's message,
// keeping the restError in the chain.
func asController(switchName string, err error) error {
	var re *restError
	if !errors.As(err, &re) {
		return err
	}
	return fmt.Errorf("%w (%w)", controller.Errorf(re.code(), "switch %s: %s", switchName, re.brief()), re)
}

func (e *restError) brief() string {
	if e.status != 0 {
		return fmt.Sprintf("%s: %d %s", e.op, e.status, e.message)
	}
	return e.op + ": " + e.err.Error()
}

// do sends method path?query and decodes a 2xx JSON reply into out (when
// out is not nil). path must already be escaped.
func (c *restClient) do(ctx context.Context, op, method, path string, query url.Values, out any) error {
	_, err := c.raw(ctx, op, method, path, query, out, nil)
	return err
}

// raw is do that can also return the body of a 2xx reply (when body is
// true), for binary downloads bounded by max bytes.
func (c *restClient) raw(ctx context.Context, op, method, path string, query url.Values, out any, w io.Writer) (int, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return 0, &restError{op: op, err: err}
	}
	req.SetBasicAuth(c.user, c.password)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, &restError{op: op, sent: !dialFailed(err), err: scrubURL(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return resp.StatusCode, &restError{op: op, status: resp.StatusCode, message: replyMessage(b), sent: true}
	}
	if w != nil {
		n, err := io.Copy(w, io.LimitReader(resp.Body, maxDownload+1))
		if err == nil && n > maxDownload {
			err = errors.New("reply too large")
		}
		if err != nil {
			return resp.StatusCode, &restError{op: op, sent: true, err: err}
		}
		return resp.StatusCode, nil
	}
	if out != nil {
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
		if err == nil {
			err = json.Unmarshal(b, out)
		}
		if err != nil {
			return resp.StatusCode, &restError{op: op, sent: true, err: fmt.Errorf("unreadable reply: %w", err)}
		}
	}
	return resp.StatusCode, nil
}

const (
	maxReply    = 16 << 20  // a channel list of many thousand channels
	maxDownload = 512 << 20 // a recording file
)

// replyMessage extracts Asterisk's error text: {"message": …}, or
// {"error": …} (500 "Allocation failed"), else the raw text, shortened.
func replyMessage(b []byte) string {
	var m struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(b, &m) == nil {
		if m.Message != "" {
			return m.Message
		}
		if m.Error != "" {
			return m.Error
		}
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// dialFailed reports whether err happened before the request could be
// written: the TCP (or TLS) connection was never made.
func dialFailed(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// scrubURL drops the URL from a *url.Error (it names the host and path only,
// never credentials, which travel in a header; kept short for logs).
func scrubURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
