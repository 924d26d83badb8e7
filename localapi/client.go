package localapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"

	"github.com/ctxfit/ctxfit/hub"
)

// Client talks to the daemon on one socket, like tailscale's client/local.
type Client struct {
	path string
	hc   *http.Client
}

// NewClient returns a client of the daemon at socket path; nothing is
// dialled until a call.
func NewClient(path string) *Client {
	d := net.Dialer{Timeout: dialTimeout}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "unix", path)
	}}
	return &Client{path: path, hc: &http.Client{Transport: tr}}
}

// Path returns the socket's path.
func (c *Client) Path() string { return c.path }

// Connect returns a client of the daemon at path after a Hello: ErrNoDaemon
// when none answers there, an *Error with CodeVersion when it speaks
// another API version.
func Connect(ctx context.Context, path string) (*Client, Hello, error) {
	c := NewClient(path)
	h, err := c.Hello(ctx)
	if err != nil {
		return nil, h, err
	}
	return c, h, nil
}

// Hello asks the daemon who it is and checks that it speaks Version.
func (c *Client) Hello(ctx context.Context) (Hello, error) {
	var h Hello
	err := c.do(ctx, http.MethodGet, "/v1/hello", nil, &h)
	var e *Error
	switch {
	case errors.As(err, &e) && e.Status == http.StatusNotFound:
		// A daemon without /v1: older than any API this ctxfit knows.
		return h, versionError(Version, Hello{API: 0, Version: "older"})
	case err != nil:
		return h, err
	case h.API != Version:
		return h, versionError(Version, h)
	}
	return h, nil
}

// State returns the daemon's state.
func (c *Client) State(ctx context.Context) (hub.State, error) {
	var s hub.State
	err := c.do(ctx, http.MethodGet, "/v1/state", nil, &s)
	return s, err
}

// BeginTune registers a tune this process runs.
func (c *Client) BeginTune(ctx context.Context, model, by string) error {
	return c.do(ctx, http.MethodPost, "/v1/tunes/begin", TuneBegin{model, by}, nil)
}

// TuneProgress tells the daemon the tuner's latest line.
func (c *Client) TuneProgress(ctx context.Context, model, line string) error {
	return c.do(ctx, http.MethodPost, "/v1/tunes/progress", TuneProgress{model, line}, nil)
}

// EndTune tells the daemon the tune ended, and returns what it did.
func (c *Client) EndTune(ctx context.Context, end TuneEnd) (TuneEnded, error) {
	var out TuneEnded
	err := c.do(ctx, http.MethodPost, "/v1/tunes/end", end, &out)
	return out, err
}

// Set changes one setting in the running daemon, which persists it.
func (c *Client) Set(ctx context.Context, s Setting) (Settings, error) {
	var out Settings
	err := c.do(ctx, http.MethodPost, "/v1/settings", s, &out)
	return out, err
}

// Undo restores client's config through the daemon.
func (c *Client) Undo(ctx context.Context, client string) (Undone, error) {
	var out Undone
	err := c.do(ctx, http.MethodPost, "/v1/undo", Undo{client}, &out)
	return out, err
}

// Events follows the daemon's updates until ctx ends: first the current
// state, then one update per change. The channel closes when the stream
// ends.
func (c *Client) Events(ctx context.Context) (<-chan hub.Update, error) {
	resp, err := c.request(ctx, http.MethodGet, "/v1/events", nil)
	if err != nil {
		return nil, err
	}
	ch := make(chan hub.Update)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			var u hub.Update
			if json.Unmarshal(sc.Bytes(), &u) != nil {
				return
			}
			select {
			case ch <- u:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.request(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("the ctxfit daemon's answer to %s does not decode: %w", path, err)
	}
	return nil
}

func (c *Client) request(ctx context.Context, method, path string, in any) (*http.Response, error) {
	if _, err := os.Stat(c.path); errors.Is(err, fs.ErrNotExist) {
		// No socket file: no daemon, on every system alike (Windows
		// reports a failed AF_UNIX dial with errors of its own).
		return nil, fmt.Errorf("%w (no %s)", ErrNoDaemon, c.path)
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://ctxfit"+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set(APIHeader, strconv.Itoa(Version))
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() == nil && absent(err) {
			return nil, fmt.Errorf("%w (%s)", ErrNoDaemon, c.path)
		}
		return nil, fmt.Errorf("talk to the ctxfit daemon at %s: %w", c.path, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		e := &Error{Status: resp.StatusCode}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, e) != nil || e.Message == "" {
			e.Message = fmt.Sprintf("the ctxfit daemon answered %s to %s", resp.Status, path)
		}
		return nil, e
	}
	return resp, nil
}

// absent reports whether err means nobody serves the socket: no file, a
// file nobody listens on, or one this user may not open.
func absent(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) || errors.Is(err, net.ErrClosed)
}
