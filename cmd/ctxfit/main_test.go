package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
)

// mainArgsEnv names the environment variable that makes the test binary
// run ctxfit instead of the tests, with the command line it holds as a JSON
// array. Tests that need ctxfit in a process of its own use it: the tray
// runs on the main goroutine, once per process.
const mainArgsEnv = "CTXFIT_TEST_MAIN_ARGS"

func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv(mainArgsEnv); ok {
		os.Exit(runMain(args))
	}
	os.Exit(m.Run())
}

// runMain runs ctxfit as main does, with the command line in args (a JSON
// array), and returns its exit status.
func runMain(args string) int {
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil {
		fmt.Fprintf(os.Stderr, "%s=%s: %v\n", mainArgsEnv, args, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return (&env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}).main(ctx, argv)
}

// mainCommand returns a command that runs `ctxfit args...` in a child
// process (this test binary, through TestMain) whose environment is vars,
// plus the few variables a process needs to run at all (PATH) and those
// that configure the race detector and coverage.
func mainCommand(vars map[string]string, args ...string) *exec.Cmd {
	argv, err := json.Marshal(args)
	if err != nil {
		panic(err) // a []string always marshals
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = []string{mainArgsEnv + "=" + string(argv)}
	for _, k := range []string{"PATH", "SYSTEMROOT", "TMPDIR", "GORACE", "GOCOVERDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

func TestQuoteCommand(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{`C:\Program Files\ctxfit\ctxfit-tray.exe`, "run"}, `"C:\Program Files\ctxfit\ctxfit-tray.exe" run`},
		{[]string{`C:\Users\me\go\bin\ctxfit.exe`, "run", "--headless"}, `C:\Users\me\go\bin\ctxfit.exe run --headless`},
		{[]string{"/usr/bin/ctxfit", ""}, `/usr/bin/ctxfit ""`},
		{[]string{`/opt/a"b/ctxfit`}, `"/opt/a\"b/ctxfit"`},
	}
	for _, tt := range tests {
		if got := quoteCommand(tt.args); got != tt.want {
			t.Errorf("quoteCommand(%q) = %s, want %s", tt.args, got, tt.want)
		}
	}
}
