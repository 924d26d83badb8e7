// Package clientstest gives tests the real AI clients from npm that
// scripts/clients-for-tests installs (Continue's CLI and config parser,
// opencode, Codex).
package clientstest

import (
	"os"
	"os/exec"
	"testing"
)

// Dir returns the directory of the real clients ($CTXFIT_CLIENTS_DIR),
// skipping the test with how to get them when they are absent, or failing
// it when CTXFIT_REQUIRE_CLIENTS is set (CI).
func Dir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("CTXFIT_CLIENTS_DIR")
	if dir == "" {
		if os.Getenv("CTXFIT_REQUIRE_CLIENTS") != "" {
			t.Fatal("CTXFIT_CLIENTS_DIR is not set; run export CTXFIT_CLIENTS_DIR=$(scripts/clients-for-tests)")
		}
		t.Skip("the real clients are not installed; export CTXFIT_CLIENTS_DIR=$(scripts/clients-for-tests) to run this test")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("CTXFIT_CLIENTS_DIR is set but node is not on PATH: %v", err)
	}
	return dir
}
