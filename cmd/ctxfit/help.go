package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/ctxfit/ctxfit/clients"
)

// helpDoc is one command's help, printed in one layout for every command:
// usage lines, a description, the flags, examples.
type helpDoc struct {
	usage    []string // after "ctxfit "
	about    string
	examples []string // after "ctxfit "
}

// helpDocs are the help texts, by command ("fix ollama" for a subcommand).
func helpDocs() map[string]helpDoc {
	return map[string]helpDoc{
		"status": {
			usage: []string{"status [--host URL] [--json] [--set-gpu present|absent|auto]"},
			about: `Shows the Ollama server and each loaded model: size, CPU/GPU split, context
length, state, and the context that stays on the GPU when a tune found one,
and which tuned value applies (the one measured for the server's parallel
slots).`,
			examples: []string{"status", "status --host gpu-box:11434 --json", "status --set-gpu absent"},
		},
		"run": {
			usage: []string{"run [--headless] [--host URL]... [--log-format text|json] [--auto-fix[=on|off]] [--metrics-addr HOST:PORT|off]", "[--host URL] ..."},
			about: `Watches the Ollama server: warns when a loaded model spills onto the CPU,
and with auto-fix on keeps client configs at the tuned context. With --host
repeated it watches each of those servers (remembered for the next run
without --host). ` + "`ctxfit`" + ` alone, or with these flags and no command,
runs the same.`,
			examples: []string{"run", "--host gpu-box", "run --host localhost --host gpu-box:11434", "run --headless --log-format json --metrics-addr 127.0.0.1:9464", "run --auto-fix"},
		},
		"demo": {
			usage: []string{"demo [--listen ADDR] [--headless]"},
			about: `Runs ctxfit against a simulated Ollama on a 32 GB Mac, where
` + demoModel + ` was loaded at num_ctx 131072 and spilled onto the CPU.
No GPU and no Ollama needed.`,
			examples: []string{"demo", "demo --headless --listen 127.0.0.1:0"},
		},
		"tune": {
			usage: []string{"tune MODEL [--step N] [--parallel P] [--host URL] [--json] [--quiet] [--load-timeout D] [--stall-timeout D]", "tune --list [--all-hosts] [--host URL] [--json]"},
			about: `Finds the largest context length, a multiple of --step and at most the
model's trained context, at which MODEL loads 100% on the server's GPU,
with a few real loads, and stores it for ctxfit status and ctxfit fix.
However the tune ends (an answer, an error, Ctrl-C), the model is left as
it was: reloaded at its earlier context, or unloaded. A server known to
have no GPU is refused before any load; on one not known yet, the first
load is at a context that cannot swap the machine. Progress goes to
stderr when it is a terminal. A server that sends nothing for
--load-timeout (before a load's answer) or --stall-timeout (after) stops
the tune.`,
			examples: []string{"tune llama3.1:8b", "tune qwen2.5-coder:7b --host gpu-box --parallel 2", "tune --list --all-hosts --json"},
		},
		"bench": {
			usage: []string{"bench MODEL [--context N] [--tokens T] [--host URL] [--json] [--quiet] [--load-timeout D] [--stall-timeout D]"},
			about: `Loads MODEL with num_ctx N, then times a short streamed generation:
time to first token, and tokens per second (eval_count / eval_duration).
The model stays loaded at N. Its phases go to stderr when it is a terminal.
A server that sends nothing for --load-timeout (before the answer starts)
or --stall-timeout (after) ends the bench.`,
			examples: []string{"bench llama3.1:8b --context 8192", "bench llama3.1:8b --json"},
		},
		"fix": {
			usage: []string{"fix CLIENT|all [--dry-run] [--json] [--force] [--host URL]"},
			about: "Writes the context that `ctxfit tune` found for each model into CLIENT's config.\n" +
				"Every other byte of the file stays as it is, and the previous version is kept\n" +
				"(`ctxfit undo CLIENT`).\n\n" +
				wrapText("maxTokens: "+clients.MaxTokensRule+".", 80) + "\n\n" +
				wrapText("CLIENT is one of: "+strings.Join(clientNames(), ", ")+", or ollama (a copy of each "+
					"model with the tuned num_ctx, for clients that send none; see `ctxfit help fix ollama`), "+
					"or all: every client found here, then ollama.", 80),
			examples: []string{"fix continue --dry-run", "fix all --host gpu-box", "fix zed --json"},
		},
		"fix ollama": {
			usage: []string{"fix ollama [MODEL...] [--context N] [--host URL] [--dry-run] [--json]", "fix ollama --undo MODEL [--host URL] [--json]"},
			about: `Creates MODEL-ctxNk on the Ollama server: MODEL with num_ctx N in its Modelfile,
so that clients that send no num_ctx (Dify, Open WebUI, OpenAI-compatible /v1
clients) run it at the context that stays on the GPU. N is the value
` + "`ctxfit tune MODEL`" + ` found, unless --context gives one. With no MODEL, every
model tuned on this server gets its copy. --undo removes the copies of MODEL.`,
			examples: []string{"fix ollama llama3.1:8b", "fix ollama llama3.1:8b --context 8192 --dry-run", "fix ollama --undo llama3.1:8b"},
		},
		"undo": {
			usage: []string{"undo CLIENT|all [--host URL] [--dry-run] [--json]"},
			about: `Restores CLIENT's config as it was before ctxfit's last fix. It refuses when
the file was edited after the fix. Run again, it goes one fix further back
only while the file holds exactly what that earlier fix wrote; otherwise it
says that nothing more of ctxfit's is left to undo and names the older
backup. A running ctxfit (for --host) leaves a restored file alone, auto-fix
or not, until you change it again. --dry-run shows the change as a diff,
as fix --dry-run does, and writes nothing.

` + wrapText("CLIENT is one of: "+strings.Join(clientNames(), ", ")+", or all.", 80),
			examples: []string{"undo continue", "undo continue --dry-run", "undo all --json"},
		},
		"clients": {
			usage:    []string{"clients [--host URL] [--json]"},
			about:    `Lists the clients ctxfit knows, where their config is, and what context each Ollama model entry asks for beside the tuned value.`,
			examples: []string{"clients", "clients --host gpu-box --json"},
		},
		"service": {
			usage: []string{"service install [--headless] [--host URL] [--exe PATH] [--json]", "service uninstall|start|stop|status [--json]"},
			about: `Makes ctxfit start at login: a systemd user unit on Linux, a LaunchAgent on
macOS, the Run key on Windows (--headless: a Windows service, installed from
an Administrator prompt). install records the Ollama server in force
(--host, else OLLAMA_HOST) in what it writes; status, uninstall, start and
stop work from any ctxfit binary.

  install    start ctxfit at every login, and now
  uninstall  stop it and remove what install added
  start      start the installed ctxfit now
  stop       stop the ctxfit that install started
  status     show what is installed, enabled and running, and the log file`,
			examples: []string{"service install", "service install --headless --host gpu-box:11434", "service status --json"},
		},
		"gpu-limit": {
			usage: []string{"gpu-limit [--host URL] [--json]", "gpu-limit set MB [--force] [--dry-run]", "gpu-limit persist MB [--force] [--dry-run]", "gpu-limit undo [--dry-run]"},
			about: `On an Apple Silicon Mac the GPU may use only part of the unified memory
(about 2/3, 3/4 from 36 GB); Ollama spills past it. With no subcommand,
shows that share and, for each model tuned on this Mac, how much more
context a larger share would buy (--json: as one JSON object).

  set MB      sudo sysctl iogpu.wired_limit_mb=MB (0: the default), until reboot
  persist MB  install a LaunchDaemon that sets it at every boot, and set it now
  undo        remove that LaunchDaemon and go back to the default

sudo asks for your password in this terminal; the tray never does this.
Ollama reads the limit when it starts: restart it afterwards, then re-tune.`,
			examples: []string{"gpu-limit", "gpu-limit --json", "gpu-limit set 24576 --dry-run", "gpu-limit undo"},
		},
		"settings": {
			usage:    []string{"settings [--host URL] [--json]"},
			about:    "Shows every setting ctxfit remembers, and whether a ctxfit running for the\nserver uses them; `ctxfit set NAME on|off` changes one.",
			examples: []string{"settings", "settings --json"},
		},
		"set": {
			usage: []string{"set auto-fix|notifications on|off [--host URL] [--json]", "set watch-hosts URL,URL...|off [--json]"},
			about: `auto-fix: keep every client's config at the tuned context, after each tune and
whenever a client rewrites its file. notifications: the tray's desktop
notifications. watch-hosts: the servers ` + "`ctxfit run`" + ` and ` + "`ctxfit status`" + ` watch
without --host. A running ctxfit applies the change at once; it is remembered
either way.`,
			examples: []string{"set auto-fix on", "set notifications off --json", "set watch-hosts localhost,gpu-box:11434"},
		},
		"logs": {
			usage:    []string{"logs [-f] [-n N] [--json]"},
			about:    "Prints the log of `ctxfit run`; with -f follows it as it grows (across\nrotations) until Ctrl-C. --json prints each record as one JSON object per\nline (JSON Lines), whichever --log-format wrote it.",
			examples: []string{"logs -f", "logs -n 50", "logs -f --json"},
		},
		"version": {
			usage:    []string{"version [--json]", "--version"},
			about:    `Prints ctxfit's version, the commit it was built from, the Go version and the OS/arch, from the build information the Go toolchain stamps into the binary.`,
			examples: []string{"version", "version --json"},
		},
		"completion": {
			usage: []string{"completion bash|zsh|fish|powershell"},
			about: `Prints a script that completes ctxfit's commands and flags in a shell:
  bash        source <(ctxfit completion bash)
  zsh         source <(ctxfit completion zsh)
  fish        ctxfit completion fish | source
  powershell  ctxfit completion powershell | Out-String | Invoke-Expression`,
			examples: []string{"completion bash > ~/.local/share/bash-completion/completions/ctxfit"},
		},
	}
}

// printHelp prints the help of the command whose flag set is fs.
func (e *env) printHelp(w io.Writer, fs *flag.FlagSet) {
	name := strings.TrimPrefix(fs.Name(), "ctxfit ")
	doc := helpDocs()[name]
	prog := e.progOrDefault()
	var b strings.Builder
	b.WriteString("Usage:\n")
	for _, u := range doc.usage {
		fmt.Fprintf(&b, "  %s %s\n", prog, u)
	}
	if doc.about != "" {
		fmt.Fprintf(&b, "\n%s\n", doc.about)
	}
	fmt.Fprintf(&b, "\nFlags:\n%s", flagLines(fs))
	if len(doc.examples) > 0 {
		b.WriteString("\nExamples:\n")
		for _, x := range doc.examples {
			fmt.Fprintf(&b, "  %s %s\n", prog, x)
		}
	}
	io.WriteString(w, b.String())
}

// flagLines lists fs's flags, one a line: "  --host URL  what it does (default …)".
func flagLines(fs *flag.FlagSet) string {
	type line struct{ left, right string }
	var lines []line
	width := 0
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		left := "--" + f.Name
		if _, ok := f.Value.(*onOff); ok {
			left += "[=on|off]"
		} else if arg != "" {
			left += " " + arg
		}
		if d := f.DefValue; d != "" && d != "0" && d != "false" && d != "0s" {
			usage += fmt.Sprintf(" (default %s)", d)
		}
		lines = append(lines, line{left, usage})
		width = max(width, len(left))
	})
	lines = append(lines, line{"-h, --help", "show this help"})
	width = max(width, len("-h, --help"))
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, l.left, l.right)
	}
	return b.String()
}

// runVersion is `ctxfit version [--json]` and `ctxfit --version`.
func runVersion(_ context.Context, e *env, args []string) error {
	fs := e.flags("version")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected %q; version takes only flags", fs.Arg(0))
	}
	v := buildInfo()
	if *asJSON {
		return writeIndentedJSON(e.stdout, v)
	}
	commit := v.Commit
	if commit == "" {
		commit = "unknown commit"
	} else if v.Modified {
		commit += ", modified"
	}
	_, err := fmt.Fprintf(e.stdout, "ctxfit %s (%s) %s %s/%s\n", v.Version, commit, v.Go, v.OS, v.Arch)
	return err
}

// versionJSON is what `ctxfit version` prints.
type versionJSON struct {
	Version  string `json:"version"`
	Commit   string `json:"commit"`
	Time     string `json:"commit_time"`
	Modified bool   `json:"modified"`
	Go       string `json:"go"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
}

// buildInfo reads the version the Go toolchain stamped into the binary:
// the module version for `go install …@v1.2.3`, "(devel)" for a build from
// a checkout, with the VCS commit when it was built in one.
func buildInfo() versionJSON {
	v := versionJSON{Version: "unknown", Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// runCompletion is `ctxfit completion SHELL`.
func runCompletion(ctx context.Context, e *env, args []string) error {
	fs := e.flags("completion")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("name one shell: bash, zsh, fish or powershell")
	}
	spec := e.completionSpec(ctx)
	var script string
	switch fs.Arg(0) {
	case "bash":
		script = bashCompletion(spec)
	case "zsh":
		script = "#compdef ctxfit\nautoload -U +X bashcompinit && bashcompinit\n" + bashCompletion(spec)
	case "fish":
		script = fishCompletion(spec)
	case "powershell":
		script = powershellCompletion(spec)
	default:
		return usagef("unknown shell %q: use bash, zsh, fish or powershell", fs.Arg(0))
	}
	_, err := io.WriteString(e.stdout, script)
	return err
}

// completionSpec returns every command with its flags (with "--"), read
// from the commands' own flag sets by asking each for its help.
func (e *env) completionSpec(ctx context.Context) map[string][]string {
	spec := map[string][]string{}
	quiet := &env{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	for _, c := range commands() {
		var flags []string
		err := c.run(ctx, quiet, []string{"--help"})
		if h, ok := err.(*helpRequest); ok {
			h.fs.VisitAll(func(f *flag.Flag) { flags = append(flags, "--"+f.Name) })
		}
		sort.Strings(flags)
		spec[c.name] = flags
	}
	return spec
}

func specCommands(spec map[string][]string) []string {
	var names []string
	for _, c := range commands() {
		if _, ok := spec[c.name]; ok {
			names = append(names, c.name)
		}
	}
	return names
}

func bashCompletion(spec map[string][]string) string {
	var b strings.Builder
	b.WriteString("# bash completion for ctxfit\n_ctxfit() {\n  local cur=\"${COMP_WORDS[COMP_CWORD]}\" cmd=\"${COMP_WORDS[1]}\"\n")
	fmt.Fprintf(&b, "  if [ \"$COMP_CWORD\" -eq 1 ]; then COMPREPLY=($(compgen -W %q -- \"$cur\")); return; fi\n", strings.Join(append(specCommands(spec), "help", "--help", "--version", "--host"), " "))
	b.WriteString("  case \"$cmd\" in\n")
	for _, name := range specCommands(spec) {
		words := spec[name]
		switch name {
		case "fix", "undo":
			words = append(append(words, clientNames()...), "ollama", "all")
		case "service":
			words = append(words, "install", "uninstall", "start", "stop", "status")
		case "completion":
			words = append(words, "bash", "zsh", "fish", "powershell")
		}
		fmt.Fprintf(&b, "    %s) COMPREPLY=($(compgen -W %q -- \"$cur\"));;\n", name, strings.Join(words, " "))
	}
	fmt.Fprintf(&b, "    help) COMPREPLY=($(compgen -W %q -- \"$cur\"));;\n", strings.Join(specCommands(spec), " "))
	b.WriteString("  esac\n}\ncomplete -F _ctxfit ctxfit\n")
	return b.String()
}

func fishCompletion(spec map[string][]string) string {
	var b strings.Builder
	b.WriteString("# fish completion for ctxfit\ncomplete -c ctxfit -f\n")
	summaries := map[string]string{}
	for _, c := range commands() {
		summaries[c.name] = c.summary
	}
	for _, name := range specCommands(spec) {
		fmt.Fprintf(&b, "complete -c ctxfit -n __fish_use_subcommand -a %s -d %s\n", name, fishQuote(summaries[name]))
		for _, f := range spec[name] {
			fmt.Fprintf(&b, "complete -c ctxfit -n '__fish_seen_subcommand_from %s' -l %s\n", name, strings.TrimPrefix(f, "--"))
		}
	}
	return b.String()
}

func fishQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

func powershellCompletion(spec map[string][]string) string {
	var b strings.Builder
	b.WriteString("# PowerShell completion for ctxfit\n$ctxfitSpec = @{\n")
	for _, name := range specCommands(spec) {
		quoted := make([]string, len(spec[name]))
		for i, f := range spec[name] {
			quoted[i] = "'" + f + "'"
		}
		fmt.Fprintf(&b, "  '%s' = @(%s)\n", name, strings.Join(quoted, ", "))
	}
	b.WriteString(`}
Register-ArgumentCompleter -Native -CommandName ctxfit, ctxfit.exe -ScriptBlock {
  param($wordToComplete, $commandAst, $cursorPosition)
  $words = $commandAst.CommandElements | ForEach-Object { $_.ToString() }
  if ($words.Count -le 2 -and -not ($wordToComplete -eq '' -and $words.Count -eq 2)) {
    $candidates = $ctxfitSpec.Keys
  } else {
    $candidates = $ctxfitSpec[$words[1]]
  }
  $candidates | Where-Object { $_ -like "$wordToComplete*" } | Sort-Object | ForEach-Object {
    [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_)
  }
}
`)
	return b.String()
}

// wrapText breaks s into lines of at most width columns at spaces (a word
// longer than width stays whole on its line).
func wrapText(s string, width int) string {
	var b strings.Builder
	col := 0
	for i, w := range strings.Fields(s) {
		n := utf8.RuneCountInString(w)
		switch {
		case i == 0:
		case col+1+n > width:
			b.WriteByte('\n')
			col = 0
		default:
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += n
	}
	return b.String()
}
