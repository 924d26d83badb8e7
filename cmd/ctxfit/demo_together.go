package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/tailscale/hujson"

	"github.com/ctxfit/ctxfit/internal/gpusim"
)

// The scene of `ctxfit demo --together`: Continue on a 24 GB GPU with a
// chat model whose context was tuned alone, so that it fills the GPU, and
// an autocomplete model beside it. Every switch unloads one of them.
const (
	togetherGPU       = "24GB"
	togetherChatModel = "llama3.1:8b-instruct-fp16"
	togetherACModel   = "qwen2.5-coder:7b"
	togetherACContext = 4096
)

func runDemoTogether(ctx context.Context, e *env, o runOptions, listen string, every time.Duration) error {
	gpu, _ := gpusim.LookupGPU(togetherGPU)
	sim := gpusim.New(gpusim.Config{GPU: gpu, LoadDelay: 400 * time.Millisecond})
	ln, err := net.Listen("tcp", listen)
	if errors.Is(err, syscall.EADDRINUSE) || isAddrInUse(err) {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return fmt.Errorf("start the simulated Ollama on %s (choose another with --listen): %w", listen, err)
	}
	others := &othersLoading{sim: sim}
	srv := &http.Server{Handler: others, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	// The chat model's context as a tune of it alone finds it.
	alone := 0
	for c := 1024; c <= 131072; c += 1024 {
		if size, vram, _ := sim.Placement(togetherChatModel, c, 1); size == vram {
			alone = c
		}
	}
	src := fmt.Sprintf(`{
  // Written by ctxfit demo --together: the chat model's context was tuned alone.
  "models": [
    {"title": "Chat", "provider": "ollama", "model": %q, "apiBase": %q, "contextLength": %d},
  ],
  "tabAutocompleteModel": {"title": "Autocomplete", "provider": "ollama", "model": %q, "apiBase": %q, "contextLength": %d},
}
`, togetherChatModel, base, alone, togetherACModel, base, togetherACContext)
	de, config, err := demoContinue(e, "config.json", src)
	if err != nil {
		return err
	}
	defer os.RemoveAll(filepath.Dir(config))
	u, err := url.Parse(base)
	if err != nil {
		return err
	}

	fmt.Fprintf(e.stdout, `ctxfit demo --together: a simulated Ollama with a 24 GB GPU listens at %[1]s
Continue's config (%[2]s) uses %[3]s for chat at contextLength %[4]d,
the value a tune of it alone finds, and %[5]s for autocomplete at %[6]d.
A simulated user switches between them every %[7]s: the two do not fit
together, so each switch unloads the other, and ctxfit reports it.

Try, in another terminal:
  %[8]s
  %[9]s
  %[10]s
and both models stay loaded, 100%% on the GPU.

Press Ctrl-C to stop.

`, base, config, togetherChatModel, alone, togetherACModel, togetherACContext, every,
		de.hint(u, "tune", togetherChatModel, "--with", fmt.Sprintf("%s=%d", togetherACModel, togetherACContext)),
		de.hint(u, "fix", "continue"), de.hint(u, "status"))

	user := api.NewClient(u, &http.Client{Transport: demoUserTransport{}})
	go demoUser(ctx, user, others, config, every)
	o.host, o.hosts = base, nil // the simulator alone, whatever --host said
	return de.watch(ctx, o)
}

// demoUserHeader marks the simulated user's requests.
const demoUserHeader = "X-Ctxfit-Demo-User"

// demoUserTransport adds demoUserHeader to every request.
type demoUserTransport struct{}

func (demoUserTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(demoUserHeader, "1")
	return http.DefaultTransport.RoundTrip(r)
}

// othersLoading serves the simulator and notes when someone other than the
// simulated user (ctxfit tune) last asked for a model, so that the user
// waits for the tune as a person would.
type othersLoading struct {
	sim  *gpusim.Server
	mu   sync.Mutex
	last time.Time
}

func (o *othersLoading) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.Header.Get(demoUserHeader) == "" &&
		(r.URL.Path == "/api/generate" || r.URL.Path == "/api/chat") {
		o.mu.Lock()
		o.last = time.Now()
		o.mu.Unlock()
	}
	o.sim.ServeHTTP(w, r)
}

// busy reports whether someone else loaded a model in the last few seconds.
func (o *othersLoading) busy() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return time.Since(o.last) < 5*time.Second
}

// demoUser alternates a chat request and an autocomplete request every
// interval until ctx ends, each with the contextLength Continue's config
// holds at that moment, as Continue sends it. It waits while others load
// models.
func demoUser(ctx context.Context, client *api.Client, others *othersLoading, config string, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	stream := false
	for i := 0; ; i++ {
		for others.busy() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
		chat, ac := demoContexts(config)
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		if i%2 == 0 {
			client.Chat(rctx, &api.ChatRequest{Model: togetherChatModel, Stream: &stream,
				Messages: []api.Message{{Role: "user", Content: "Explain this function."}},
				Options:  map[string]any{"num_ctx": chat, "num_predict": 16}}, func(api.ChatResponse) error { return nil })
		} else {
			client.Generate(rctx, &api.GenerateRequest{Model: togetherACModel, Stream: &stream, Prompt: "func main() {",
				Options: map[string]any{"num_ctx": ac, "num_predict": 8}}, func(api.GenerateResponse) error { return nil })
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// demoContexts reads the chat and autocomplete contextLength from the demo's
// Continue config; a value it cannot read is 8192, Continue's default.
func demoContexts(config string) (chat, ac int) {
	chat, ac = 8192, 8192
	src, err := os.ReadFile(config)
	if err != nil {
		return chat, ac
	}
	v, err := hujson.Parse(src)
	if err != nil {
		return chat, ac
	}
	v.Standardize()
	var cfg struct {
		Models []struct {
			ContextLength json.Number `json:"contextLength"`
		} `json:"models"`
		Tab struct {
			ContextLength json.Number `json:"contextLength"`
		} `json:"tabAutocompleteModel"`
	}
	if json.Unmarshal(v.Pack(), &cfg) != nil {
		return chat, ac
	}
	if len(cfg.Models) > 0 {
		if n, err := strconv.Atoi(cfg.Models[0].ContextLength.String()); err == nil && n > 0 {
			chat = n
		}
	}
	if n, err := strconv.Atoi(cfg.Tab.ContextLength.String()); err == nil && n > 0 {
		ac = n
	}
	return chat, ac
}
