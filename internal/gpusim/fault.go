package gpusim

import (
	"bytes"
	"net/http"
	"strings"
	"time"
)

// Fault makes a Server misbehave, to test how clients cope with a broken
// server or an address that is not Ollama. Fields combine: Delay applies
// first, then the first of Down, Status, Malformed, Truncated, Huge, Stall
// and Trickle that is set; NegativeSizes and VRAMAboveSize change /api/ps answers only.
type Fault struct {
	// Down closes the connection without an answer. Through ServeHTTP
	// without a real connection it panics with http.ErrAbortHandler,
	// which net/http servers treat as a silent abort.
	Down bool
	// Status answers every request with this HTTP status (e.g. 500, 404)
	// and an Ollama error body.
	Status int
	// Malformed answers 200 with an HTML page instead of JSON.
	Malformed bool
	// Truncated answers with the first half of the real body.
	Truncated bool
	// Huge answers with the real body padded with spaces to this many
	// bytes (still valid JSON, for testing response size caps).
	Huge int64
	// Stall sends the real answer's status and headers, then nothing until
	// the request is cancelled: a server hung midway.
	Stall bool
	// Trickle sends the real answer's status and headers at once, then its
	// body one byte per Trickle: a server that never quite stops.
	Trickle time.Duration
	// Only limits the fault to requests for this path ("/api/generate");
	// empty means every request.
	Only string
	// Delay holds every answer back this long (or until the request is
	// cancelled, which then gets no answer).
	Delay time.Duration
	// NegativeSizes makes /api/ps report negative sizes.
	NegativeSizes bool
	// VRAMAboveSize makes /api/ps report size_vram above size.
	VRAMAboveSize bool
}

// ServeHTTP answers one request as Ollama would, unless a Fault is set.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	f := s.fault
	s.mu.Unlock()
	if f.Only != "" && r.URL.Path != f.Only {
		f = Fault{}
	}

	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	switch {
	case f.Down:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case f.Status != 0:
		writeError(w, f.Status, "simulated failure: "+strings.ToLower(http.StatusText(f.Status)))
	case f.Malformed:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("<!DOCTYPE html>\n<html><head><title>Router login</title></head><body>Please sign in.</body></html>\n"))
	case f.Truncated:
		rec := s.record(r)
		rec.copyHeader(w)
		w.WriteHeader(rec.code)
		w.Write(rec.body.Bytes()[:rec.body.Len()/2])
	case f.Huge > 0:
		rec := s.record(r)
		rec.copyHeader(w)
		w.WriteHeader(rec.code)
		if _, err := w.Write(rec.body.Bytes()); err != nil {
			return
		}
		pad := bytes.Repeat([]byte(" "), 32<<10)
		for left := f.Huge - int64(rec.body.Len()); left > 0; left -= int64(len(pad)) {
			if _, err := w.Write(pad[:min(left, int64(len(pad)))]); err != nil {
				return
			}
		}
	case f.Stall || f.Trickle > 0:
		rec := s.record(r)
		rec.copyHeader(w)
		w.WriteHeader(rec.code)
		flush(w)
		if f.Stall {
			<-r.Context().Done()
			return
		}
		for _, b := range rec.body.Bytes() {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(f.Trickle):
			}
			if _, err := w.Write([]byte{b}); err != nil {
				return
			}
			flush(w)
		}
	default:
		s.mux.ServeHTTP(w, r)
	}
}

func flush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// record runs the real handler into a buffer.
func (s *Server) record(r *http.Request) *recorder {
	rec := &recorder{header: http.Header{}, code: http.StatusOK}
	s.mux.ServeHTTP(rec, r)
	return rec
}

// recorder is a buffering http.ResponseWriter.
type recorder struct {
	header http.Header
	code   int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}

func (r *recorder) copyHeader(w http.ResponseWriter) {
	for k, v := range r.header {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
}
