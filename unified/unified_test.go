package unified

import (
	"context"
	"encoding/xml"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestBudgets(t *testing.T) {
	tests := []struct {
		ram       int64
		def, res  int64
		maxLimit  int
		sentence  string
		limitMB   int
		wantBytes int64
	}{
		{16 * gib, 16 * gib / 3 * 2, 8 * gib, 0, "10.7 GiB of 16.0 GiB", 0, 16 * gib / 3 * 2},
		{32 * gib, 32 * gib / 3 * 2, 8 * gib, 24576, "21.3 GiB of 32.0 GiB", 0, 32 * gib / 3 * 2},
		{36 * gib, 27 * gib, 8 * gib, 28672, "27.0 GiB of 36.0 GiB", 0, 27 * gib},
		{64 * gib, 48 * gib, 64 * gib / 5, 52428, "48.0 GiB of 64.0 GiB", 0, 48 * gib},
		{128 * gib, 96 * gib, 128 * gib / 5, 104857, "100.0 GiB of 128.0 GiB", 102400, 100 * gib},
	}
	for _, tt := range tests {
		i := Info{RAM: tt.ram, WiredLimitMB: tt.limitMB}
		if got := DefaultBudget(tt.ram); got != tt.def {
			t.Errorf("DefaultBudget(%d GiB) = %d, want %d", tt.ram/gib, got, tt.def)
		}
		if got := Reserve(tt.ram); got != tt.res {
			t.Errorf("Reserve(%d GiB) = %d, want %d", tt.ram/gib, got, tt.res)
		}
		if got := MaxLimitMB(tt.ram); got != tt.maxLimit {
			t.Errorf("MaxLimitMB(%d GiB) = %d, want %d", tt.ram/gib, got, tt.maxLimit)
		}
		if got := i.Budget(); got != tt.wantBytes {
			t.Errorf("%+v.Budget() = %d, want %d", i, got, tt.wantBytes)
		}
		if got := i.String(); !strings.Contains(got, tt.sentence) {
			t.Errorf("%+v.String() = %q, want it to say %q", i, got, tt.sentence)
		}
	}
}

func TestAdvise(t *testing.T) {
	mac32 := Info{RAM: 32 * gib}
	// llama3.1 8B fp16 in the simulator: 256 KiB per token, 25600 fits.
	fit := Fit{Context: 25600, Step: 1024, Trained: 131072, BytesPerToken: 256 << 10}
	got := Advise(mac32, fit)
	// 75% of 32 GiB and 32 − 8 GiB are the same limit: one option.
	if len(got) != 1 || got[0].LimitMB != 24576 || got[0].Context != 35840 || got[0].LeftForMacOS != 8*gib {
		t.Fatalf("Advise(mac32) = %+v", got)
	}

	mac64 := Info{RAM: 64 * gib}
	got = Advise(mac64, Fit{Context: 65536, Step: 1024, Trained: 131072, BytesPerToken: 256 << 10})
	// The default is already 75%: only RAM less the reserve (12.8 GiB) is offered: 3.2 GiB more, 12288 tokens.
	if len(got) != 1 || got[0].LimitMB != 52428 || got[0].Context != 77824 {
		t.Fatalf("Advise(mac64) = %+v", got)
	}

	// Capped at the trained context.
	got = Advise(mac64, Fit{Context: 126976, Step: 4096, Trained: 131072, BytesPerToken: 256 << 10})
	if len(got) != 1 || got[0].Context != 131072 {
		t.Fatalf("Advise near the trained context = %+v, want 131072", got)
	}

	// A limit already at the maximum, no measured growth, or no fit: nothing to offer.
	for _, tt := range []struct {
		info Info
		fit  Fit
	}{
		{Info{RAM: 32 * gib, WiredLimitMB: 24576}, fit},
		{mac32, Fit{Context: 25600, Step: 1024}},
		{mac32, Fit{Step: 1024, BytesPerToken: 1}},
		{Info{}, fit},
	} {
		if got := Advise(tt.info, tt.fit); len(got) != 0 {
			t.Errorf("Advise(%+v, %+v) = %+v, want nothing", tt.info, tt.fit, got)
		}
	}
}

func TestCheckLimit(t *testing.T) {
	mac32 := Info{RAM: 32 * gib}
	tests := []struct {
		mb   int
		want string
	}{
		{0, ""},
		{24576, ""},
		{16384, ""}, // below the default is allowed: it only shrinks the GPU
		{24577, "leaves macOS only"},
		{32768, "more than this Mac's"},
		{-1, "use 0 for the macOS default"},
	}
	for _, tt := range tests {
		err := CheckLimit(mac32, tt.mb)
		if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("CheckLimit(%d) = %v, want %q", tt.mb, err, tt.want)
		}
	}
}

// The log lines come from Ollama's own tests of its macOS app
// (app/server/server_test.go), which reads the same line.
func TestOllamaBudget(t *testing.T) {
	tests := []struct {
		name string
		log  string
		want int64
		ok   bool
	}{
		{"metal", `time=2025-06-30T09:23:07.416-07:00 level=INFO source=types.go:130 msg="inference compute" id=0 library=metal variant="" compute="" driver=0.0 name="" total="96.0 GiB" available="96.0 GiB"
time=2025-06-30T09:23:07.417-07:00 level=INFO source=routes.go:1721 msg="vram-based default context" total_vram="96.0 GiB" default_num_ctx=262144`, 96 * gib, true},
		{"restarted with a new limit: the last line wins", `msg="inference compute" id=0 library=Metal total="21.3 GiB" available="21.3 GiB"
msg="inference compute" id=0 library=Metal total="24.0 GiB" available="24.0 GiB"`, 24 * gib, true},
		{"cpu only", `time=2025-07-01T17:59:51.470Z level=INFO source=types.go:130 msg="inference compute" id=0 library=cpu variant="" compute="" driver=0.0 name="" total="31.3 GiB" available="30.4 GiB"`, 0, false},
		{"cuda", `msg="inference compute" id=GPU-452cac9f library=cuda variant=v12 compute=6.1 driver=12.7 name="NVIDIA GeForce GT 1030" total="3.9 GiB" available="3.9 GiB"`, 0, false},
		{"garbage", "\x00\x01 not a log\n", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := OllamaBudget(strings.NewReader(tt.log))
			if err != nil || ok != tt.ok || (ok && absDiff(got, tt.want) > gib/20) {
				t.Errorf("OllamaBudget = %d, %v, %v; want about %d, %v", got, ok, err, tt.want, tt.ok)
			}
		})
	}
	if _, ok, err := OllamaBudgetFile(filepath.Join(t.TempDir(), "missing.log")); ok || err != nil {
		t.Errorf("a missing log: %v, %v; want nothing and no error", ok, err)
	}
	if _, _, err := OllamaBudgetFile(t.TempDir()); err == nil {
		t.Error("a directory where the log should be: no error")
	}
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

func TestPlist(t *testing.T) {
	got := Plist(24576)
	golden := filepath.Join("testdata", "wired-limit.plist")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("Plist(24576) =\n%s\nwant\n%s", got, want)
	}
	// It is well-formed XML whose program is sysctl with the limit.
	var doc struct {
		Dict struct {
			Strings []string `xml:"string"`
			Array   struct {
				Strings []string `xml:"string"`
			} `xml:"array"`
		} `xml:"dict"`
	}
	if err := xml.Unmarshal(got, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Dict.Strings) != 1 || doc.Dict.Strings[0] != PlistLabel ||
		strings.Join(doc.Dict.Array.Strings, " ") != "/usr/sbin/sysctl iogpu.wired_limit_mb=24576" {
		t.Errorf("plist parsed as %+v", doc)
	}
}

// stubSysctl writes a sysctl that prints ram and limit, and a sudo that
// records its arguments in a file; it returns both paths and the record.
func stubSysctl(t *testing.T, out string) (sysctl, sudo, record string) {
	t.Helper()
	dir := t.TempDir()
	sysctl = filepath.Join(dir, "sysctl")
	sudo = filepath.Join(dir, "sudo")
	record = filepath.Join(dir, "record")
	if err := os.WriteFile(sysctl, []byte("#!/bin/sh\nprintf '"+out+"'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sudo, []byte("#!/bin/sh\necho \"$@\" >> "+record+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return sysctl, sudo, record
}

func TestSysctl(t *testing.T) {
	sysctl, sudo, record := stubSysctl(t, `34359738368\n0\n`)
	s := Sysctl{Sysctl: sysctl, Sudo: sudo}
	info, err := s.Read(context.Background())
	if err != nil || info != (Info{RAM: 32 * gib}) {
		t.Fatalf("Read = %+v, %v", info, err)
	}
	if err := s.SetLimit(context.Background(), 24576); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(record)
	if want := sysctl + " iogpu.wired_limit_mb=24576\n"; string(got) != want {
		t.Errorf("sudo ran %q, want %q", got, want)
	}
	if s.Restarts() {
		t.Error("a real Ollama is restarted by the user, not by SetLimit")
	}

	// An Intel Mac or an old macOS lacks the key: sysctl fails, and says so.
	for _, out := range []string{`34359738368\n`, `lots\nof\n`, `-5\n0\n`} {
		bad, _, _ := stubSysctl(t, out)
		if _, err := (Sysctl{Sysctl: bad}).Read(context.Background()); err == nil {
			t.Errorf("sysctl printing %q: no error", out)
		}
	}
	if _, err := (Sysctl{Sysctl: filepath.Join(t.TempDir(), "none")}).Read(context.Background()); err == nil || !strings.Contains(err.Error(), "iogpu.wired_limit_mb") {
		t.Errorf("no sysctl: %v", err)
	}
	failing := filepath.Join(t.TempDir(), "sudo")
	os.WriteFile(failing, []byte("#!/bin/sh\nexit 1\n"), 0o755)
	if err := (Sysctl{Sysctl: sysctl, Sudo: failing}).SetLimit(context.Background(), 1); err == nil || errors.Is(err, ErrNotUnified) {
		t.Errorf("a failing sudo: %v", err)
	}
}
