package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	neturl "net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ctxfit/ctxfit/internal/gpusim"
)

// The demo's scene: the brief's story of a 32 GB Mac whose model spills
// because a client asks for the model's whole trained context.
const (
	demoGPU     = "mac32"
	demoModel   = "llama3.1:8b-instruct-fp16"
	demoContext = 131072
	demoListen  = "127.0.0.1:11435"
)

func runDemo(ctx context.Context, e *env, args []string) error {
	var o runOptions
	fs := e.flags("demo")
	listen := fs.String("listen", demoListen, "`address` for the simulated Ollama (another free port is used when it is taken)")
	fs.BoolVar(&o.headless, "headless", false, "run without a tray icon, logging events")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	o.registerTrayWait(fs)
	together := fs.Bool("together", false, "show instead a chat model and an autocomplete model on a 24 GB GPU that unload each other")
	every := fs.Duration("switch-every", 3*time.Second, "with --together, how often the simulated user switches between chat and autocomplete")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected %q; demo takes only flags", fs.Arg(0))
	}
	if *together {
		return runDemoTogether(ctx, e, o, *listen, *every)
	}
	gpu, _ := gpusim.LookupGPU(demoGPU)
	sim := gpusim.New(gpusim.Config{GPU: gpu, LoadDelay: 400 * time.Millisecond})
	url, err := sim.Start(*listen)
	if errors.Is(err, syscall.EADDRINUSE) || isAddrInUse(err) {
		url, err = sim.Start("127.0.0.1:0")
	}
	if err != nil {
		return fmt.Errorf("start the simulated Ollama on %s (choose another with --listen): %w", *listen, err)
	}
	defer sim.Close()
	if err := sim.Load(demoModel, demoContext, gpusim.Forever); err != nil {
		return fmt.Errorf("load %s in the simulator: %w", demoModel, err)
	}
	// Continue asks for the model's whole context.
	src := fmt.Sprintf(`# Written by ctxfit demo: Continue asks for the model's whole context,
# which does not fit on the Mac's GPU.
name: ctxfit demo
version: 1.0.0
schema: v1
models:
  - name: Chat
    provider: ollama
    model: %s
    apiBase: %s
    roles: [chat, edit]
    defaultCompletionOptions:
      contextLength: %d
`, demoModel, url, demoContext)
	de, config, err := demoContinue(e, "config.yaml", src)
	if err != nil {
		return err
	}
	defer os.RemoveAll(filepath.Dir(config))
	u, err := neturl.Parse(url)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, `ctxfit demo: a simulated Ollama on a 32 GB Mac (unified memory) listens at %s
%s is loaded at num_ctx %d, as Continue's config (%s)
asks for it, and spills onto the CPU.

Try, in another terminal:
  %s
  %s
  %s
  %s

The Mac's GPU may use only 2/3 of its 32 GB. After the tune, ctxfit says what
a larger share buys; apply it, and tune again:
  %s
  %s

Press Ctrl-C to stop.

`, url, demoModel, demoContext, config,
		de.hint(u, "status"), de.hint(u, "tune", demoModel), de.hint(u, "fix", "continue"), de.hint(u, "bench", demoModel),
		de.hint(u, "gpu-limit", "set", "24576"), de.hint(u, "tune", demoModel))
	o.host, o.hosts = url, nil // the simulator alone, whatever --host said
	return de.watch(ctx, o)
}

// demoContinue writes a demo's Continue config, src, as name in a folder
// of its own, and returns e as the demo's ctxfit runs: it reads that
// config, not the user's (without it, it would see no client asking the
// simulator for anything, and a tune would report every config as
// already fitting), and every command the demo names, its ctxfit's
// messages and the hints of the commands that talk to it
// (localapi.Hello.Env) carry CONTINUE_GLOBAL_DIR, so that each works when
// copied as printed. The caller removes the folder.
func demoContinue(e *env, name, src string) (de env, config string, err error) {
	dir, err := os.MkdirTemp("", "ctxfit-demo-continue-")
	if err != nil {
		return env{}, "", fmt.Errorf("create the demo's Continue folder: %w", err)
	}
	config = filepath.Join(dir, name)
	if err := os.WriteFile(config, []byte(src), 0o644); err != nil {
		os.RemoveAll(dir)
		return env{}, "", fmt.Errorf("write the demo's Continue config: %w", err)
	}
	de = *e
	de.getenv = func(k string) string {
		if k == "CONTINUE_GLOBAL_DIR" {
			return dir
		}
		return e.getenv(k)
	}
	// Its ctxfit's messages name commands as it was started.
	de.demo, de.hintEnv = true, []string{"CONTINUE_GLOBAL_DIR=" + dir}
	return de, config, nil
}

func isAddrInUse(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && errors.Is(oe.Err, syscall.EADDRINUSE)
}
