package autostart

import (
	"slices"
	"strings"
	"testing"
)

func TestSystemdUnitGolden(t *testing.T) {
	tests := []struct {
		golden string
		opts   Options
	}{
		{"ctxfit.service", Options{Executable: "/home/ann/.local/bin/ctxfit"}},
		{"ctxfit-headless.service", Options{Executable: "/usr/local/bin/ctxfit", Headless: true}},
		{"ctxfit-odd-path.service", Options{Executable: `/home/ann/my apps/100% $HOME/ctxfit`}},
		{"ctxfit-host.service", Options{Executable: "/usr/local/bin/ctxfit", Headless: true, Host: "http://gpu-box:11434"}},
		{"ctxfit-odd-host.service", Options{Executable: "/usr/local/bin/ctxfit", Host: `http://100%25 "x":11434/a\b`}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			unit, err := systemdUnit(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tt.golden, unit)
			got, err := unitExecStart(unit)
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.opts.command(); !slices.Equal(got, want) {
				t.Errorf("ExecStart reads back as %q, want %q", got, want)
			}
			if h := unitHost(unit); h != tt.opts.Host {
				t.Errorf("Environment= reads back as OLLAMA_HOST=%q, want %q", h, tt.opts.Host)
			}
		})
	}
}

func TestSystemdUnitModes(t *testing.T) {
	tests := []struct {
		headless     bool
		wantedBy     string
		partOf       bool
		wantExecTail string
	}{
		{false, "WantedBy=graphical-session.target\n", true, `"run"` + "\n"},
		{true, "WantedBy=default.target\n", false, `"run" "--headless"` + "\n"},
	}
	for _, tt := range tests {
		unit, err := systemdUnit(Options{Executable: "/bin/ctxfit", Headless: tt.headless})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(unit, tt.wantedBy) {
			t.Errorf("headless=%v: unit lacks %q:\n%s", tt.headless, tt.wantedBy, unit)
		}
		if got := strings.Contains(unit, "PartOf=graphical-session.target"); got != tt.partOf {
			t.Errorf("headless=%v: PartOf=graphical-session.target present = %v, want %v", tt.headless, got, tt.partOf)
		}
		if !strings.Contains(unit, "Restart=on-failure\n") || strings.Contains(unit, "Restart=always") {
			t.Errorf("headless=%v: unit must restart on failure only:\n%s", tt.headless, unit)
		}
		if !strings.Contains(unit, tt.wantExecTail) {
			t.Errorf("headless=%v: ExecStart does not end in %q:\n%s", tt.headless, tt.wantExecTail, unit)
		}
	}
}

func TestSystemdUnitRejects(t *testing.T) {
	for _, exe := range []string{"/bin/ctx\nfit", "/bin/{{ctxfit}}", "/bin/ctx\x7ffit", `/bin/"ctxfit"`, `/bin/ctx'fit`, `/bin\ctxfit`} {
		if unit, err := systemdUnit(Options{Executable: exe}); err == nil {
			t.Errorf("systemdUnit(%q) = nil error, want one; unit:\n%s", exe, unit)
		}
	}
}

func TestSplitExecStart(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`"/usr/bin/ctxfit" "run"`, []string{"/usr/bin/ctxfit", "run"}},
		{`/usr/bin/ctxfit run --headless`, []string{"/usr/bin/ctxfit", "run", "--headless"}},
		// What kardianos/service's own template writes.
		{`/home/ann/my\x20apps/ctxfit "run"`, []string{"/home/ann/my apps/ctxfit", "run"}},
		{`-/bin/true`, []string{"/bin/true"}},
		{`'a b' "c\"d" e%%f $$HOME ""`, []string{"a b", `c"d`, "e%f", "$HOME", ""}},
		{`"/x/$$y" "$$y"`, []string{"/x/$$y", "$y"}},
		{`"a\\b"`, []string{`a\b`}},
	}
	for _, tt := range tests {
		got, err := splitExecStart(tt.in)
		if err != nil {
			t.Errorf("splitExecStart(%q): %v", tt.in, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("splitExecStart(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{``, `   `, `"open`, `trailing\`, `\x4`, `\xzz`} {
		if got, err := splitExecStart(bad); err == nil {
			t.Errorf("splitExecStart(%q) = %q, want an error", bad, got)
		}
	}
}

func FuzzExecStartRoundTrip(f *testing.F) {
	f.Add("/usr/bin/ctxfit", "run")
	f.Add(`/home/a b/100%/$x`, `--head"less\`)
	f.Add("/x", "")
	f.Fuzz(func(t *testing.T, exe, arg string) {
		args := []string{exe, arg}
		line, err := execStart(args)
		if err != nil {
			return // control characters, and quotes in the program, are refused
		}
		got, err := splitExecStart(line)
		if err != nil {
			t.Fatalf("splitExecStart(%q): %v", line, err)
		}
		if !slices.Equal(got, args) {
			t.Fatalf("round trip of %q through %q gave %q", args, line, got)
		}
	})
}

func TestIsEnabledIsActive(t *testing.T) {
	enabled := []struct {
		out  string
		want Answer
		ok   bool
	}{
		{"enabled\n", Yes, true},
		{"enabled-runtime\n", Yes, true},
		{"disabled\n", No, true},
		{"masked\n", No, true},
		{"static\n", No, true},
		{"", Unknown, false},
		{"Failed to connect to bus\n", Unknown, false},
	}
	for _, tt := range enabled {
		if got, ok := isEnabled(tt.out); got != tt.want || ok != tt.ok {
			t.Errorf("isEnabled(%q) = %v, %v; want %v, %v", tt.out, got, ok, tt.want, tt.ok)
		}
	}
	active := []struct {
		out  string
		want Answer
		ok   bool
	}{
		{"active\n", Yes, true},
		{"activating\n", Yes, true},
		{"inactive\n", No, true},
		{"failed\n", No, true},
		{"", Unknown, false},
	}
	for _, tt := range active {
		if got, ok := isActive(tt.out); got != tt.want || ok != tt.ok {
			t.Errorf("isActive(%q) = %v, %v; want %v, %v", tt.out, got, ok, tt.want, tt.ok)
		}
	}
}
