package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ctxfit/ctxfit/clients"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/localapi"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/state"
)

// runFix is `ctxfit fix CLIENT [--dry-run] [--json] [--host URL]`: it writes
// the tuned context of each model into CLIENT's config. `ctxfit fix ollama`
// (derived models for clients that send no num_ctx) has its own file.
func runFix(ctx context.Context, e *env, args []string) error {
	if name, rest, ok := clientArg(args); ok && strings.EqualFold(name, "ollama") {
		return runFixOllama(ctx, e, rest)
	}
	fs := e.flags("fix")
	host := fs.String("host", "", "Ollama server `URL` whose tuned values to write (default $OLLAMA_HOST, else "+ollamahost.Default+")")
	dryRun := fs.Bool("dry-run", false, "print the change as a unified diff and write nothing")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	force := fs.Bool("force", false, "fix a config that is read-only (it stays read-only)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: ctxfit fix CLIENT|all [--dry-run] [--json] [--force] [--host URL]\n\n"+
			"Writes the context that `ctxfit tune` found for each model into CLIENT's config:\n"+
			"contextLength = the tuned value, maxTokens = half of it. Every other byte of the\n"+
			"file stays as it is, and the previous version is kept (`ctxfit undo CLIENT`).\n\n"+
			"CLIENT is one of: %s, or ollama (a copy of each model with the tuned num_ctx, for\n"+
			"clients that send none; see `ctxfit fix ollama -h`), or all: every client found\n"+
			"here, then ollama.\n\n", strings.Join(clientNames(), ", "))
		fs.PrintDefaults()
	}
	pos, err := parseOneArg(fs, args)
	if err != nil {
		return err
	}
	all := strings.EqualFold(pos[0], "all")
	var c clients.Client
	if !all {
		if c, err = clients.Lookup(pos[0]); err != nil {
			fmt.Fprintf(e.stderr, "ctxfit fix: %v (or ollama, or all)\n", err)
			return exitError(2)
		}
	}

	u := e.host(*host)
	store, data, err := e.state()
	if err != nil {
		return err
	}
	if len(tunedModels(data, ollamahost.Key(u))) == 0 {
		fmt.Fprintf(e.stderr, "ctxfit fix: no model is tuned on %s yet, so there is nothing to write; run `ctxfit tune MODEL` first\n", u)
		return exitError(1)
	}
	fixer := newFixer(e, store.Dir(), u)
	fixer.Force = *force
	if !*dryRun {
		cleanLeftovers(ctx, e, fixer)
	}
	if all {
		return fixAll(ctx, e, fixer, tunedTarget(data, u), u, *dryRun, *asJSON)
	}
	rep, err := fixer.Fix(ctx, c, tunedTarget(data, u), *dryRun)
	switch {
	case errors.Is(err, clients.ErrNotInstalled):
		fmt.Fprintf(e.stderr, "ctxfit fix: %v\n", err)
		return exitError(1)
	case err != nil:
		return err
	}

	if *asJSON {
		if rep.Changes == nil {
			rep.Changes = []clients.Change{}
		}
		return writeIndentedJSON(e.stdout, rep)
	}
	printReport(e.stdout, rep)
	for _, w := range rep.Warnings {
		fmt.Fprintf(e.stderr, "warning: %s\n", w)
	}
	return nil
}

// fixAll is `ctxfit fix all`: every client installed on this machine, then
// a derived model on the Ollama side for clients that send no num_ctx. One
// client's broken config does not stop the others; it makes the exit status 1.
func fixAll(ctx context.Context, e *env, fixer *clients.Fixer, t clients.Target, u *url.URL, dryRun, asJSON bool) error {
	var reports []*clients.Report
	failed := false
	for _, c := range clients.All() {
		rep, err := fixer.Fix(ctx, c, t, dryRun)
		switch {
		case errors.Is(err, clients.ErrNotInstalled):
			if !asJSON {
				fmt.Fprintf(e.stdout, "%s: not installed here.\n", c.Name())
			}
			continue
		case err != nil:
			failed = true
			fmt.Fprintf(e.stderr, "ctxfit fix all: %s: %v\n", c.Name(), err)
			continue
		}
		reports = append(reports, rep)
		if !asJSON {
			printReport(e.stdout, rep)
			for _, w := range rep.Warnings {
				fmt.Fprintf(e.stderr, "warning: %s: %s\n", c.Name(), w)
			}
		}
	}
	if asJSON {
		if reports == nil {
			reports = []*clients.Report{}
		}
		if err := writeIndentedJSON(e.stdout, reports); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(e.stdout)
		args := []string{"--host", u.String()}
		if dryRun {
			args = append(args, "--dry-run")
		}
		if err := runFixOllama(ctx, e, args); err != nil {
			return err
		}
	}
	if failed {
		return exitError(1)
	}
	return nil
}

// cleanLeftovers removes what a killed ctxfit left beside the configs and
// among the backups, and says so.
func cleanLeftovers(ctx context.Context, e *env, fixer *clients.Fixer) {
	cleaned, err := fixer.Clean(ctx, clients.All())
	for _, c := range cleaned {
		if c.Kept != "" {
			fmt.Fprintf(e.stderr, "ctxfit: %s, left by a ctxfit that was stopped in the middle of a fix, may hold another program's edit of the config; it is now %s — compare it with the config and keep what you want\n", c.Path, c.Kept)
			continue
		}
		fmt.Fprintf(e.stderr, "ctxfit: removed %s, left by a ctxfit that was stopped in the middle of a fix\n", c.Path)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "ctxfit: %v\n", err)
	}
}

// printReport says what a fix changed, or would change.
func printReport(w io.Writer, rep *clients.Report) {
	switch {
	case len(rep.Changes) == 0 && len(rep.Warnings) > 0:
		// Some entry could not be read or changed: do not claim it is right.
		fmt.Fprintf(w, "%s: nothing changed in %s; the warnings below name the entries ctxfit left alone.\n", rep.Client, rep.Path)
		return
	case len(rep.Changes) == 0:
		fmt.Fprintf(w, "%s: nothing to change in %s; every Ollama model there with a tuned value already asks for it.\n", rep.Client, rep.Path)
		return
	}
	if rep.DryRun {
		io.WriteString(w, rep.Diff)
		fmt.Fprintln(w)
	}
	verb := "fixed"
	if rep.DryRun {
		verb = "would fix"
	}
	fmt.Fprintf(w, "%s: %s %s\n", rep.Client, verb, rep.Path)
	for _, c := range rep.Changes {
		line := fmt.Sprintf("  %s: context %s → %d", c.Label(), tokensOrUnset(c.OldContext), c.NewContext)
		if c.NewMaxTokens != c.OldMaxTokens && c.NewMaxTokens > 0 {
			line += fmt.Sprintf(", max tokens %s → %d", tokensOrUnset(c.OldMaxTokens), c.NewMaxTokens)
		}
		if c.Derived != "" && c.Derived != c.Model {
			line += fmt.Sprintf(", model → %s", c.Derived)
		}
		fmt.Fprintln(w, line)
	}
	seen := map[string]bool{}
	for _, c := range rep.Changes {
		if c.Derived == "" || c.Derived == c.Model || seen[c.Derived] {
			continue
		}
		seen[c.Derived] = true
		if rep.DryRun {
			fmt.Fprintf(w, "  would create %s on the server: %s with num_ctx %d (the client reaches Ollama through /v1, which cannot send num_ctx)\n", c.Derived, c.Model, c.NewContext)
		} else {
			fmt.Fprintf(w, "  created %s on the server: %s with num_ctx %d, which the client now selects\n", c.Derived, c.Model, c.NewContext)
		}
	}
	switch {
	case rep.DryRun:
		fmt.Fprintln(w, "Dry run: nothing was written.")
	case rep.Backup != "":
		fmt.Fprintf(w, "The previous version is in %s; `ctxfit undo %s` restores it.\n", rep.Backup, strings.ToLower(rep.Client))
	}
}

func tokensOrUnset(n int) string {
	if n == 0 {
		return "unset"
	}
	return fmt.Sprint(n)
}

// runUndo is `ctxfit undo CLIENT|all`: it restores CLIENT's config as it
// was before ctxfit's last fix. Through a running daemon the undo sticks:
// auto-fix leaves the file alone until the user changes it. Standalone it
// warns when auto-fix is on.
func runUndo(ctx context.Context, e *env, args []string) error {
	fs := e.flags("undo")
	host := fs.String("host", "", "Ollama server `URL` whose running ctxfit to tell (default $OLLAMA_HOST, else "+ollamahost.Default+")")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: ctxfit undo CLIENT|all [--host URL]\n\n"+
			"Restores CLIENT's config as it was before ctxfit's last fix; run it again to go\n"+
			"further back. It refuses when the file was edited after the fix. A running ctxfit\n"+
			"then leaves the file alone, auto-fix or not, until you change it again.\n\n"+
			"CLIENT is one of: %s, or all.\n", strings.Join(clientNames(), ", "))
		fs.PrintDefaults()
	}
	pos, err := parseOneArg(fs, args)
	if err != nil {
		return err
	}
	var targets []clients.Client
	all := strings.EqualFold(pos[0], "all")
	if all {
		targets = clients.All()
	} else {
		c, err := clients.Lookup(pos[0])
		if err != nil {
			fmt.Fprintf(e.stderr, "ctxfit undo: %v (or all)\n", err)
			return exitError(2)
		}
		targets = []clients.Client{c}
	}
	store, data, err := e.state()
	if err != nil {
		return err
	}
	u := e.host(*host)
	d, hello := e.daemon(ctx, store, u, "undo")
	fixer := &clients.Fixer{Env: clients.NewEnv(e.getenv), StateDir: store.Dir()}
	cleanLeftovers(ctx, e, fixer)
	undone, failed := 0, false
	for _, c := range targets {
		var res *clients.Undone
		if d != nil {
			var out localapi.Undone
			out, err = d.Undo(ctx, c.Name())
			res = &out.Undone
			if localapi.IsCode(err, localapi.CodeNothingToUndo) {
				err = clients.ErrNothingToUndo
			}
		} else {
			res, err = fixer.Undo(ctx, c)
		}
		switch {
		case all && errors.Is(err, clients.ErrNothingToUndo):
			continue
		case err != nil:
			fmt.Fprintf(e.stderr, "ctxfit undo: %v\n", err)
			failed = true
			continue
		}
		undone++
		fmt.Fprintf(e.stdout, "%s: restored %s as it was before ctxfit's fix of %s.\n",
			c.Name(), res.Path, e.local(res.FixedAt).Format(time.DateTime))
	}
	switch {
	case undone == 0 && all && !failed:
		fmt.Fprintln(e.stdout, "ctxfit has made no fix to undo.")
	case undone > 0 && d != nil:
		fmt.Fprintf(e.stdout, "The running ctxfit (pid %d) leaves %s alone until you change %s again; `ctxfit fix CLIENT` writes the tuned values back.\n",
			hello.PID, plural2(undone, "this file", "these files"), plural2(undone, "it", "them"))
	case undone > 0 && data.Settings.AutoFix:
		fmt.Fprintf(e.stderr, "warning: auto-fix is on. No ctxfit answers for %s here, but one running as another user, or started later, puts the tuned values back when the file next changes; `ctxfit set auto-fix off` keeps this version.\n", u.Redacted())
	}
	if failed {
		return exitError(1)
	}
	return nil
}

func plural2(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// clientReport is one client in `ctxfit clients --json`.
type clientReport struct {
	Client    string        `json:"client"`
	Installed bool          `json:"installed"`
	Path      string        `json:"path,omitempty"`
	Error     string        `json:"error,omitempty"`
	Entries   []clients.Ask `json:"entries"`
	// Unsettable says why ctxfit cannot set this client's context in a
	// file (Kilo Code, Roo Code, VS Code's Ollama provider); "" otherwise.
	Unsettable string `json:"unsettable,omitempty"`
}

// runClients is `ctxfit clients [--json] [--host URL]`: it lists the clients
// ctxfit knows, where their config is, and what context each Ollama model
// entry asks for beside the tuned value.
func runClients(ctx context.Context, e *env, args []string) error {
	fs := e.flags("clients")
	host := fs.String("host", "", "Ollama server `URL` (default $OLLAMA_HOST, else "+ollamahost.Default+")")
	asJSON := fs.Bool("json", false, "print the list as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "ctxfit clients: unexpected %q; it takes only flags\n", fs.Arg(0))
		return errUsage
	}
	u := e.host(*host)
	store, data, err := e.state()
	if err != nil {
		return err
	}
	fixer := newFixer(e, store.Dir(), u)
	t := tunedTarget(data, u)

	var reports []clientReport
	for _, c := range clients.All() {
		r := clientReport{Client: c.Name(), Entries: []clients.Ask{}}
		files, asks, err := fixer.Asks(c, t)
		r.Path = files.Config
		switch {
		case errors.Is(err, clients.ErrNotInstalled):
			r.Path = strings.Join(files.Watch, ", ")
		case err != nil:
			r.Installed, r.Error = true, err.Error()
		default:
			r.Installed = true
			r.Entries = append(r.Entries, asks...)
		}
		reports = append(reports, r)
	}
	unsettable := clients.FindUnsettable(clients.NewEnv(e.getenv))
	if *asJSON {
		if len(unsettable) == 0 {
			return writeIndentedJSON(e.stdout, reports)
		}
		return writeIndentedJSON(e.stdout, struct {
			Clients    []clientReport       `json:"clients"`
			Unsettable []clients.Unsettable `json:"unsettable"`
		}{reports, unsettable})
	}
	defer func() {
		for _, u := range unsettable {
			fmt.Fprintf(e.stdout, "%s: %s (%s), so ctxfit cannot set its context; select the copy `ctxfit fix ollama MODEL` creates (MODEL with the tuned num_ctx) in it\n", u.Name, u.Why, u.Where)
		}
	}()
	for _, r := range reports {
		switch {
		case !r.Installed:
			fmt.Fprintf(e.stdout, "%s: not installed (no %s)\n", r.Client, r.Path)
			continue
		case r.Error != "":
			fmt.Fprintf(e.stdout, "%s: %s\n", r.Client, r.Error)
			continue
		}
		fmt.Fprintf(e.stdout, "%s: %s\n", r.Client, r.Path)
		if len(r.Entries) == 0 {
			fmt.Fprintf(e.stdout, "  no Ollama model for %s\n", u)
		}
		differs := false
		for _, a := range r.Entries {
			asks := "its default context"
			if a.Context > 0 {
				asks = fmt.Sprintf("%d tokens", a.Context)
			}
			line := fmt.Sprintf("  %s: asks for %s", askLabel(a), asks)
			if a.MaxTokens > 0 {
				line += fmt.Sprintf(" (maxTokens %d)", a.MaxTokens)
			}
			beside := ""
			if len(a.Beside) > 0 {
				beside = " beside " + strings.Join(a.Beside, ", ")
			}
			switch {
			case a.Tuned == 0:
				line += "; not tuned yet"
			case a.Differs():
				line += fmt.Sprintf("; tuned %d%s", a.Tuned, beside)
				if a.WantMaxTokens > 0 {
					line += fmt.Sprintf(", maxTokens %d", a.WantMaxTokens)
				}
				if a.Derived != "" && a.Derived != a.Model {
					line += fmt.Sprintf(", selecting %s (num_ctx %d built in, for /v1)", a.Derived, a.Tuned)
				}
				if a.TooLarge() {
					line += " (spills)"
				}
				differs = true
			default:
				line += "; tuned" + beside + ", as it should"
			}
			fmt.Fprintln(e.stdout, line)
		}
		if differs {
			fmt.Fprintf(e.stdout, "  Run `ctxfit fix %s` to write the tuned values.\n", strings.ToLower(r.Client))
		}
	}
	return nil
}

func askLabel(a clients.Ask) string {
	if a.Title != "" && a.Title != a.Model {
		return fmt.Sprintf("%s (%s)", a.Title, a.Model)
	}
	return a.Model
}

// tunedTarget returns what a fix aims for: the latest tuned context of each
// model on host; for the models a client runs together, the values of
// their joint tune.
func tunedTarget(d *state.Data, host *url.URL) clients.Target {
	key := ollamahost.Key(host)
	return clients.Target{Host: host, Models: tunedModels(d, key), Derive: ollama.DerivedName,
		Tuned: func(model string) (int, bool) {
			t, ok := d.TunedFor(key, model, "")
			if !ok { // a derived copy runs the base's weights: the base's value holds
				if base, derived := ollama.DerivedBase(model); derived {
					t, ok = d.TunedFor(key, base, "")
				}
			}
			return t.Context, ok && t.Context > 0
		}, ForSet: func(set []clients.Use) (func(string) (int, bool), bool, []string) {
			return forSet(d, key, set)
		}}
}

// newFixer returns the Fixer of the commands and the app: backups under
// ctxfit's state, and the derived models that /v1 clients select created on
// the server at u before their config names them.
func newFixer(e *env, stateDir string, u *url.URL) *clients.Fixer {
	return &clients.Fixer{Env: clients.NewEnv(e.getenv), StateDir: stateDir,
		Derive: func(ctx context.Context, model string, n int) (string, error) {
			ctx, cancel := context.WithTimeout(ctx, deriveTimeout)
			defer cancel()
			return ollama.DeriveModel(ctx, e.client(u), model, n)
		}}
}

// forSet gives the models of set, which a client runs together, the values
// of the joint tune of exactly that set. Without one it leaves them their
// values alone and warns when set[0]'s leaves no room for the others.
func forSet(d *state.Data, key string, set []clients.Use) (func(string) (int, bool), bool, []string) {
	names := make([]string, len(set))
	for i, u := range set {
		names[i] = u.Model
	}
	joint := func(t state.Tuned) func(string) (int, bool) {
		return func(model string) (int, bool) {
			n, ok := t.ContextFor(model)
			if !ok {
				if a, found := d.TunedFor(key, model, ""); found {
					return a.Context, a.Context > 0
				}
			}
			return n, ok && n > 0
		}
	}
	if t, ok := d.TunedSet(key, names); ok {
		return joint(t), true, nil
	}
	// A tune of part of the set still leaves room for that part.
	if t, ok := largestSubset(d, key, names); ok {
		var missing []string
		for _, n := range names {
			if _, in := t.ContextFor(n); !in {
				missing = append(missing, n)
			}
		}
		return joint(t), true, []string{fmt.Sprintf("%s's value %d was tuned beside %s but not beside %s, which this client also runs with it; `ctxfit tune %s` with --with for each finds the value for them all",
			t.Model, t.Context, strings.Join(t.Set()[1:], ", "), strings.Join(missing, ", "), t.Model)}
	}
	alone, ok := d.TunedFor(key, set[0].Model, "")
	if !ok || alone.Context <= 0 {
		return nil, false, nil
	}
	var with []string
	for _, u := range set[1:] {
		w := u.Model
		if u.Context > 0 {
			w = fmt.Sprintf("%s=%d", u.Model, u.Context)
		}
		with = append(with, "--with "+w)
	}
	return nil, false, []string{fmt.Sprintf("%s's tuned value %d was measured with the model alone on the GPU; it leaves no room for %s, which this client runs beside it (each switch unloads one of them). `ctxfit tune %s %s` finds the value for them together",
		set[0].Model, alone.Context, strings.Join(names[1:], ", "), set[0].Model, strings.Join(with, " "))}
}

// largestSubset returns the joint tune on host whose models are all in
// names and include names[0], with the most models, then the newest.
func largestSubset(d *state.Data, key string, names []string) (state.Tuned, bool) {
	var best state.Tuned
	found := false
	for _, t := range d.Tuned {
		if t.Host != key || !t.Joint() {
			continue
		}
		if _, in := t.ContextFor(names[0]); !in {
			continue
		}
		all := true
		for _, m := range t.Set() {
			all = all && slices.ContainsFunc(names, func(n string) bool { return ollama.SameModel(n, m) })
		}
		if all && (!found || len(t.Companions) > len(best.Companions) ||
			len(t.Companions) == len(best.Companions) && t.MeasuredAt.After(best.MeasuredAt)) {
			best, found = t, true
		}
	}
	return best, found
}

// clientArg returns the first positional argument, skipping flags and the
// values of the flags that take one, and the arguments without it.
func clientArg(args []string) (name string, rest []string, ok bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "-") {
			flag := strings.TrimLeft(a, "-")
			if !strings.Contains(flag, "=") && (flag == "host" || flag == "context") {
				i++ // its value follows
			}
			continue
		}
		return a, append(append([]string(nil), args[:i]...), args[i+1:]...), true
	}
	return "", args, false
}

func clientNames() []string {
	var names []string
	for _, c := range clients.All() {
		names = append(names, strings.ToLower(c.Name()))
	}
	return names
}
