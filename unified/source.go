package unified

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ErrNotUnified says that a host has no unified memory ctxfit can read: it is
// not a local Apple Silicon Mac (nor ctxfit's simulated one).
var ErrNotUnified = errors.New("not a local Apple Silicon Mac")

// Source reads and sets a Mac's GPU limit.
type Source interface {
	// Read returns the RAM and the current limit.
	Read(ctx context.Context) (Info, error)
	// SetLimit sets iogpu.wired_limit_mb to mb (0: the default) until the
	// next reboot.
	SetLimit(ctx context.Context, mb int) error
	// Restarts reports whether SetLimit also restarts Ollama (only the
	// simulator does); a real Ollama must be restarted by the user.
	Restarts() bool
}

// Sysctl is the real Source: it runs `sysctl` to read and `sudo sysctl` to
// set, the latter with the terminal attached so that sudo can ask for the
// password. It never runs sudo except from SetLimit.
type Sysctl struct {
	// Sysctl and Sudo are the programs; empty means "sysctl" and "sudo"
	// from PATH.
	Sysctl, Sudo string
	// Stdin, Stdout and Stderr are sudo's terminal.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Read runs `sysctl -n hw.memsize iogpu.wired_limit_mb`.
func (s Sysctl) Read(ctx context.Context) (Info, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, orDefault(s.Sysctl, "sysctl"), "-n", "hw.memsize", "iogpu.wired_limit_mb").Output()
	if err != nil {
		return Info{}, fmt.Errorf("read the GPU limit with sysctl (macOS 14 or later on Apple Silicon has iogpu.wired_limit_mb): %w", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return Info{}, fmt.Errorf("sysctl printed %q; want hw.memsize and iogpu.wired_limit_mb", strings.TrimSpace(string(out)))
	}
	ram, err1 := strconv.ParseInt(f[0], 10, 64)
	mb, err2 := strconv.Atoi(f[1])
	if err := errors.Join(err1, err2); err != nil || ram <= 0 || mb < 0 {
		return Info{}, fmt.Errorf("sysctl printed %q, which is not a memory size and a limit", strings.TrimSpace(string(out)))
	}
	return Info{RAM: ram, WiredLimitMB: mb}, nil
}

// SetLimit runs `sudo sysctl iogpu.wired_limit_mb=N`; sudo asks for the
// password on the terminal.
func (s Sysctl) SetLimit(ctx context.Context, mb int) error {
	cmd := exec.CommandContext(ctx, orDefault(s.Sudo, "sudo"), orDefault(s.Sysctl, "sysctl"), fmt.Sprintf("iogpu.wired_limit_mb=%d", mb))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s.Stdin, s.Stdout, s.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("sudo sysctl iogpu.wired_limit_mb=%d: %w", mb, err)
	}
	return nil
}

// Restarts is false: the user restarts Ollama.
func (Sysctl) Restarts() bool { return false }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// SimulatedPath is where ctxfit's GPU simulator (ctxfit demo) serves its
// simulated Mac's unified memory; a real Ollama answers 404 there.
const SimulatedPath = "/gpusim/unified"

// Simulated is the Source of a simulated Mac: ctxfit's GPU simulator behind
// `ctxfit demo`, whose sysctl lives at SimulatedPath beside its Ollama API.
// Setting the limit there also restarts the simulated Ollama.
type Simulated struct {
	Base   *url.URL
	Client *http.Client
}

type simBody struct {
	RAM          int64 `json:"ram_bytes"`
	WiredLimitMB int   `json:"wired_limit_mb"`
}

// Read asks the simulator.
func (s Simulated) Read(ctx context.Context) (Info, error) {
	var b simBody
	if err := s.do(ctx, http.MethodGet, nil, &b); err != nil {
		return Info{}, err
	}
	return Info(b), nil
}

// SetLimit sets the simulated limit and restarts the simulated Ollama.
func (s Simulated) SetLimit(ctx context.Context, mb int) error {
	return s.do(ctx, http.MethodPost, &simBody{WiredLimitMB: mb}, nil)
}

// Restarts is true: the simulator applies the limit at once.
func (Simulated) Restarts() bool { return true }

func (s Simulated) do(ctx context.Context, method string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.Base.JoinPath(SimulatedPath).String(), body)
	if err != nil {
		return err
	}
	c := s.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return ErrNotUnified
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("simulated Mac at %s: %s: %s", s.Base.Redacted(), resp.Status, strings.TrimSpace(string(msg)))
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(out)
}
