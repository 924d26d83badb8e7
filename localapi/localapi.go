// Package localapi is the control API that `ctxfit run` serves to ctxfit's
// other front-ends, after tailscaled's LocalAPI: the CLI in a terminal asks
// the running daemon for its state, tells it about the tunes it runs,
// changes settings and undoes fixes through it, so that the daemon knows
// every action and never mistakes one for something to warn about.
//
// It is HTTP over a Unix socket, one per Ollama server (as the instance
// lock is), in $XDG_RUNTIME_DIR/ctxfit, else in ctxfit's state directory.
// The socket is 0600 in a 0700 directory: its permissions are the access
// control. On Windows the same AF_UNIX socket is used (Windows 10 1803 and
// later support it, and Go's net package speaks it), in the state
// directory under %AppData%, whose ACL admits the current user alone; this
// needs no named-pipe dependency and keeps one code path on every system.
//
// Every path starts with /v1 and every request carries APIHeader; a
// daemon that speaks another version answers 400 with code "version", and
// Client.Hello tells the two apart, so that a CLI newer or older than the
// daemon says so clearly instead of misreading answers.
package localapi

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/ctxfit/ctxfit/clients"
	"github.com/ctxfit/ctxfit/hub"
	"github.com/ctxfit/ctxfit/state"
)

// Version is the version of the control API this ctxfit speaks.
const Version = 1

// APIHeader carries the client's API version on every request.
const APIHeader = "Ctxfit-Api-Version"

// SocketPath returns the control socket of the daemon that watches the
// server with host key hostKey and keeps its state in stateDir: under
// runtimeDir ($XDG_RUNTIME_DIR) when set, else in stateDir. The name hashes
// both, so that daemons with separate state never meet.
func SocketPath(runtimeDir, stateDir, hostKey string) string {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		abs = stateDir
	}
	sum := sha256.Sum256([]byte(abs + "\x00" + hostKey))
	name := "api-" + hex.EncodeToString(sum[:6]) + ".sock"
	if runtimeDir != "" {
		return filepath.Join(runtimeDir, "ctxfit", name)
	}
	return filepath.Join(stateDir, name)
}

// Hello is the daemon's answer to GET /v1/hello.
type Hello struct {
	API     int    `json:"api"`     // the API version it speaks
	Version string `json:"version"` // ctxfit's build version
	PID     int    `json:"pid"`
	Host    string `json:"host"` // the Ollama server it watches
	// Env lists environment assignments ("NAME=value") under which the
	// daemon reads client configs, when they differ from the user's (the
	// demo's Continue folder): a command the CLI suggests carries them, so
	// that it sees the same files. Absent for a plain daemon.
	Env []string `json:"env,omitempty"`
}

// TuneBegin is the body of POST /v1/tunes/begin.
type TuneBegin struct {
	Model string `json:"model"`
	By    string `json:"by"`
}

// TuneProgress is the body of POST /v1/tunes/progress.
type TuneProgress struct {
	Model string `json:"model"`
	Line  string `json:"line"`
}

// TuneEnd is the body of POST /v1/tunes/end. The tuner has stored a
// successful result before it says so.
type TuneEnd struct {
	Model string `json:"model"`
	// Context is the tuned context; 0 when the tune failed or stopped.
	Context int `json:"context"`
	// Message says how it ended, for the log and the tray.
	Message string `json:"message"`
}

// TuneEnded is the answer to POST /v1/tunes/end: what the daemon did with
// the result.
type TuneEnded struct {
	// Fixed lists the client configs rewritten with the new value.
	Fixed []clients.Report `json:"fixed"`
	// TooLarge lists the entries still asking for more (auto-fix off,
	// or a config held after an undo).
	TooLarge []clients.Ask `json:"too_large"`
	AutoFix  bool          `json:"auto_fix"`
	// Asking counts the client entries that ask for the tuned model (or
	// run beside it), whatever they ask; nil from a daemon that predates it.
	Asking *int `json:"asking,omitempty"`
	// Tray is set when the running ctxfit shows a tray, which offers the
	// fix too (Fix now).
	Tray bool `json:"tray,omitempty"`
}

// Setting is the body of POST /v1/settings: one setting to change.
type Setting struct {
	Name string `json:"name"` // "auto-fix" or "notifications"
	On   bool   `json:"on"`
}

// Undo is the body of POST /v1/undo.
type Undo struct {
	Client string `json:"client"`
}

// Undone is the answer to POST /v1/undo.
type Undone struct {
	clients.Undone
	// Held reports that auto-fix leaves the file alone until it changes.
	Held bool `json:"held"`
}

// Settings are the persisted settings as the API shows them.
type Settings = state.Settings

// State is the answer to GET /v1/state.
type State = hub.State

// Error is an error the daemon answered, or a version mismatch.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code,omitempty"`
	Message string `json:"error"`
}

func (e *Error) Error() string { return e.Message }

// Error codes.
const (
	CodeVersion       = "version"         // the client speaks another API version
	CodeNothingToUndo = "nothing_to_undo" // no fix of that client to undo
	CodeNotInstalled  = "not_installed"   // the client has no config here
	CodeTuning        = "tuning"          // the model is already being tuned
	CodeBadRequest    = "bad_request"
)

// ErrNoDaemon reports that no daemon serves the socket: none runs for this
// server, or it runs as another user. Commands then work standalone.
var ErrNoDaemon = errors.New("no ctxfit daemon answers for this server")

// IsCode reports whether err is an *Error with code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// buildVersion returns ctxfit's version as the Go toolchain stamped it.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// versionError says which side is newer and what to do.
func versionError(ours int, h Hello) *Error {
	who := "older"
	if h.API > ours {
		who = "newer"
	}
	return &Error{Code: CodeVersion, Message: fmt.Sprintf(
		"the running ctxfit daemon (pid %d, ctxfit %s) speaks control API v%d and this ctxfit v%d: the daemon is %s than this command. Restart it (`ctxfit service restart`, or Quit in its tray and start `ctxfit run`) so that both are the same ctxfit",
		h.PID, h.Version, h.API, ours, who)}
}

// removeStale removes a socket file left by a daemon that died; the caller
// holds the instance lock, so no live daemon serves it.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 && fi.Mode().IsRegular() && fi.Size() > 0 {
		return fmt.Errorf("%s exists and is not a socket; move it away", path)
	}
	return os.Remove(path)
}

// dialTimeout bounds connecting to the socket: a daemon that does not
// accept within it counts as absent.
const dialTimeout = 2 * time.Second
