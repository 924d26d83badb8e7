package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ctxfit/ctxfit/state"
	"github.com/ctxfit/ctxfit/unified"
)

// TestGPULimitStory is the demo's story on the simulated 32 GB Mac: the
// model spills at 131072, a tune finds 25600 and says what
// iogpu.wired_limit_mb=24576 buys, one command applies it, and a re-tune
// finds the new largest context, which the advice predicted.
func TestGPULimitStory(t *testing.T) {
	sim, u := startSim(t, "mac32", map[string]int{fp16: 131072})
	c := newCLI(t, nil)

	code, out, errOut := c.run("status", "--host", u)
	if code != 0 || !strings.Contains(out, "Apple Silicon: the GPU may use 21.3 GiB of 32.0 GiB unified memory (the macOS default)") {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = c.run("tune", fp16, "--host", u)
	if code != 0 {
		t.Fatalf("tune: exit %d\n%s%s", code, out, errOut)
	}
	first := exhaustiveCLI(t, sim, fp16, 1024, 1)
	golden(t, "gpulimit_tune.txt", normalize(out))
	if !strings.Contains(out, "iogpu.wired_limit_mb=24576  (75% of RAM): about 35840 tokens, leaving 8.0 GiB to macOS") {
		t.Errorf("the tune gives no advice for the limit:\n%s", out)
	}
	data, _ := state.OpenStore(c.vars[state.StateDirEnv]).Load()
	if len(data.Tuned) != 1 || data.Tuned[0].Context != first || data.Tuned[0].GPUBudget != unified.DefaultBudget(32<<30) || data.Tuned[0].BytesPerToken <= 0 {
		t.Fatalf("stored %+v", data.Tuned)
	}

	// --json: the same values, as one object (docs/json.md).
	code, out, errOut = c.run("gpu-limit", "--json", "--host", u)
	if code != 0 {
		t.Fatalf("gpu-limit --json: exit %d\n%s%s", code, out, errOut)
	}
	golden(t, filepath.Join("json", "gpu_limit.json"), strings.ReplaceAll(out, strings.TrimSuffix(u, "/"), "HOST"))
	var lim gpuLimitJSON
	if err := json.Unmarshal([]byte(out), &lim); err != nil || len(lim.Models) != 1 || lim.Models[0].Context != first ||
		!slices.ContainsFunc(lim.Models[0].Options, func(o unified.Option) bool { return o.LimitMB == 24576 && o.Context == 35840 }) {
		t.Errorf("gpu-limit --json: %v\n%s", err, out)
	}
	if code, out, _ := c.run("gpu-limit", "set", "24576", "--json", "--host", u); code != 2 || !strings.Contains(out, `"error"`) {
		t.Errorf("gpu-limit set --json: exit %d %s", code, out)
	}

	// A limit that starves macOS is refused; --dry-run changes nothing.
	if code, _, errOut := c.run("gpu-limit", "set", "30000", "--host", u); code != 1 || !strings.Contains(errOut, "leaves macOS only") {
		t.Errorf("gpu-limit set 30000: exit %d, %s", code, errOut)
	}
	if code, out, _ := c.run("gpu-limit", "set", "24576", "--dry-run", "--host", u); code != 0 || !strings.Contains(out, "Would run: sudo sysctl iogpu.wired_limit_mb=24576") {
		t.Errorf("--dry-run: exit %d\n%s", code, out)
	}
	if info, _ := sim.UnifiedMemory(); info.WiredLimitMB != 0 {
		t.Fatalf("--dry-run set the limit to %d", info.WiredLimitMB)
	}

	code, out, errOut = c.run("gpu-limit", "set", "24576", "--host", u)
	if code != 0 || !strings.Contains(out, "iogpu.wired_limit_mb is now 24576") || !strings.Contains(out, "Then re-tune: ctxfit tune "+fp16) {
		t.Fatalf("gpu-limit set: exit %d\n%s%s", code, out, errOut)
	}
	if want := "`ctxfit gpu-limit persist 24576 --host " + strings.TrimSuffix(u, "/") + "` keeps it"; !strings.Contains(out, want) {
		t.Errorf("gpu-limit set does not name the command that keeps the limit, %s:\n%s", want, out)
	}
	if info, _ := sim.UnifiedMemory(); info.WiredLimitMB != 24576 {
		t.Fatalf("the simulator's limit is %d", info.WiredLimitMB)
	}
	// The stored tune is now out of date, and gpu-limit says so.
	if code, out, _ := c.run("gpu-limit", "--host", u); code != 0 || !strings.Contains(out, "the limit changed since") {
		t.Errorf("gpu-limit after the change: exit %d\n%s", code, out)
	}

	code, out, errOut = c.run("tune", fp16, "--host", u)
	if code != 0 {
		t.Fatalf("re-tune: exit %d\n%s%s", code, out, errOut)
	}
	second := exhaustiveCLI(t, sim, fp16, 1024, 1)
	if second != 35840 || !strings.Contains(out, "num_ctx 35840 stays 100% on the GPU") {
		t.Errorf("re-tune: exhaustive %d\n%s", second, out)
	}
	t.Logf("mac32: %d at the default limit, %d at iogpu.wired_limit_mb=24576 (predicted 35840)", first, second)
}

// TestGPULimitSysctl drives the real Source through stub sysctl and sudo
// programs: what gpu-limit set, persist and undo run, in order.
func TestGPULimitSysctl(t *testing.T) {
	dir := t.TempDir()
	record := filepath.Join(dir, "record")
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sysctl := write("sysctl", `printf '34359738368\n0\n'`)
	sudo := write("sudo", `echo "$@" >> `+record)
	c := newCLI(t, map[string]string{sysctlEnv: sysctl, sudoEnv: sudo})
	host := "http://127.0.0.1:1" // local; nothing needs to answer

	code, out, errOut := c.run("gpu-limit", "--host", host)
	if code != 0 || !strings.Contains(out, "21.3 GiB of 32.0 GiB") || !strings.Contains(out, "Tune a model first") {
		t.Fatalf("gpu-limit: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = c.run("gpu-limit", "persist", "24576", "--dry-run", "--host", host)
	if code != 0 || !strings.Contains(out, "Would write "+unified.PlistPath) || !strings.Contains(out, string(unified.Plist(24576))) {
		t.Fatalf("persist --dry-run: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(record); err == nil {
		t.Fatal("--dry-run ran sudo")
	}
	for _, args := range [][]string{{"set", "24576"}, {"persist", "24576"}, {"undo"}} {
		if code, out, errOut := c.run(append([]string{"gpu-limit", "--host", host}, args...)...); code != 0 {
			t.Fatalf("gpu-limit %v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	got, _ := os.ReadFile(record)
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	want := []string{
		sysctl + " iogpu.wired_limit_mb=24576",           // set
		"launchctl bootout system/" + unified.PlistLabel, // persist: an older one goes first
		"install -m 0644 -o root -g wheel ",
		"launchctl bootstrap system " + unified.PlistPath,
		sysctl + " iogpu.wired_limit_mb=24576",
		"launchctl bootout system/" + unified.PlistLabel, // undo
		"rm -f " + unified.PlistPath,
		sysctl + " iogpu.wired_limit_mb=0",
	}
	if len(lines) != len(want) {
		t.Fatalf("sudo ran:\n%s\nwant %d commands", got, len(want))
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("command %d: %q, want %q…", i, lines[i], want[i])
		}
	}

	// A remote server has no GPU limit ctxfit can read.
	if code, _, errOut := c.run("gpu-limit", "--host", "http://192.0.2.1:11434"); code != 1 || !strings.Contains(errOut, "Apple Silicon") {
		t.Errorf("remote host: exit %d, %s", code, errOut)
	}
}
