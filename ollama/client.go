package ollama

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/ollama/ollama/api"
)

// MaxResponseBytes caps what ctxfit reads from one Ollama response. /api/ps
// with a dozen models is a few KiB; anything near this is not Ollama.
const MaxResponseBytes = 8 << 20

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
		return 0, fmt.Errorf("response from %s is larger than %d bytes; is this address an Ollama server?", b.url.Redacted(), MaxResponseBytes)
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
