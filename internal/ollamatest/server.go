package ollamatest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
)

// StartTimeout bounds how long Start waits for a new server to answer.
const StartTimeout = 60 * time.Second

// Server is a running `ollama serve` with its own model store, listening on
// a loopback port. Start returns one; Close stops it.
type Server struct {
	url    *url.URL
	client *api.Client
	dir    string // OLLAMA_MODELS and HOME live here
	cmd    *exec.Cmd
	exited chan struct{} // closed when the serve process has exited
	log    *tailBuffer

	closeOnce sync.Once
	closeErr  error
}

// Start starts an Ollama server for the test and stops it when the test
// and its subtests end; when the test failed, the tail of the server's log
// is printed. Tests in one package can share a server by starting it in a
// parent test and running the rest as subtests.
func Start(tb testing.TB) *Server { return StartWith(tb, Options{}) }

// Options change how a test server runs.
type Options struct {
	// Env holds KEY=VALUE settings for `ollama serve` that replace the
	// defaults (OLLAMA_NUM_PARALLEL=1, OLLAMA_MAX_LOADED_MODELS=1) or add
	// to them, e.g. OLLAMA_MAX_LOADED_MODELS=2 to keep two models loaded.
	Env []string
}

// StartWith is Start with opts.
func StartWith(tb testing.TB, opts Options) *Server {
	tb.Helper()
	bin := Require(tb)
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	s, err := StartServerWith(ctx, bin, tb.TempDir(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	s.cleanup(tb)
	return s
}

// cleanup stops s when tb ends, printing the tail of its log when tb failed.
func (s *Server) cleanup(tb testing.TB) {
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("ollama serve log (last 60 lines):\n%s", s.LogTail(60))
		}
		if err := s.Close(); err != nil {
			tb.Errorf("stop ollama: %v", err)
		}
	})
}

// StartServer starts bin as `ollama serve` on a free loopback port, with
// its models and home directory under dir, and waits until it answers
// /api/version. The Ollama settings of this process's environment
// (OLLAMA_*) are not passed on, so that a developer's own configuration
// cannot change what the tests see.
func StartServer(ctx context.Context, bin, dir string) (*Server, error) {
	return StartServerWith(ctx, bin, dir, Options{})
}

// StartServerWith is StartServer with opts.
func StartServerWith(ctx context.Context, bin, dir string, opts Options) (*Server, error) {
	// A free port can be taken by someone else between choosing it and the
	// server's bind; try a few.
	var err error
	for range 3 {
		var s *Server
		s, err = startOnce(ctx, bin, dir, opts)
		if err == nil {
			return s, nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, err
}

func startOnce(ctx context.Context, bin, dir string, opts Options) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", port)
	models := filepath.Join(dir, "models")
	home := filepath.Join(dir, "home")
	for _, d := range []string{models, home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("start ollama: %w", err)
		}
	}
	s := &Server{
		url:    &url.URL{Scheme: "http", Host: addr},
		dir:    dir,
		exited: make(chan struct{}),
		log:    newTailBuffer(1 << 20),
	}
	s.client = api.NewClient(s.url, http.DefaultClient)

	cmd := exec.Command(bin, "serve")
	cmd.Env = append(cleanEnv(os.Environ()),
		"OLLAMA_HOST="+addr,
		"OLLAMA_MODELS="+models,
		"HOME="+home,
		"USERPROFILE="+home,
		// One slot keeps sizes in /api/ps independent of the machine.
		"OLLAMA_NUM_PARALLEL=1",
		"OLLAMA_MAX_LOADED_MODELS=1",
		"OLLAMA_NOPRUNE=1",
	)
	cmd.Env = append(cmd.Env, opts.Env...) // the last of a duplicate key wins
	cmd.Stdout = s.log
	cmd.Stderr = s.log
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", bin, err)
	}
	s.cmd = cmd
	go func() {
		cmd.Wait()
		close(s.exited)
	}()

	if err := s.waitReady(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("start %s serve on %s: %w\n%s", bin, addr, err, s.LogTail(30))
	}
	return s, nil
}

// waitReady polls /api/version until the server answers.
func (s *Server) waitReady(ctx context.Context) error {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := s.client.Version(rctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			if strings.Contains(s.log.String(), "address already in use") {
				return errors.New("address already in use")
			}
			return fmt.Errorf("server exited: %v", s.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("no answer from /api/version: %w (last error: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

// cleanEnv drops the Ollama settings from env.
func cleanEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if strings.HasPrefix(strings.ToUpper(kv), "OLLAMA_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// URL returns the server's base URL, e.g. http://127.0.0.1:41234.
func (s *Server) URL() *url.URL {
	u := *s.url
	return &u
}

// Host returns the server's address as OLLAMA_HOST spells it: 127.0.0.1:PORT.
func (s *Server) Host() string { return s.url.Host }

// Client returns an API client for the server.
func (s *Server) Client() *api.Client { return s.client }

// ModelsDir returns the server's OLLAMA_MODELS directory.
func (s *Server) ModelsDir() string { return filepath.Join(s.dir, "models") }

// LogTail returns the last n lines the server wrote to stdout and stderr,
// leaving out the access log lines of /api/ps and /api/version, which
// a watcher polling the server writes by the hundred.
func (s *Server) LogTail(n int) string { return s.log.Tail(n, polls) }

// polls matches the access log lines that LogTail leaves out.
func polls(line []byte) bool {
	return bytes.Contains(line, []byte(`"/api/ps"`)) || bytes.Contains(line, []byte(`"/api/version"`))
}

// Close stops the server and the model runners it started: SIGTERM to the
// process group, then SIGKILL after a few seconds. It is safe to call more
// than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.cmd == nil || s.cmd.Process == nil {
			return
		}
		stopGroup(s.cmd, false)
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
			stopGroup(s.cmd, true)
			select {
			case <-s.exited:
			case <-time.After(5 * time.Second):
				s.closeErr = fmt.Errorf("ollama serve (pid %d) did not exit", s.cmd.Process.Pid)
				return
			}
		}
		// Runners that outlived their server would hold memory and ports.
		stopGroup(s.cmd, true)
	})
	return s.closeErr
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// Tail returns the last n lines for which skip returns false.
func (t *tailBuffer) Tail(n int, skip func(line []byte) bool) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var lines [][]byte
	b := bytes.TrimRight(t.b, "\n")
	for len(b) > 0 && len(lines) < n {
		i := bytes.LastIndexByte(b, '\n')
		line := b[i+1:]
		if skip == nil || !skip(line) {
			lines = append(lines, line)
		}
		b = b[:max(i, 0)]
	}
	slices.Reverse(lines)
	return string(bytes.Join(lines, []byte("\n")))
}
