package autostart

import (
	"slices"
	"strings"
	"testing"
)

func TestLaunchAgent(t *testing.T) {
	tests := []struct {
		golden      string
		opts        Options
		processType any // nil: no ProcessType key
	}{
		{"io.github.ctxfit.plist", Options{Executable: "/Applications/ctxfit.app/Contents/MacOS/ctxfit"}, "Interactive"},
		{"io.github.ctxfit-headless.plist", Options{Executable: "/opt/homebrew/bin/ctxfit", Headless: true}, nil},
		{"io.github.ctxfit-odd-path.plist", Options{Executable: `/Users/ann/R&D <tools>/"ctx" 'fit'`}, "Interactive"},
		{"io.github.ctxfit-host.plist", Options{Executable: "/opt/homebrew/bin/ctxfit", Host: "http://gpu-box:11434/a&b"}, "Interactive"},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			text, err := launchAgent(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tt.golden, text)

			plist, err := parsePlist([]byte(text))
			if err != nil {
				t.Fatalf("the rendered LaunchAgent does not parse: %v\n%s", err, text)
			}
			if got := plist["Label"]; got != LaunchdLabel {
				t.Errorf("Label = %v, want %q", got, LaunchdLabel)
			}
			args, err := agentCommand(plist)
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.opts.command(); !slices.Equal(args, want) {
				t.Errorf("ProgramArguments = %q, want %q", args, want)
			}
			if got := agentHost(plist); got != tt.opts.Host {
				t.Errorf("EnvironmentVariables OLLAMA_HOST = %q, want %q", got, tt.opts.Host)
			}
			if got := plist["RunAtLoad"]; got != true {
				t.Errorf("RunAtLoad = %v, want true", got)
			}
			if got := plist["KeepAlive"]; got != false {
				t.Errorf("KeepAlive = %v, want false (so that Quit stays quit)", got)
			}
			if got := plist["ProcessType"]; got != tt.processType {
				t.Errorf("ProcessType = %v, want %v", got, tt.processType)
			}
			for _, key := range []string{"StandardOutPath", "StandardErrorPath", "Disabled"} {
				if v, ok := plist[key]; ok {
					t.Errorf("%s = %v, want no such key", key, v)
				}
			}
		})
	}
}

func TestLaunchAgentRejects(t *testing.T) {
	if text, err := launchAgent(Options{Executable: "/Users/ann/{{x}}/ctxfit"}); err == nil {
		t.Errorf("launchAgent accepted a path with {{, which kardianos/service would read as a template:\n%s", text)
	}
}

func TestParsePlist(t *testing.T) {
	// kardianos/service's own LaunchAgent shape, with types ctxfit does not write.
	const full = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Disabled</key>
	<false/>
	<key>EnvironmentVariables</key>
	<dict>
		<key>OLLAMA_HOST</key>
		<string>127.0.0.1:11434</string>
	</dict>
	<key>KeepAlive</key>
	<dict><key>SuccessfulExit</key><false/></dict>
	<key>Label</key>
	<string>io.github.ctxfit</string>
	<key>Nice</key>
	<integer>-5</integer>
	<key>ThrottleInterval</key>
	<real>2.5</real>
	<key>ProgramArguments</key>
	<array>
		<string>/usr/local/bin/ctxfit</string>
		<string>run</string>
	</array>
</dict>
</plist>
`
	plist, err := parsePlist([]byte(full))
	if err != nil {
		t.Fatal(err)
	}
	if got := plist["Nice"]; got != int64(-5) {
		t.Errorf("Nice = %#v, want -5", got)
	}
	if got := plist["ThrottleInterval"]; got != 2.5 {
		t.Errorf("ThrottleInterval = %#v, want 2.5", got)
	}
	env, _ := plist["EnvironmentVariables"].(map[string]any)
	if env["OLLAMA_HOST"] != "127.0.0.1:11434" {
		t.Errorf("EnvironmentVariables = %#v", plist["EnvironmentVariables"])
	}
	if args, err := agentCommand(plist); err != nil || !slices.Equal(args, []string{"/usr/local/bin/ctxfit", "run"}) {
		t.Errorf("agentCommand = %q, %v", args, err)
	}

	bad := []string{
		"",
		"<plist>",
		"<dict></dict>",
		"<plist><array></array></plist>",
		"<plist><dict><key>a</key></dict></plist>",
		"<plist><dict><string>a</string><true/></dict></plist>",
		"<plist><dict><key>a</key><integer>x</integer></dict></plist>",
		"<plist><dict><key>a</key><blob/></dict></plist>",
		"<plist><dict><key>a</key><string>x<b/></string></dict></plist>",
	}
	for _, b := range bad {
		if got, err := parsePlist([]byte(b)); err == nil {
			t.Errorf("parsePlist(%q) = %v, want an error", b, got)
		}
	}
}

func TestLaunchctlOutput(t *testing.T) {
	const running = `{
	"LimitLoadToSessionType" = "Aqua";
	"Label" = "io.github.ctxfit";
	"OnDemand" = true;
	"LastExitStatus" = 0;
	"PID" = 4711;
	"Program" = "/usr/local/bin/ctxfit";
};
`
	stopped := strings.Replace(running, "\t\"PID\" = 4711;\n", "", 1)
	if pid, ok := launchctlPID(running); !ok || pid != 4711 {
		t.Errorf("launchctlPID(running) = %d, %v; want 4711, true", pid, ok)
	}
	if pid, ok := launchctlPID(stopped); ok {
		t.Errorf("launchctlPID(stopped) = %d, true; want false", pid)
	}

	const disabled = `disabled services = {
	"com.apple.ScriptMenuApp" => enabled
	"io.github.ctxfit" => disabled
	"org.example.old" => true
	"org.example.on" => false
}
`
	tests := []struct {
		label string
		want  bool
	}{
		{LaunchdLabel, true},
		{"org.example.old", true},
		{"org.example.on", false},
		{"com.apple.ScriptMenuApp", false},
		{"io.github.ctxfit.other", false},
	}
	for _, tt := range tests {
		if got := launchctlDisabled(disabled, tt.label); got != tt.want {
			t.Errorf("launchctlDisabled(%q) = %v, want %v", tt.label, got, tt.want)
		}
	}
}
