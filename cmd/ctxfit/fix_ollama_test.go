package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/ctxfit/ctxfit/internal/gpusim"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/state"
)

const fixOllamaModel = "llama3.1:8b-instruct-fp16"

// fixOllama runs `ctxfit fix ollama args...` in-process as main would, and
// returns the exit status and output with the server's URL replaced by HOST.
func (c *cli) fixOllama(u string, args ...string) (code int, stdout, stderr string) {
	code, stdout, stderr = c.run(append([]string{"fix", "ollama"}, args...)...)
	return code, strings.ReplaceAll(stdout, u, "HOST"), strings.ReplaceAll(stderr, u, "HOST")
}

// tune records a tuned context for model on the server at u, as
// `ctxfit tune` would.
func (c *cli) tune(u, model, digest string, context int) {
	c.t.Helper()
	err := state.OpenStore(c.vars[state.StateDirEnv]).Update(func(d *state.Data) error {
		d.PutTuned(state.Tuned{Host: ollamahost.Key(ollamahost.Parse(u)), Model: model, Digest: digest, Parallel: 1,
			Context: context, Step: 1024, MeasuredAt: time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)})
		return nil
	})
	if err != nil {
		c.t.Fatal(err)
	}
}

// numCtxOf returns num_ctx in model's parameters on the server at u, or -1
// when the server has no such model.
func numCtxOf(t *testing.T, u, model string) int {
	t.Helper()
	show, err := ollama.NewClient(ollamahost.Parse(u)).Show(context.Background(), &api.ShowRequest{Model: model})
	if err != nil {
		return -1
	}
	n, _ := ollama.ParamNumCtx(show.Parameters)
	return n
}

func TestFixOllama(t *testing.T) {

	_, u := startSim(t, "mac32", nil)
	c := newCLI(t, map[string]string{"OLLAMA_HOST": u})
	c.tune(u, fixOllamaModel, "", 24576)

	code, out, errOut := c.fixOllama(u, fixOllamaModel)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	golden(t, "fix_ollama_created.txt", out)
	if n := numCtxOf(t, u, fixOllamaModel+"-ctx24k"); n != 24576 {
		t.Errorf("num_ctx of the derived model = %d, want 24576", n)
	}

	code, out, errOut = c.fixOllama(u, fixOllamaModel)
	if code != 0 {
		t.Fatalf("second run: exit %d: %s", code, errOut)
	}
	golden(t, "fix_ollama_again.txt", out)
}

func TestFixOllamaContextFlag(t *testing.T) {
	_, u := startSim(t, "mac32", nil)
	c := newCLI(t, nil)
	// The flags may follow the model, and --context needs no tune.
	code, out, errOut := c.fixOllama(u, fixOllamaModel, "--context", "16000", "--host", u)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	golden(t, "fix_ollama_context.txt", out)
	if n := numCtxOf(t, u, fixOllamaModel+"-ctx16000"); n != 16000 {
		t.Errorf("num_ctx = %d, want 16000", n)
	}
}

func TestFixOllamaEveryTunedModel(t *testing.T) {
	_, u := startSim(t, "mac32", nil)
	c := newCLI(t, map[string]string{"OLLAMA_HOST": u})
	c.tune(u, fixOllamaModel, "", 24576)
	c.tune(u, "qwen2.5:0.5b", "", 32768)
	c.tune("http://elsewhere:11434", "gemma2:9b", "", 8192) // another server's tune

	code, out, errOut := c.fixOllama(u, "--dry-run")
	if code != 0 || numCtxOf(t, u, "qwen2.5:0.5b-ctx32k") != -1 {
		t.Fatalf("dry run: exit %d, %s; or it created a model", code, errOut)
	}
	for _, want := range []string{"Would create llama3.1:8b-instruct-fp16-ctx24k on HOST", "Would create qwen2.5:0.5b-ctx32k on HOST"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}

	code, out, errOut = c.fixOllama(u)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "gemma2") {
		t.Errorf("fixed a model tuned on another server:\n%s", out)
	}
	if a, b := numCtxOf(t, u, fixOllamaModel+"-ctx24k"), numCtxOf(t, u, "qwen2.5:0.5b-ctx32k"); a != 24576 || b != 32768 {
		t.Errorf("num_ctx of the copies = %d and %d, want 24576 and 32768", a, b)
	}
}

func TestFixOllamaStaleTune(t *testing.T) {
	_, u := startSim(t, "mac32", nil)
	c := newCLI(t, map[string]string{"OLLAMA_HOST": u})
	c.tune(u, fixOllamaModel, "0123abcd", 24576) // tuned for a digest the server no longer has
	code, out, errOut := c.fixOllama(u, fixOllamaModel)
	if code != 0 || !strings.Contains(out, "was pulled again after the tune; run `ctxfit tune "+fixOllamaModel+" --host HOST`") {
		t.Errorf("exit %d, stdout %q, stderr %q; want a note to tune again", code, out, errOut)
	}
}

func TestFixOllamaErrors(t *testing.T) {
	sim, u := startSim(t, "mac32", nil)
	tests := []struct {
		name  string
		args  []string
		fault gpusim.Fault
		code  int
		want  string // in stderr
	}{
		{"not tuned", []string{fixOllamaModel}, gpusim.Fault{}, 1, "has no tuned context on HOST; run `ctxfit tune llama3.1:8b-instruct-fp16 --host HOST` first, or give --context N"},
		{"nothing tuned", nil, gpusim.Fault{}, 1, "no model is tuned on HOST yet"},
		{"missing model", []string{"mistral:7b", "--context", "8192"}, gpusim.Fault{}, 1, "ollama pull mistral:7b"},
		{"server down", []string{fixOllamaModel, "--context", "8192"}, gpusim.Fault{Down: true}, 1, "cannot reach Ollama at HOST"},
		{"server error", []string{fixOllamaModel, "--context", "8192"}, gpusim.Fault{Status: 500}, 1, "answered HTTP 500"},
		{"negative context", []string{fixOllamaModel, "--context", "-1"}, gpusim.Fault{}, 2, "not a number of tokens"},
		{"context without model", []string{"--context", "8192"}, gpusim.Fault{}, 2, "--context needs a MODEL"},
		{"bad flag", []string{fixOllamaModel, "--contexts", "8192"}, gpusim.Fault{}, 2, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim.SetFault(tt.fault)
			defer sim.SetFault(gpusim.Fault{})
			c := newCLI(t, map[string]string{"OLLAMA_HOST": u})
			code, out, errOut := c.fixOllama(u, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errOut, tt.code, tt.want)
			}
		})
	}
}

// TestFixOllamaThroughMain runs `ctxfit fix ollama` as a user types it,
// with --host before the model.
func TestFixOllamaThroughMain(t *testing.T) {
	_, u := startSim(t, "mac32", nil)
	c := newCLI(t, nil)
	code, out, errOut := c.run("fix", "--host", u, "ollama", "qwen2.5:0.5b", "--context", "8192")
	if code != 0 || !strings.Contains(out, "Created qwen2.5:0.5b-ctx8k on "+u) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if n := numCtxOf(t, u, "qwen2.5:0.5b-ctx8k"); n != 8192 {
		t.Errorf("num_ctx = %d, want 8192", n)
	}
}
