package ci

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// root is the repository's root, from this package's directory.
const root = "../.."

// workflow is the part of a GitHub Actions workflow the checks read.
type workflow struct {
	On   map[string]any `yaml:"on"`
	Jobs map[string]job `yaml:"jobs"`
}

type job struct {
	RunsOn string            `yaml:"runs-on"`
	Env    map[string]string `yaml:"env"`
	Steps  []struct {
		Name string            `yaml:"name"`
		Uses string            `yaml:"uses"`
		Run  string            `yaml:"run"`
		With map[string]string `yaml:"with"`
	} `yaml:"steps"`
}

// runs returns the job's shell lines, one string.
func (j job) runs() string {
	var b strings.Builder
	for _, s := range j.Steps {
		b.WriteString(s.Run)
		b.WriteString("\n")
	}
	return b.String()
}

// uploads returns what the job's upload-artifact steps upload.
func (j job) uploads() string {
	var b strings.Builder
	for _, s := range j.Steps {
		if strings.HasPrefix(s.Uses, "actions/upload-artifact@") {
			b.WriteString(s.With["path"])
		}
	}
	return b.String()
}

func readWorkflow(t *testing.T) workflow {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, ".github", "workflows", "ci.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var w workflow
	if err := yaml.Unmarshal(data, &w); err != nil {
		t.Fatalf("ci.yml: %v", err)
	}
	return w
}

// TestWorkflow checks that CI tests ctxfit on the three systems it runs on
// (macOS on Apple Silicon with cgo, so that the menu-bar tray is built),
// lints itself, and builds the artefacts the README promises.
func TestWorkflow(t *testing.T) {
	w := readWorkflow(t)
	for _, ev := range []string{"push", "pull_request"} {
		if _, ok := w.On[ev]; !ok {
			t.Errorf("the workflow does not run on %s", ev)
		}
	}
	byOS := map[string]job{}
	for name, j := range w.Jobs {
		byOS[j.RunsOn] = j
		for _, s := range j.Steps {
			if strings.HasPrefix(s.Uses, "actions/setup-go@") && s.With["go-version-file"] != "go.mod" {
				t.Errorf("job %s sets up Go without go-version-file: go.mod", name)
			}
		}
	}
	for _, os := range []string{"ubuntu-latest", "macos-latest", "windows-latest"} {
		if _, ok := byOS[os]; !ok {
			t.Errorf("no job runs on %s", os)
		}
	}
	if !strings.Contains(w.Jobs["linux"].runs(), ".ci/run") {
		t.Error("the Linux job does not run .ci/run (the whole suite with Ollama and DBus)")
	}
	if !strings.Contains(w.Jobs["lint-workflows"].runs(), "github.com/rhysd/actionlint/cmd/actionlint@") {
		t.Error("no job runs actionlint")
	}

	mac := byOS["macos-latest"]
	if mac.Env["CGO_ENABLED"] != "1" {
		t.Error("the macOS job does not turn cgo on: the tray would not be built")
	}
	for _, want := range []string{"go test ./...", "go vet ./...", "ctxfit.app/Contents", "MacOS/ctxfit", "Info.plist", "LSUIElement"} {
		if !strings.Contains(mac.runs(), want) {
			t.Errorf("the macOS job lacks %q", want)
		}
	}
	if !strings.Contains(mac.uploads(), "ctxfit-macos-arm64.zip") {
		t.Error("the macOS job uploads no app bundle")
	}

	win := byOS["windows-latest"]
	for _, want := range []string{"go test ./...", "go vet ./...",
		"go build -o dist/ctxfit.exe ./cmd/ctxfit",
		"go build -ldflags=-H=windowsgui -o dist/ctxfit-tray.exe ./cmd/ctxfit",
		"pesubsystem dist/ctxfit.exe=console dist/ctxfit-tray.exe=gui"} {
		if !strings.Contains(win.runs(), want) {
			t.Errorf("the Windows job lacks %q", want)
		}
	}
	for _, exe := range []string{"dist/ctxfit.exe", "dist/ctxfit-tray.exe"} {
		if !strings.Contains(win.uploads(), exe) {
			t.Errorf("the Windows job does not upload %s", exe)
		}
	}
}

// TestInfoPlist checks the app bundle's Info.plist: a menu-bar app
// (LSUIElement, no Dock icon) whose executable is ctxfit.
func TestInfoPlist(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "packaging", "macos", "Info.plist"))
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Dict struct {
			Items []struct {
				XMLName xml.Name
				Value   string `xml:",chardata"`
			} `xml:",any"`
		} `xml:"dict"`
	}
	if err := xml.Unmarshal(data, &p); err != nil {
		t.Fatalf("Info.plist: %v", err)
	}
	keys := map[string]string{}
	items := p.Dict.Items
	for i := 0; i+1 < len(items); i += 2 {
		if items[i].XMLName.Local != "key" {
			t.Fatalf("Info.plist: %s where a key belongs", items[i].XMLName.Local)
		}
		v := items[i+1]
		keys[items[i].Value] = v.Value
		if v.XMLName.Local == "true" || v.XMLName.Local == "false" {
			keys[items[i].Value] = v.XMLName.Local
		}
	}
	for k, want := range map[string]string{
		"LSUIElement": "true", "CFBundleExecutable": "ctxfit", "CFBundlePackageType": "APPL",
		"CFBundleIdentifier": "io.github.ctxfit",
	} {
		if keys[k] != want {
			t.Errorf("Info.plist %s = %q, want %q", k, keys[k], want)
		}
	}
	if !slices.Contains([]string{"true"}, keys["NSHighResolutionCapable"]) {
		t.Error("Info.plist: not NSHighResolutionCapable: the @2x template icon would be blurred")
	}
}
