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
	host := fs.String("host", "", "Ollama server `URL` whose tuned values to write: host, host:port, :port or http://host:port (default $OLLAMA_HOST, else "+ollamahost.Default+")")
	dryRun := fs.Bool("dry-run", false, "print the change as a unified diff and write nothing")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	force := fs.Bool("force", false, "fix a config that is read-only (it stays read-only)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("name one CLIENT (%s), ollama, or all", strings.Join(clientNames(), ", "))
	}
	all := strings.EqualFold(pos[0], "all")
	var c clients.Client
	if !all {
		if c, err = clients.Lookup(pos[0]); err != nil {
			return usagef("%v (or ollama, or all)", err)
		}
	}

	u, err := e.host(*host)
	if err != nil {
		return err
	}
	store, data, err := e.state()
	if err != nil {
		return err
	}
	if len(tunedModels(data, ollamahost.Key(u), true)) == 0 {
		return failf(1, "no model is tuned on %s yet, so there is nothing to write; run %s first", u, e.cmdline(u, "tune", "MODEL"))
	}
	e.daemonHints(ctx, store, u)
	fixer := newFixer(e, store.Dir(), u)
	fixer.Force = *force
	if !*dryRun {
		cleanLeftovers(ctx, e, fixer)
	}
	t := tunedTarget(data, u, e.serverParallel(u))
	if all {
		return fixAll(ctx, e, fixer, t, u, *dryRun, *asJSON)
	}
	rep, err := fixer.Fix(ctx, c, t, *dryRun)
	switch {
	case errors.Is(err, clients.ErrNotInstalled):
		return failf(1, "%v", err)
	case err != nil:
		return err
	}

	if *asJSON {
		return writeIndentedJSON(e.stdout, fixJSON{Host: u.String(), Clients: []clientFixJSON{reportJSON(rep)}, Ollama: []derivedJSON{}})
	}
	e.printReport(e.stdout, u, rep)
	for _, w := range rep.Warnings {
		fmt.Fprintf(e.stderr, "warning: %s\n", e.reprog(w))
	}
	return nil
}

// fixJSON is `ctxfit fix CLIENT|all|ollama --json`: what each client's fix
// changed, and the derived models on the Ollama side.
type fixJSON struct {
	Host    string          `json:"host"`
	Clients []clientFixJSON `json:"clients"`
	Ollama  []derivedJSON   `json:"ollama"`
}

// clientFixJSON is one client's fix in fixJSON.
type clientFixJSON struct {
	Client    string           `json:"client"`
	Installed bool             `json:"installed"`
	Path      string           `json:"path"`
	Changes   []clients.Change `json:"changes"`
	Warnings  []string         `json:"warnings"`
	DryRun    bool             `json:"dry_run"`
	Diff      string           `json:"diff"`
	Backup    string           `json:"backup"`
	Written   bool             `json:"written"`
	Error     string           `json:"error,omitempty"`
}

func reportJSON(rep *clients.Report) clientFixJSON {
	j := clientFixJSON{Client: rep.Client, Installed: true, Path: rep.Path, Changes: rep.Changes, Warnings: rep.Warnings,
		DryRun: rep.DryRun, Diff: rep.Diff, Backup: rep.Backup, Written: rep.Written}
	if j.Changes == nil {
		j.Changes = []clients.Change{}
	}
	if j.Warnings == nil {
		j.Warnings = []string{}
	}
	return j
}

// fixAll is `ctxfit fix all`: every client installed on this machine, then
// a derived model on the Ollama side for clients that send no num_ctx. One
// client's broken config does not stop the others; it makes the exit status 1.
func fixAll(ctx context.Context, e *env, fixer *clients.Fixer, t clients.Target, u *url.URL, dryRun, asJSON bool) error {
	out := fixJSON{Host: u.String(), Clients: []clientFixJSON{}, Ollama: []derivedJSON{}}
	failed := false
	for _, c := range clients.All() {
		rep, err := fixer.Fix(ctx, c, t, dryRun)
		switch {
		case errors.Is(err, clients.ErrNotInstalled):
			out.Clients = append(out.Clients, clientFixJSON{Client: c.Name(), Changes: []clients.Change{}, Warnings: []string{}, DryRun: dryRun})
			if !asJSON {
				fmt.Fprintf(e.stdout, "%s: not installed here.\n", c.Name())
			}
			continue
		case err != nil:
			failed = true
			out.Clients = append(out.Clients, clientFixJSON{Client: c.Name(), Installed: true, Changes: []clients.Change{}, Warnings: []string{}, DryRun: dryRun, Error: err.Error()})
			if !asJSON {
				fmt.Fprintf(e.stderr, "%s fix all: %s: %v\n", e.progOrDefault(), c.Name(), err)
			}
			continue
		}
		out.Clients = append(out.Clients, reportJSON(rep))
		if !asJSON {
			e.printReport(e.stdout, u, rep)
			for _, w := range rep.Warnings {
				fmt.Fprintf(e.stderr, "warning: %s: %s\n", c.Name(), e.reprog(w))
			}
		}
	}
	var w io.Writer = e.stdout
	if asJSON {
		w = io.Discard
	} else {
		fmt.Fprintln(e.stdout)
	}
	var derived []derivedJSON
	var err error
	if _, data, serr := e.state(); serr == nil && len(tunedModels(data, ollamahost.Key(u), false)) == 0 {
		// Only joint tunes: a copy's context would depend on what runs
		// beside it, so there is none to make.
		fmt.Fprintf(w, "No derived model for clients that send no num_ctx: the models on %s were tuned only beside others (%s tunes one alone).\n", u, e.cmdline(u, "tune", "MODEL"))
	} else {
		derived, err = e.fixOllama(ctx, w, u, nil, 0, dryRun)
	}
	if derived == nil {
		derived = []derivedJSON{}
	}
	out.Ollama = derived
	if err != nil {
		failed = true
		if !asJSON {
			fmt.Fprintf(e.stderr, "%s fix all: ollama: %v\n", e.progOrDefault(), err)
		}
	}
	if asJSON {
		if err := writeIndentedJSON(e.stdout, out); err != nil {
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
func (e *env) printReport(w io.Writer, u *url.URL, rep *clients.Report) {
	switch {
	case len(rep.Changes) == 0 && len(rep.Warnings) > 0:
		// Some entry could not be read or changed: do not claim it is right.
		fmt.Fprintf(w, "%s: nothing changed in %s; the warnings below name the entries ctxfit left alone.\n", rep.Client, rep.Path)
		return
	case len(rep.Changes) == 0:
		fmt.Fprintf(w, "%s: nothing to change in %s: every entry there for a model tuned on %s already asks for its tuned value (entries for other servers are left alone).\n", rep.Client, rep.Path, u)
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
	maxTokens := false
	for _, c := range rep.Changes {
		line := fmt.Sprintf("  %s: context %s → %d", c.Label(), tokensOrUnset(c.OldContext), c.NewContext)
		if c.OldContext == c.NewContext {
			line = fmt.Sprintf("  %s: context %d kept", c.Label(), c.NewContext) // another value changes
		}
		switch {
		case c.NewMaxTokens != c.OldMaxTokens && c.NewMaxTokens > 0:
			share := "half"
			if c.NewMaxTokens < clients.MaxTokens(c.NewContext) {
				share = "a quarter of" // Continue's config.yaml with its CLI on the PATH
			}
			why := "more than " + share + " the context"
			if c.OldMaxTokens == 0 {
				why = share + " the context"
			}
			line += fmt.Sprintf(", max tokens %s → %d (%s)", tokensOrUnset(c.OldMaxTokens), c.NewMaxTokens, why)
			maxTokens = true
		case c.OldMaxTokens > 0:
			line += fmt.Sprintf(", max tokens %d kept (at most half the context)", c.OldMaxTokens)
			maxTokens = true
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
		switch {
		case strings.EqualFold(rep.Client, "continue"):
			fmt.Fprintf(w, "The maxTokens rule: %s.\n", clients.MaxTokensRule)
		case maxTokens:
			fmt.Fprintf(w, "The output rule: %s.\n", clients.OutputLimitRule)
		}
		fmt.Fprintln(w, "Dry run: nothing was written.")
	case rep.Backup != "":
		fmt.Fprintf(w, "The previous version is in %s; %s restores it.\n", rep.Backup, e.cmdline(u, "undo", strings.ToLower(rep.Client)))
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
// warns when auto-fix is on. --dry-run shows the change as fix --dry-run
// does (the same JSON) and writes nothing.
func runUndo(ctx context.Context, e *env, args []string) error {
	fs := e.flags("undo")
	host := fs.String("host", "", hostUsage)
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	dryRun := fs.Bool("dry-run", false, "print the change as a unified diff and write nothing")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("name one CLIENT: %s, or all", strings.Join(clientNames(), ", "))
	}
	var targets []clients.Client
	all := strings.EqualFold(pos[0], "all")
	if all {
		targets = clients.All()
	} else {
		c, err := clients.Lookup(pos[0])
		if err != nil {
			return usagef("%v (or all)", err)
		}
		targets = []clients.Client{c}
	}
	store, data, err := e.state()
	if err != nil {
		return err
	}
	u, err := e.host(*host)
	if err != nil {
		return err
	}
	fixer := &clients.Fixer{Env: clients.NewEnv(e.getenv), StateDir: store.Dir()}
	if *dryRun {
		return undoDryRun(ctx, e, fixer, targets, u, all, *asJSON)
	}
	d, hello := e.daemon(ctx, store, u, "undo")
	cleanLeftovers(ctx, e, fixer)
	undone, failed := []undoJSON{}, []string{}
	for _, c := range targets {
		var res *clients.Undone
		if d != nil {
			var out localapi.Undone
			out, err = d.Undo(ctx, c.Name())
			res = &out.Undone
			var le *localapi.Error
			if localapi.IsCode(err, localapi.CodeNothingToUndo) && errors.As(err, &le) {
				err = clients.NothingToUndo(le.Message) // the daemon's words, not the code's
			}
		} else {
			res, err = fixer.Undo(ctx, c)
		}
		switch {
		case all && errors.Is(err, clients.ErrNothingToUndo):
			continue
		case err != nil:
			failed = append(failed, err.Error())
			if !*asJSON {
				fmt.Fprintf(e.stderr, "%s undo: %v\n", e.progOrDefault(), err)
			}
			continue
		}
		j := undoJSON{Client: c.Name(), Path: res.Path, FixedAt: res.FixedAt}
		if !res.LaterUndone.IsZero() {
			j.LaterUndone = &res.LaterUndone
		}
		undone = append(undone, j)
		if !*asJSON {
			fmt.Fprintf(e.stdout, "%s: restored %s as it was before %s.\n", c.Name(), res.Path, e.undoneFix(res))
		}
	}
	if *asJSON {
		switch {
		case len(failed) > 0:
			return failf(1, "%s", strings.Join(failed, "; "))
		case all:
			return writeIndentedJSON(e.stdout, undoAllJSON{Undone: undone, Running: d != nil})
		}
		return writeIndentedJSON(e.stdout, undone[0])
	}
	switch n := len(undone); {
	case n == 0 && all && len(failed) == 0:
		fmt.Fprintln(e.stdout, "ctxfit has no fix to undo in any client's config.")
	case n > 0 && d != nil:
		client := "all"
		if n == 1 {
			client = strings.ToLower(undone[0].Client)
		}
		fmt.Fprintf(e.stdout, "The running ctxfit (pid %d) leaves %s alone until you change %s again; %s writes the tuned values back.\n",
			hello.PID, plural2(n, "this file", "these files"), plural2(n, "it", "them"), e.cmdline(u, "fix", client))
	case n > 0 && data.Settings.AutoFix:
		fmt.Fprintf(e.stderr, "warning: auto-fix is on. No ctxfit answers for %s here, but one running as another user, or started later, puts the tuned values back when the file next changes; %s keeps this version.\n", u.Redacted(), e.cmdline(nil, "set", "auto-fix", "off"))
	}
	if len(failed) > 0 {
		return exitError(1)
	}
	return nil
}

// undoneFix names the fix an undo takes back: "ctxfit's fix of TIME", and
// when an earlier undo took back a later fix, says that this one goes
// further back.
func (e *env) undoneFix(u *clients.Undone) string {
	s := "ctxfit's fix of " + e.local(u.FixedAt).Format(time.DateTime)
	if !u.LaterUndone.IsZero() {
		s = fmt.Sprintf("ctxfit's earlier fix of %s (its later fix, of %s, was undone already; the file still held exactly what the earlier one wrote)",
			e.local(u.FixedAt).Format(time.DateTime), e.local(u.LaterUndone).Format(time.DateTime))
	}
	return s
}

// undoDryRun is `ctxfit undo CLIENT|all --dry-run`: what each undo would
// restore, as a diff and the values it changes back, in the shape of `fix
// --dry-run` (and its JSON). It writes nothing, so it asks no daemon.
func undoDryRun(ctx context.Context, e *env, fixer *clients.Fixer, targets []clients.Client, u *url.URL, all, asJSON bool) error {
	out := fixJSON{Host: u.String(), Clients: []clientFixJSON{}, Ollama: []derivedJSON{}}
	failed, shown := false, 0
	t := clients.Target{Host: u}
	for _, c := range targets {
		res, err := fixer.UndoDryRun(ctx, c)
		switch {
		case all && errors.Is(err, clients.ErrNothingToUndo):
			continue
		case err != nil:
			failed = true
			path := ""
			if files, ferr := c.Files(fixer.Env); ferr == nil {
				path = files.Config
			}
			out.Clients = append(out.Clients, clientFixJSON{Client: c.Name(), Installed: path != "", Path: path, Changes: []clients.Change{}, Warnings: []string{},
				DryRun: true, Error: clients.Redact(err.Error())})
			if !asJSON {
				fmt.Fprintf(e.stderr, "%s undo: %v\n", e.progOrDefault(), err)
			}
			continue
		}
		changes := fixer.UndoChanges(c, res, t)
		if changes == nil {
			changes = []clients.Change{}
		}
		out.Clients = append(out.Clients, clientFixJSON{Client: c.Name(), Installed: true, Path: res.Path, Changes: changes, Warnings: []string{},
			DryRun: true, Diff: res.Diff, Backup: res.Backup})
		shown++
		if asJSON {
			continue
		}
		io.WriteString(e.stdout, res.Diff)
		fmt.Fprintf(e.stdout, "\n%s: would restore %s from %s, as it was before %s\n", c.Name(), res.Path, res.Backup, e.undoneFix(res))
		for _, ch := range changes {
			line := fmt.Sprintf("  %s: context %s → %s", ch.Label(), tokensOrUnset(ch.OldContext), tokensOrUnset(ch.NewContext))
			if ch.OldMaxTokens != ch.NewMaxTokens {
				line += fmt.Sprintf(", max tokens %s → %s", tokensOrUnset(ch.OldMaxTokens), tokensOrUnset(ch.NewMaxTokens))
			}
			if ch.Derived != "" {
				line += ", model → " + ch.Derived
			}
			fmt.Fprintln(e.stdout, line)
		}
	}
	if asJSON {
		if err := writeIndentedJSON(e.stdout, out); err != nil {
			return err
		}
	} else if len(out.Clients) == 0 {
		fmt.Fprintln(e.stdout, "ctxfit has no fix to undo in any client's config.")
	} else if shown > 0 {
		fmt.Fprintln(e.stdout, "Dry run: nothing was written.")
	}
	if failed {
		return exitError(1)
	}
	return nil
}

// undoJSON is `ctxfit undo CLIENT --json`, and each entry of `undo all`'s.
type undoJSON struct {
	Client  string    `json:"client"`
	Path    string    `json:"path"`
	FixedAt time.Time `json:"fixed_at"` // when the fix that was undone was made
	// LaterUndone is when ctxfit's later fix, undone before, was made: this
	// undo went one fix further back. Absent for the last fix.
	LaterUndone *time.Time `json:"later_undone,omitempty"`
}

// undoAllJSON is `ctxfit undo all --json`.
type undoAllJSON struct {
	Undone  []undoJSON `json:"undone"`  // empty when ctxfit had made no fix
	Running bool       `json:"running"` // a running ctxfit was told, and leaves the files alone
}

// clientsJSON is `ctxfit clients --json`.
type clientsJSON struct {
	Host    string         `json:"host"`
	Clients []clientReport `json:"clients"`
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
	Path      string        `json:"path"`  // the config file; "" when not installed
	Paths     []string      `json:"paths"` // every file ctxfit looks at for it
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
	host := fs.String("host", "", hostUsage)
	asJSON := fs.Bool("json", false, "print the list as one JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected %q; clients takes only flags", fs.Arg(0))
	}
	u, err := e.host(*host)
	if err != nil {
		return err
	}
	store, data, err := e.state()
	if err != nil {
		return err
	}
	e.daemonHints(ctx, store, u)
	fixer := newFixer(e, store.Dir(), u)
	t := tunedTarget(data, u, e.serverParallel(u))

	reports := []clientReport{}
	for _, c := range clients.All() {
		r := clientReport{Client: c.Name(), Entries: []clients.Ask{}, Paths: []string{}}
		files, asks, err := fixer.Asks(c, t)
		r.Path = files.Config
		r.Paths = append(append(r.Paths, files.Watch...), files.Overrides...)
		switch {
		case errors.Is(err, clients.ErrNotInstalled):
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
		// Unsettable clients are entries of the same list, so that the
		// output keeps one shape.
		for _, un := range unsettable {
			reports = append(reports, clientReport{Client: un.Name, Installed: true, Paths: []string{un.Where},
				Entries: []clients.Ask{}, Unsettable: un.Why})
		}
		return writeIndentedJSON(e.stdout, clientsJSON{Host: u.String(), Clients: reports})
	}
	defer func() {
		for _, u := range unsettable {
			fmt.Fprintf(e.stdout, "%s: %s (%s), so ctxfit cannot set its context; select the copy `ctxfit fix ollama MODEL` creates (MODEL with the tuned num_ctx) in it\n", u.Name, u.Why, u.Where)
		}
	}()
	for _, r := range reports {
		switch {
		case !r.Installed:
			fmt.Fprintf(e.stdout, "%s: not installed (no %s)\n", r.Client, strings.Join(r.Paths, ", "))
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
			if a.NotNumber != "" {
				fmt.Fprintf(e.stdout, "  %s: %s, not a whole number of tokens; fix leaves it alone: write a number there, or remove the key\n", askLabel(a), a.NotNumber)
				continue
			}
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
				if a.Kept() {
					line += ", its smaller context kept"
				}
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
			case a.Kept():
				line += fmt.Sprintf("; tuned %d%s, its smaller context kept", a.Tuned, beside)
			default:
				line += "; tuned" + beside + ", as it should"
			}
			fmt.Fprintln(e.stdout, line)
		}
		if differs {
			fmt.Fprintf(e.stdout, "  Run %s to write the tuned values.\n", e.cmdline(u, "fix", strings.ToLower(r.Client)))
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

// tunedTarget returns what a fix aims for: the tuned context of each model
// on host that applies to the server's parallel slots (0: unknown; the
// latest then), as status shows it; for the models a client runs together,
// the values of their joint tune.
func tunedTarget(d *state.Data, host *url.URL, parallel int) clients.Target {
	key := ollamahost.Key(host)
	return clients.Target{Host: host, Models: tunedModels(d, key, true), Derive: ollama.DerivedName,
		Tuned: func(model string) (int, bool) {
			t, ok := d.TunedForParallel(key, model, "", parallel)
			if !ok { // a derived copy runs the base's weights: the base's value holds
				if base, derived := ollama.DerivedBase(model); derived {
					t, ok = d.TunedForParallel(key, base, "", parallel)
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
