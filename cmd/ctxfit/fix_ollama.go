package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/state"
)

// deriveTimeout bounds the creation of one derived model. Ollama reads the
// base's GGUF header and writes a manifest: seconds, even for large models.
const deriveTimeout = 5 * time.Minute

// runFixOllama is `ctxfit fix ollama [MODEL...] [--context N] [--host URL]
// [--dry-run] [--json]`: for clients that send no num_ctx (Dify, Open
// WebUI, the OpenAI-compatible /v1 endpoints) it creates a copy of each
// model whose Modelfile sets num_ctx to the tuned value, and says how to
// use it. With no MODEL it does so for every model tuned on the server.
// --undo MODEL removes MODEL's copies.
func runFixOllama(ctx context.Context, e *env, args []string) error {
	fs := e.flags("fix ollama")
	host := fs.String("host", "", hostUsage)
	numCtx := fs.Int("context", 0, "the context `N` to set (default: the tuned value for each model on this server)")
	dryRun := fs.Bool("dry-run", false, "say what would be created or removed, and change nothing")
	undo := fs.Bool("undo", false, "remove the copies ctxfit made of each MODEL instead")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	models, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *numCtx < 0 {
		return &usageError{msg: fmt.Sprintf("--context %d is not a number of tokens; give one such as --context 8192", *numCtx), sub: "ollama"}
	}
	if *numCtx > 0 && len(models) == 0 {
		return &usageError{msg: "--context needs a MODEL to apply to", sub: "ollama"}
	}
	if *undo && (len(models) == 0 || *numCtx > 0) {
		return &usageError{msg: "--undo takes the MODEL whose copies to remove, and no --context", sub: "ollama"}
	}
	u, err := e.host(*host)
	if err != nil {
		return err
	}
	var w io.Writer = e.stdout
	if *asJSON {
		w = io.Discard
	}
	var derived []derivedJSON
	if *undo {
		derived, err = e.unfixOllama(ctx, w, u, models, *dryRun)
	} else {
		derived, err = e.fixOllama(ctx, w, u, models, *numCtx, *dryRun)
	}
	if *asJSON {
		out := fixJSON{Host: u.String(), Clients: []clientFixJSON{}, Ollama: derived}
		if out.Ollama == nil {
			out.Ollama = []derivedJSON{}
		}
		if derived == nil && err != nil {
			return err
		}
		if werr := writeIndentedJSON(e.stdout, out); werr != nil {
			return werr
		}
		if err != nil {
			return exitError(1)
		}
		return nil
	}
	return err
}

// derivedJSON is one derived model in fixJSON.
type derivedJSON struct {
	Model   string `json:"model"`   // the base model
	Derived string `json:"derived"` // its copy
	Context int    `json:"context"` // the copy's num_ctx
	// Action is "created", "exists" (already up to date), "would create",
	// "removed", "would remove", or "failed" with Error set.
	Action string `json:"action"`
	Error  string `json:"error,omitempty"`
}

// fixOllama creates the derived models of models on the server at u (every
// tuned model when models is empty), telling w, and returns what it did. An
// error stops nothing: each model is tried, and the error says what failed.
func (e *env) fixOllama(ctx context.Context, w io.Writer, u *url.URL, models []string, numCtx int, dryRun bool) ([]derivedJSON, error) {
	hostKey := ollamahost.Key(u)
	client := e.client(u)
	_, data, err := e.state()
	if err != nil {
		return nil, err
	}

	lctx, cancel := context.WithTimeout(ctx, ollama.RequestTimeout)
	list, err := client.List(lctx)
	cancel()
	if err != nil {
		return nil, failf(1, "%s", unreachable(u, err))
	}
	if len(models) == 0 {
		// A model tuned only beside others has no context of its own for
		// a copy: it depends on what runs beside it.
		models = tunedModels(data, hostKey, false)
		if len(models) == 0 {
			return nil, failf(1, "no model is tuned on %s yet; run %s first, or give MODEL and --context N", u, e.cmdline(u, "tune", "MODEL"))
		}
	}

	out := []derivedJSON{}
	var failed []string
	parallel := e.serverParallel(u)
	for i, model := range models {
		if i > 0 {
			fmt.Fprintln(w)
		}
		p := derivePlan{env: e, host: u, model: model, context: numCtx}
		if p.context == 0 {
			t, ok := data.TunedForParallel(hostKey, model, digestOf(list, model), parallel)
			if !ok {
				msg := fmt.Sprintf("%s has no tuned context on %s; run %s first, or give --context N", model, u, e.cmdline(u, "tune", model))
				fmt.Fprintf(e.stderr, "%s fix ollama: %s\n", e.progOrDefault(), msg)
				out = append(out, derivedJSON{Model: model, Action: "failed", Error: msg})
				failed = append(failed, model)
				continue
			}
			p.context, p.tuned = t.Context, &t
			if d := digestOf(list, model); d != "" && t.Digest != "" && d != t.Digest {
				p.stale = true
			}
		}
		d, err := p.run(ctx, client, w, dryRun)
		if err != nil {
			fmt.Fprintf(e.stderr, "%s fix ollama: %v\n", e.progOrDefault(), err)
			d.Action, d.Error = "failed", err.Error()
			failed = append(failed, model)
		}
		out = append(out, d)
	}
	if len(failed) > 0 {
		return out, exitError(1) // each failure was said above
	}
	return out, nil
}

// unfixOllama removes the derived models of models from the server at u.
func (e *env) unfixOllama(ctx context.Context, w io.Writer, u *url.URL, models []string, dryRun bool) ([]derivedJSON, error) {
	client := e.client(u)
	lctx, cancel := context.WithTimeout(ctx, ollama.RequestTimeout)
	list, err := client.List(lctx)
	cancel()
	if err != nil {
		return nil, failf(1, "%s", unreachable(u, err))
	}
	out := []derivedJSON{}
	failed := false
	for _, model := range models {
		found := false
		for _, m := range list.Models {
			if !ollama.DerivedFrom(m.Name, model) {
				continue
			}
			found = true
			d := derivedJSON{Model: model, Derived: m.Name, Action: "would remove"}
			if n, ok := modelNumCtx(ctx, client, m.Name); ok {
				d.Context = n
			}
			if dryRun {
				fmt.Fprintf(w, "Would remove %s from %s.\n", m.Name, u)
				out = append(out, d)
				continue
			}
			dctx, cancel := context.WithTimeout(ctx, ollama.RequestTimeout)
			err := client.Delete(dctx, &api.DeleteRequest{Model: m.Name})
			cancel()
			if err != nil {
				d.Action, d.Error = "failed", err.Error()
				fmt.Fprintf(e.stderr, "%s fix ollama: remove %s: %v\n", e.progOrDefault(), m.Name, err)
				failed = true
			} else {
				d.Action = "removed"
				fmt.Fprintf(w, "Removed %s from %s; %s itself is untouched.\n", m.Name, u, model)
			}
			out = append(out, d)
		}
		if !found {
			fmt.Fprintf(w, "%s has no copy made by ctxfit on %s (no %s).\n", model, u, derivedPattern(model))
		}
	}
	if failed {
		return out, exitError(1)
	}
	return out, nil
}

// derivedPattern shows the names of model's copies: "llama3.1:8b-ctx*k".
func derivedPattern(model string) string {
	n, err := ollama.DerivedName(model, 1024)
	if err != nil {
		return model + "-ctx*k"
	}
	return strings.Replace(n, "ctx1k", "ctx*k", 1)
}

// modelNumCtx returns the num_ctx in model's Modelfile.
func modelNumCtx(ctx context.Context, client *api.Client, model string) (int, bool) {
	ctx, cancel := context.WithTimeout(ctx, ollama.RequestTimeout)
	defer cancel()
	show, err := client.Show(ctx, &api.ShowRequest{Model: model})
	if err != nil {
		return 0, false
	}
	return ollama.ParamNumCtx(show.Parameters)
}

// parseOneArg parses args like parseInterspersed and requires exactly one
// argument besides the flags, showing the usage otherwise.
func parseOneArg(fs *flag.FlagSet, args []string) ([]string, error) {
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) != 1 {
		fs.Usage()
		return nil, errUsage
	}
	return pos, nil
}

// parseInterspersed parses flags that may come before, between or after the
// positional arguments (`fix ollama MODEL --context 8192`), and returns the
// positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parse(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// derivePlan is one derived model to make.
type derivePlan struct {
	env     *env
	host    *url.URL
	model   string
	context int
	tuned   *state.Tuned // where context came from; nil when --context gave it
	stale   bool         // the model was pulled again after the tune
}

func (p derivePlan) run(ctx context.Context, client *api.Client, w io.Writer, dryRun bool) (derivedJSON, error) {
	d := derivedJSON{Model: p.model, Context: p.context}
	name, err := ollama.DerivedName(p.model, p.context)
	if err != nil {
		return d, err
	}
	d.Derived = name
	source := fmt.Sprintf("--context %d", p.context)
	if p.tuned != nil {
		source = fmt.Sprintf("the context that stays 100%% on the GPU, tuned %s", p.env.local(p.tuned.MeasuredAt).Format(time.DateOnly))
	}
	if dryRun {
		d.Action = "would create"
		fmt.Fprintf(w, "Would create %s on %s: %s with num_ctx %d (%s).\n", name, p.host, p.model, p.context, source)
		return d, nil
	}
	before := modifiedAt(ctx, client, name)

	dctx, cancel := context.WithTimeout(ctx, deriveTimeout)
	defer cancel()
	name, err = ollama.DeriveModel(dctx, client, p.model, p.context)
	if err != nil {
		if errors.Is(dctx.Err(), context.DeadlineExceeded) {
			return d, fmt.Errorf("Ollama at %s took more than %s to create %s: %w", p.host, deriveTimeout, name, err)
		}
		return d, err
	}
	verb := "Created"
	d.Action = "created"
	if b := before; !b.IsZero() && b.Equal(modifiedAt(ctx, client, name)) {
		verb, d.Action = "Already there:", "exists"
	}
	fmt.Fprintf(w, "%s %s on %s: %s with num_ctx %d (%s).\n", verb, name, p.host, p.model, p.context, source)
	if p.stale {
		fmt.Fprintf(w, "%s was pulled again after the tune; run %s to check the value still fits.\n", p.model, p.env.cmdline(p.host, "tune", p.model))
	}
	p.env.writeDerivedUsage(w, p.host, p.model, name, p.context)
	return d, nil
}

// writeDerivedUsage tells the user where the derived model helps and how to
// pick it.
func (e *env) writeDerivedUsage(w io.Writer, host *url.URL, model, name string, numCtx int) {
	base := strings.TrimSuffix(host.String(), "/")
	env := ""
	if !ollamahost.Same(host, ollamahost.Parse("")) {
		env = "OLLAMA_HOST=" + base + " "
	}
	fmt.Fprintf(w, `It shares the original's weights, so it takes no extra disk space. Select it where a client sends no num_ctx:
  Open WebUI   pick %[1]s, and leave Context Length (num_ctx) at Default
  Dify         add %[1]s to the Ollama model provider; in the app's model settings
               leave "Size of context window" unchecked, so that the model's own %[2]d applies
  /v1 clients  OpenAI-compatible clients cannot send num_ctx: use base URL %[3]s/v1 and model %[1]s
Clients that send num_ctx themselves (Continue, Zed, aider, Cline) override it; %[5]s fixes their configs.
Remove it with: %[6]s (or %[4]sollama rm %[1]s)
`, name, numCtx, base, env, e.cmdline(host, "fix", "all"), e.cmdline(host, "fix", "ollama", "--undo", model))
}

// modifiedAt returns when model was last created or pulled on the server,
// or the zero time when the server does not have it.
func modifiedAt(ctx context.Context, client *api.Client, model string) time.Time {
	ctx, cancel := context.WithTimeout(ctx, ollama.RequestTimeout)
	defer cancel()
	show, err := client.Show(ctx, &api.ShowRequest{Model: model})
	if err != nil {
		return time.Time{}
	}
	return show.ModifiedAt
}

// tunedModels returns the models tuned on host, one name each, in the
// store's order; with joint false only those tuned alone.
func tunedModels(d *state.Data, host string, joint bool) []string {
	var out []string
	for _, t := range d.Tuned {
		if t.Host != host || (t.Joint() && !joint) {
			continue
		}
		seen := false
		for _, m := range out {
			seen = seen || ollama.SameModel(m, t.Model)
		}
		if !seen {
			out = append(out, t.Model)
		}
	}
	return out
}

// digestOf returns model's digest in /api/tags, or "".
func digestOf(list *api.ListResponse, model string) string {
	for _, m := range list.Models {
		if ollama.SameModel(m.Name, model) {
			return m.Digest
		}
	}
	return ""
}

// unreachable says why the server did not answer, and what to do.
func unreachable(u *url.URL, err error) string {
	var se api.StatusError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("Ollama at %s did not answer in time; is the server overloaded, or is this the right address?", u)
	case errors.As(err, &se):
		return fmt.Sprintf("Ollama at %s answered HTTP %d to /api/tags (%s); check --host or OLLAMA_HOST", u, se.StatusCode, strings.TrimSpace(se.ErrorMessage+" "+se.Status))
	}
	return fmt.Sprintf("cannot reach Ollama at %s: %v. Start it with `ollama serve`, or point ctxfit at it with --host or OLLAMA_HOST", u, err)
}
