package autostart

import (
	"slices"
	"strings"
	"testing"
)

func TestRunKeyCommand(t *testing.T) {
	tests := []struct {
		opts Options
		want string
	}{
		{Options{Executable: `C:\Users\ann\AppData\Local\Programs\ctxfit\ctxfit.exe`},
			`"C:\Users\ann\AppData\Local\Programs\ctxfit\ctxfit.exe" run`},
		{Options{Executable: `C:\Program Files\ctxfit\ctxfit.exe`, Headless: true},
			`"C:\Program Files\ctxfit\ctxfit.exe" run --headless`},
		{Options{Executable: `D:\tools\`}, `"D:\tools\" run`},
		{Options{Executable: `C:\Program Files\ctxfit\ctxfit.exe`, Host: "http://gpu-box:11434"},
			`"C:\Program Files\ctxfit\ctxfit.exe" run --host http://gpu-box:11434`},
	}
	for _, tt := range tests {
		got, err := runKeyCommand(tt.opts)
		if err != nil {
			t.Errorf("runKeyCommand(%+v): %v", tt.opts, err)
			continue
		}
		if got != tt.want {
			t.Errorf("runKeyCommand(%+v) = %s, want %s", tt.opts, got, tt.want)
		}
		if back := splitWindowsCommandLine(got); !slices.Equal(back, tt.opts.windowsCommand()) || hostArg(back) != tt.opts.Host {
			t.Errorf("%s splits into %q, want %q with host %q", got, back, tt.opts.windowsCommand(), tt.opts.Host)
		}
	}
	if got, err := runKeyCommand(Options{Executable: `C:\a"b.exe`}); err == nil {
		t.Errorf("runKeyCommand accepted a quote in the program path: %s", got)
	}
}

func TestWindowsQuote(t *testing.T) {
	// Expected values are what Go's syscall.EscapeArg returns on Windows.
	tests := []struct{ in, want string }{
		{"", `""`},
		{"run", "run"},
		{"--headless", "--headless"},
		{"a b", `"a b"`},
		{"a\tb", "\"a\tb\""},
		{`C:\x`, `C:\x`},
		{`C:\dir with space\`, `"C:\dir with space\\"`},
		{`say "hi"`, `"say \"hi\""`},
		{`a\"b`, `a\\\"b`},
		{`\\server\share`, `\\server\share`},
	}
	for _, tt := range tests {
		if got := windowsQuote(tt.in); got != tt.want {
			t.Errorf("windowsQuote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestSplitWindowsCommandLine(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`"C:\Program Files\ctxfit.exe" run --headless`, []string{`C:\Program Files\ctxfit.exe`, "run", "--headless"}},
		{`C:\ctxfit.exe run`, []string{`C:\ctxfit.exe`, "run"}},
		{`  C:\ctxfit.exe   a  `, []string{`C:\ctxfit.exe`, "a"}},
		{`x.exe "a b" c\d "e\"f" g\\"h i" ""`, []string{"x.exe", "a b", `c\d`, `e"f`, `g\h i`, ""}},
		{`x.exe a\\\\"b"`, []string{"x.exe", `a\\b`}},
		{`x.exe trailing\`, []string{"x.exe", `trailing\`}},
		{``, nil},
	}
	for _, tt := range tests {
		if got := splitWindowsCommandLine(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("splitWindowsCommandLine(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzWindowsCommandLineRoundTrip(f *testing.F) {
	f.Add(`C:\Program Files\ctxfit\ctxfit.exe`, "run", "--headless")
	f.Add(`C:\x\`, `a\"b`, `c d\`)
	f.Add("x", "", "\t")
	f.Fuzz(func(t *testing.T, exe, a, b string) {
		args := []string{exe, a, b}
		line, err := windowsCommandLine(args)
		if err != nil {
			if exe != "" && !strings.ContainsAny(exe+a+b, "\"\x00") {
				t.Fatalf("windowsCommandLine(%q): %v", args, err)
			}
			return
		}
		if got := splitWindowsCommandLine(line); !slices.Equal(got, args) {
			t.Fatalf("round trip of %q through %s gave %q", args, line, got)
		}
	})
}

func TestStartupApproved(t *testing.T) {
	tests := []struct {
		in   []byte
		want Answer
	}{
		{nil, Yes},
		{[]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, Yes},
		{[]byte{6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, Yes},
		{[]byte{3, 0, 0, 0, 0xd4, 0x0d, 0x43, 0x8d, 0xc8, 0x3b, 0xd9, 0x01}, No},
		{[]byte{7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, No},
	}
	for _, tt := range tests {
		if got := startupApproved(tt.in); got != tt.want {
			t.Errorf("startupApproved(% x) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
