package ollama

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ollama/ollama/api"
)

// MaxResponseBytes caps what ctxfit reads from one Ollama response. /api/ps
// with a dozen models is a few KiB; anything near this is not Ollama.
const MaxResponseBytes = 8 << 20

// ErrTooLarge is the error of reading a response past MaxResponseBytes. Its
// message already asks whether the address is an Ollama server, so callers
// that add that question check for it with errors.Is.
var ErrTooLarge = errors.New("is this address an Ollama server?")

// NewClient returns an Ollama API client for the server at base whose
// responses are cut off with an error past MaxResponseBytes. Callers bound
// each request with a context deadline; the client itself sets none, because
// a model load can legitimately take minutes.
func NewClient(base *url.URL) *api.Client {
	return api.NewClient(base, &http.Client{Transport: capTransport{http.DefaultTransport, MaxResponseBytes}})
}

// capTransport wraps response bodies so that reading past max fails.
type capTransport struct {
	rt  http.RoundTripper
	max int64
}

func (c capTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &capBody{rc: resp.Body, left: c.max, url: r.URL}
	return resp, nil
}

type capBody struct {
	rc   io.ReadCloser
	left int64
	url  *url.URL
}

func (b *capBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("response from %s is larger than %d MiB; %w", b.url.Redacted(), MaxResponseBytes>>20, ErrTooLarge)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *capBody) Close() error { return b.rc.Close() }

// RequestTimeout bounds one status request (/api/ps, /api/version).
const RequestTimeout = 5 * time.Second

// StatusError is an error answer of the server (api.StatusError) as ctxfit
// words it: "HTTP 500: <its message>", trimmed (a plain-text body ends in a
// newline, which reached terminals as a literal "\n"), and for a server
// error the place of Ollama's log, where the reason is. errors.As still
// finds the api.StatusError.
type StatusError struct{ api.StatusError }

func (e StatusError) Error() string {
	msg := strings.TrimSpace(e.ErrorMessage)
	if msg == "" {
		msg = strings.TrimSpace(e.Status)
	}
	s := fmt.Sprintf("HTTP %d: %s", e.StatusCode, msg)
	if e.StatusCode >= 500 {
		s += ". " + LogHint
	}
	return s
}

func (e StatusError) Unwrap() error { return e.StatusError }

// LogHint says where Ollama's own log is, which says why it failed.
const LogHint = "Ollama's log has more: `journalctl -u ollama` for the Linux service, ~/.ollama/logs/server.log for the desktop app, `docker logs` for a container"
