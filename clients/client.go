// Package clients rewrites the config files of programs that talk to Ollama
// (Continue today; Zed, aider and Cline fit in the same way) so that they ask
// for the context length ctxfit tuned, and keeps those files fixed.
//
// Each client is one file that registers a Client: a small value that names
// the files the client reads and turns their bytes into fixed bytes. It does
// no I/O of its own beyond looking at which files exist. Everything that
// touches a user's file lives in the shared machinery: Fixer reads, checks,
// backs up and writes atomically (keeping symlinks and modes), prints diffs
// and undoes; Watch and Keeper notice changes on disk and put the tuned
// values back.
package clients

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/ctxfit/ctxfit/clients/edit"

	"github.com/ctxfit/ctxfit/internal/ollamahost"
)

// ErrNotInstalled reports that a client has no config file on this machine.
// It is not a failure: callers skip the client, or say so when the user
// named it.
var ErrNotInstalled = errors.New("not installed")

// Client is one program whose config file ctxfit can fix.
//
// Implementations are plain values that register themselves from an init
// function (see register) and assert the interface with
// `var _ Client = (*myClient)(nil)`. Edit and Asks must be pure functions of
// their arguments.
type Client interface {
	// Name is the client's name as users know it ("Continue"). Commands
	// accept it in any case: `ctxfit fix continue`.
	Name() string

	// Files returns the files the client reads in env. Files.Config is empty
	// when the client has no config file; Files.Watch is filled either way,
	// so that a config created later is noticed.
	Files(env Env) (Files, error)

	// Edit returns in.Src with every entry that talks to t.Host about a
	// model with a tuned value set to that value, and what it changed. It
	// changes no byte outside the edited values and keys, and returns an
	// error, with nothing changed, when in.Src does not parse.
	Edit(in Input, t Target) (Result, error)

	// Asks reports what context each entry for an Ollama model on t.Host
	// asks for, with the tuned value when there is one.
	Asks(in Input, t Target) ([]Ask, error)
}

// Env is the part of the environment that decides where clients keep their
// files. Tests fill it with temporary directories.
type Env struct {
	Home    string              // the user's home directory
	Getenv  func(string) string // environment lookups (CONTINUE_GLOBAL_DIR, APPDATA, ...)
	GOOS    string              // runtime.GOOS, or another value in tests
	WorkDir string              // the directory whose project files may override a config; "" for none
}

// NewEnv returns the environment of this process, reading variables with
// getenv (so that a command's tests can inject them). The home directory is
// $HOME, or %USERPROFILE% on Windows.
func NewEnv(getenv func(string) string) Env {
	e := Env{Getenv: getenv, GOOS: runtime.GOOS}
	e.Home = getenv("HOME")
	if e.GOOS == "windows" || e.Home == "" {
		if p := getenv("USERPROFILE"); p != "" {
			e.Home = p
		}
	}
	if wd, err := os.Getwd(); err == nil {
		e.WorkDir = wd
	}
	return e
}

func (e Env) getenv(k string) string {
	if e.Getenv == nil {
		return ""
	}
	return e.Getenv(k)
}

// Files are the files a client reads.
type Files struct {
	// Config is the config file the client reads now; empty when there is
	// none. ctxfit never creates it.
	Config string `json:"config,omitempty"`
	// Watch lists every file whose appearance or change matters: Config and
	// the files that would take its place.
	Watch []string `json:"watch"`
	// Overrides lists existing files that can override Config's values
	// (Continue's config.ts and a project's .continuerc.json).
	Overrides []string `json:"overrides,omitempty"`
	// V1Readers lists the programs found here that read Config too but
	// reach Ollama through its /v1 API, which cannot carry num_ctx
	// (Continue's CLI): their fix selects derived models.
	V1Readers []string `json:"v1_readers,omitempty"`
}

// Input is a config file's content and the files that can override it.
type Input struct {
	Path      string            // Files.Config; its extension picks the format
	Src       []byte            // its content
	Overrides map[string][]byte // Files.Overrides that could be read, by path
	// V1Readers is Files.V1Readers.
	V1Readers []string
	// Getenv reads the environment the client runs in, for clients whose
	// config means something else under a variable (aider's OLLAMA_API_BASE,
	// Codex's CODEX_OSS_BASE_URL); nil reads nothing.
	Getenv func(string) string
	// Wrote holds the contexts that ctxfit's fixes of this client wrote
	// (Fixer.wrote); a smaller context than the tuned one is the user's
	// choice, which a fix keeps, unless it is one of these.
	Wrote map[int]bool
}

// getenv returns the variable k of the client's environment, "" without one.
func (in Input) getenv(k string) string {
	if in.Getenv == nil {
		return ""
	}
	return in.Getenv(k)
}

// Target is what a fix aims for: the Ollama server whose models were tuned
// and the tuned context of each model.
type Target struct {
	// Host is the Ollama server that ctxfit watches. Entries whose apiBase
	// names another server are left alone; localhost, 127.0.0.1 and [::1]
	// are the same server.
	Host *url.URL
	// Tuned returns the tuned context for a model name on Host ("m" and
	// "m:latest" name the same model), and false when there is none.
	Tuned func(model string) (context int, ok bool)
	// Models lists the models with a tuned value on Host, for clients that
	// add an entry for each (aider's model settings); nil when unknown.
	Models []string
	// ForSet, when set, gives the tuned values for a config whose models
	// run together (a client that implements Together and names two or
	// more): they replace Tuned for that config. nil leaves Tuned alone.
	ForSet ForSet
	// Derive returns the name of the copy of model whose Modelfile sets
	// num_ctx to context (ollama.DerivedName). Clients that reach Ollama
	// through its OpenAI-compatible /v1 API, which cannot carry num_ctx,
	// select that copy in their config; nil leaves model names alone. Tuned
	// must then also answer for a derived name, with its base's value.
	Derive func(model string, context int) (string, error)
}

// derived returns the model a /v1 client's entry naming model should
// select at context n: the derived copy, or model itself when Derive is
// nil or fails (the client's context key is still set then).
func (t Target) derived(model string, n int) string {
	if t.Derive == nil {
		return model
	}
	d, err := t.Derive(model, n)
	if err != nil || d == "" {
		return model
	}
	return d
}

func (t Target) tuned(model string) (int, bool) {
	if t.Tuned == nil || strings.TrimSpace(model) == "" {
		return 0, false
	}
	n, ok := t.Tuned(model)
	if !ok || n <= 0 {
		return 0, false
	}
	return n, true
}

// ollamaHost matches a client entry's server address (Continue's apiBase,
// Zed's api_url, aider's api_base, Cline's baseUrl) against the watched
// server; every client uses it, so loopback names compare alike everywhere.
type ollamaHost struct{ key string }

func newOllamaHost(t Target) *ollamaHost {
	if t.Host == nil {
		return &ollamaHost{key: ollamahost.Key(ollamahost.Parse(""))}
	}
	return &ollamaHost{key: ollamahost.Key(t.Host)}
}

// matches reports whether an entry with this provider and apiBase talks to
// the watched Ollama server. An absent apiBase means Ollama's default
// address, which the clients use then.
func (h *ollamaHost) matches(provider, apiBase string, hasBase bool) bool {
	if provider != "ollama" {
		return false
	}
	if !hasBase || strings.TrimSpace(apiBase) == "" {
		return h.key == ollamahost.Key(ollamahost.Parse(""))
	}
	return h.key == ollamahost.Key(ollamahost.Parse(apiBase))
}

// MaxTokens is the largest completion limit ctxfit leaves beside a
// context: half of it, because clients fail or warn when the two are equal
// or close (Continue errors when maxTokens ≥ contextLength), and in
// Continue the prompt gets contextLength − maxTokens.
func MaxTokens(context int) int { return context / 2 }

// WantMaxTokens returns the completion limit a fix writes into an entry
// that has cur (0 when unset) beside a new context n, for a client that
// uses def when it is unset; 0 means the fix leaves the limit as it is.
// The rule: a limit larger than half the context becomes half of it; a
// smaller explicit one is kept, since raising it would shrink the prompt;
// an unset one stays unset unless the client's default is larger than half.
func WantMaxTokens(cur, def, n int) int { return capMaxTokens(cur, def, MaxTokens(n)) }

// capMaxTokens is WantMaxTokens's rule with the ceiling given: ceiling when
// the limit in effect (cur, else def) is larger, else 0 (leave it). Continue
// uses a quarter of the context as the ceiling when its CLI reads the file
// (continueMaxTokens).
func capMaxTokens(cur, def, ceiling int) int {
	eff := cur
	if eff <= 0 {
		eff = def
	}
	if ceiling > 0 && eff > ceiling {
		return ceiling
	}
	return 0
}

// MaxTokensRule says WantMaxTokens's rule in a sentence, for fix --dry-run
// and the README.
const MaxTokensRule = "maxTokens becomes half the context where it is larger (or unset while the client's default is larger), a quarter in Continue's config.yaml when its CLI cn (whose default is 35% of the context) is on the PATH; a smaller value is kept, since in Continue the prompt gets contextLength − maxTokens"

// OutputLimitRule says the same rule for the other clients, which call
// the answer's share of the context by other names.
const OutputLimitRule = "the answer's share of the context (max tokens, output limit) becomes half the context where it is larger or unset; a smaller value is kept, since the client keeps that share of the context for the answer"

// Result is what Edit did.
type Result struct {
	Out      []byte   // the new content; equal to the input when nothing changed
	Changes  []Change // one per entry changed
	Warnings []string // what may still override the new values

	spans []edit.Span // the edits in input offsets, for tests
}

// Change describes one entry (a model) whose values Edit changed. A value
// of 0 means the key was not set (or not a number).
type Change struct {
	Where        string `json:"where"` // where the entry is: "models[2]", "tabAutocompleteModel"
	Title        string `json:"title,omitempty"`
	Model        string `json:"model"`
	OldContext   int    `json:"old_context"`
	NewContext   int    `json:"new_context"`
	OldMaxTokens int    `json:"old_max_tokens"`
	NewMaxTokens int    `json:"new_max_tokens"`
	// Derived is the model the entry names after the fix, in place of
	// Model, when the client reaches Ollama through /v1: a copy of Model
	// whose num_ctx is NewContext, which the fix creates on the server
	// before writing the file (Fixer.Derive). "" when the name stays.
	Derived string `json:"derived,omitempty"`
}

// Label names the entry for people: its title and model, or the model alone.
func (c Change) Label() string { return label(c.Title, c.Model, c.Where) }

func label(title, model, where string) string {
	switch {
	case title != "" && title != model:
		return fmt.Sprintf("%s (%s)", title, model)
	case model != "":
		return model
	}
	return where
}

// Ask is what one client entry asks Ollama for.
type Ask struct {
	Client    string `json:"client"`
	Path      string `json:"path"`
	Where     string `json:"where"`
	Title     string `json:"title,omitempty"`
	Model     string `json:"model"`
	Context   int    `json:"context"`    // num_ctx the entry sends; 0 when unset (the client's default)
	MaxTokens int    `json:"max_tokens"` // num_predict; 0 when unset
	Tuned     int    `json:"tuned"`      // the tuned context for Model; 0 when not tuned
	// Beside names the models that run with Model in this client when
	// Tuned comes from their joint tune; empty when it is Model's alone.
	Beside []string `json:"beside,omitempty"`
	// Derived is the model the fix makes the entry name (a copy of Model
	// with num_ctx = Tuned) for a client that reaches Ollama through /v1;
	// "" for clients that send num_ctx themselves.
	Derived string `json:"derived,omitempty"`
	// WantMaxTokens is the completion limit this client's fix writes beside
	// Tuned; 0 when the fix leaves the entry's limit alone (Zed and aider
	// have none, Cline's is lowered only when it would not fit).
	WantMaxTokens int `json:"-"`
	// NotNumber says what the entry's context key holds when that is not a
	// whole number ctxfit can read: `contextLength is the string "abc"`.
	// Context is 0 then, and a fix leaves the entry alone (NotNumberText).
	NotNumber string `json:"not_a_number,omitempty"`
	// kept says that the fix keeps Context, smaller than Tuned, as the
	// user's choice (Input.keepContext).
	kept bool
}

// keepContext returns the context a fix writes into an entry of a client
// that sends num_ctx itself, which asks for cur (0 when unset), when n is
// tuned: cur where the user chose a smaller one (it stays on the GPU, and
// may leave room for another model or be faster), else n. A smaller value
// that an earlier fix of this client wrote (in.Wrote) is ctxfit's, not the
// user's: it gives way to n, so that a later, larger tune reaches the file.
// Clients that reach Ollama through /v1 get n, the derived model's num_ctx.
func (in Input) keepContext(cur, n int) int {
	if cur > 0 && cur < n && !in.Wrote[cur] {
		return cur
	}
	return n
}

// Kept reports whether the fix keeps the entry's Context, smaller than
// Tuned, as the user's choice.
func (a Ask) Kept() bool { return a.kept }

// Differs reports whether the entry's values are not the tuned ones, so that
// a fix would change them. An entry whose context is not a number is left
// alone by the fix, so it does not differ.
func (a Ask) Differs() bool {
	return a.Tuned > 0 && a.NotNumber == "" && ((a.Context != a.Tuned && !a.kept) || (a.WantMaxTokens > 0 && a.MaxTokens != a.WantMaxTokens) ||
		(a.Derived != "" && a.Derived != a.Model))
}

// NotNumberText says, for an entry whose context key is not a number, what
// it holds and what to do, naming the file: the warning of status, clients
// and the daemon ("" when the value is a number or unset).
func (a Ask) NotNumberText() string {
	if a.NotNumber == "" {
		return ""
	}
	return fmt.Sprintf("%s: %s %s in %s: %s", a.Client, a.Where, label(a.Title, a.Model, ""), a.Path, notNumberAdvice(a.NotNumber, a.Tuned))
}

// notNumberAdvice says that a context value (what: `contextLength is the
// string "abc"`) is not a number, that the fix leaves the entry alone, and
// what to write instead (the tuned value n, when there is one).
func notNumberAdvice(what string, n int) string {
	todo := "write a whole number of tokens there, or remove the key for the client's default"
	if n > 0 {
		todo = fmt.Sprintf("write a whole number of tokens there (%d stays on the GPU), or remove the key, and the next fix writes the tuned value", n)
	}
	return fmt.Sprintf("%s, not a whole number of tokens: ctxfit leaves the entry alone rather than overwrite what you wrote; %s", what, todo)
}

// isNot joins a key and the description of its value from edit's
// NotNumber functions ("contextLength is the string \"abc\""); "" when
// the value is fine.
func isNot(key, desc string) string {
	if desc == "" {
		return ""
	}
	return key + " is " + desc
}

// notNumberWarning is the warning of a fix that leaves an entry alone
// because its context value is not a number.
func notNumberWarning(where, title, model, what string, n int) string {
	return fmt.Sprintf("%s %s: %s", where, label(title, model, ""), notNumberAdvice(what, n))
}

// TooLarge reports whether the entry asks for more context than stays on
// the GPU.
func (a Ask) TooLarge() bool { return a.Tuned > 0 && a.Context > a.Tuned }

// String says what the entry asks for, for warnings:
// "Continue asks llama3.1:8b for 131072 tokens; 24576 stays on the GPU".
func (a Ask) String() string {
	asks := fmt.Sprintf("%d tokens", a.Context)
	if a.Context == 0 {
		asks = "its default context"
	}
	s := fmt.Sprintf("%s asks %s for %s", a.Client, a.Model, asks)
	if a.Tuned > 0 {
		s += fmt.Sprintf("; %d stays on the GPU", a.Tuned)
	}
	return s
}

// registry holds every client, keyed by lowercase name. It is filled by the
// init functions of the client files and read-only afterwards.
var registry = map[string]Client{}

// register adds c to the clients ctxfit knows. Each client file calls it
// from init.
func register(c Client) {
	k := strings.ToLower(c.Name())
	if _, dup := registry[k]; dup {
		panic("clients: " + c.Name() + " registered twice")
	}
	registry[k] = c
}

// All returns every known client, sorted by name in any case.
func All() []Client {
	cs := make([]Client, 0, len(registry))
	for _, c := range registry {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return strings.ToLower(cs[i].Name()) < strings.ToLower(cs[j].Name()) })
	return cs
}

// Lookup returns the client called name, in any case.
func Lookup(name string) (Client, error) {
	if c, ok := registry[strings.ToLower(strings.TrimSpace(name))]; ok {
		return c, nil
	}
	var names []string
	for _, c := range All() {
		names = append(names, strings.ToLower(c.Name()))
	}
	return nil, fmt.Errorf("unknown client %q; ctxfit knows %s", name, strings.Join(names, ", "))
}

// lookPath returns the path of the executable name in env's PATH (with
// Windows' extensions there), or "".
func (e Env) lookPath(name string) string {
	sep, exts := ":", []string{""}
	if e.GOOS == "windows" {
		sep, exts = ";", []string{".exe", ".cmd", ".bat", ""}
	}
	for _, dir := range strings.Split(e.getenv("PATH"), sep) {
		if dir == "" {
			continue
		}
		for _, ext := range exts {
			p := filepath.Join(dir, name+ext)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && (e.GOOS == "windows" || fi.Mode()&0o111 != 0) {
				return p
			}
		}
	}
	return ""
}

// exists reports whether something (a file, or a symlink even when dangling)
// is at path.
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// joinHome returns the path of rel under env's home directory.
func (e Env) joinHome(rel ...string) (string, error) {
	if e.Home == "" {
		return "", errors.New("cannot find the home directory (set HOME)")
	}
	return filepath.Join(append([]string{e.Home}, rel...)...), nil
}

// ParseError reports a config file that does not parse. ctxfit changes
// nothing in such a file.
type ParseError struct {
	Path string
	Err  error
}

// Error says which file does not parse, why, and that it was left alone.
func (e *ParseError) Error() string {
	return Redact(fmt.Sprintf("%s does not parse, so ctxfit left it alone; fix it and try again: %v", e.Path, e.Err))
}

// Unwrap returns the parser's error.
func (e *ParseError) Unwrap() error { return e.Err }
