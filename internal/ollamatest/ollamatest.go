// Package ollamatest runs a real Ollama server for ctxfit's tests: it finds
// the binary that scripts/ollama-for-tests builds, starts `ollama serve` on a
// free loopback port with its own model store, and creates a tiny llama
// model that loads and generates on the CPU in well under a second.
//
// Tests that need the server call Start; without a binary they skip with a
// message saying how to get one, unless CTXFIT_REQUIRE_OLLAMA=1 (set by CI),
// which turns the skip into a failure.
package ollamatest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Version is the Ollama release that scripts/ollama-for-tests builds. Keep
// it in step with the script and with go.mod's github.com/ollama/ollama.
const Version = "v0.17.4"

// Environment variables that steer the harness.
const (
	// BinEnv names an Ollama binary to use instead of the cached build.
	BinEnv = "CTXFIT_OLLAMA_BIN"
	// RequireEnv set to 1 makes a missing binary fail tests instead of
	// skipping them, so that CI cannot pass without the real server.
	RequireEnv = "CTXFIT_REQUIRE_OLLAMA"
	// VulkanBinEnv names an Ollama binary with the Vulkan backend beside
	// it (the layout scripts/ollama-vulkan-for-tests makes) to use
	// instead of the cached build.
	VulkanBinEnv = "CTXFIT_OLLAMA_VULKAN_BIN"
	// RequireVulkanEnv set to 1 makes a missing Vulkan build or software
	// GPU fail the GPU tests instead of skipping them.
	RequireVulkanEnv = "CTXFIT_REQUIRE_OLLAMA_VULKAN"
)

// ErrNotFound is returned by Find when no Ollama binary is available.
var ErrNotFound = errors.New("no Ollama binary found")

// CachedBin returns where scripts/ollama-for-tests puts the binary:
// ${XDG_CACHE_HOME:-$HOME/.cache}/ctxfit/ollama-<Version>/bin/ollama.
// It returns "" when neither variable is set.
func CachedBin() string { return cached("ollama-" + Version) }

// CachedVulkanBin returns where scripts/ollama-vulkan-for-tests puts the
// server with its Vulkan backend:
// ${XDG_CACHE_HOME:-$HOME/.cache}/ctxfit/ollama-vulkan-<Version>/bin/ollama.
func CachedVulkanBin() string { return cached("ollama-vulkan-" + Version) }

// CacheDir returns ctxfit's directory under ${XDG_CACHE_HOME:-$HOME/.cache},
// where the scripts put their builds and the GPU tests their measurements;
// "" when neither variable is set.
func CacheDir() string {
	root := os.Getenv("XDG_CACHE_HOME")
	if root == "" {
		home := os.Getenv("HOME")
		if home == "" {
			return ""
		}
		root = filepath.Join(home, ".cache")
	}
	return filepath.Join(root, "ctxfit")
}

func cached(dir string) string {
	root := CacheDir()
	if root == "" {
		return ""
	}
	name := "ollama"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	return filepath.Join(root, dir, "bin", name)
}

// Find returns the Ollama binary to test against: $CTXFIT_OLLAMA_BIN, else
// the build cached by scripts/ollama-for-tests, else `ollama` on PATH. A
// $CTXFIT_OLLAMA_BIN that does not exist is an error, not a fallback.
func Find() (string, error) {
	if bin := os.Getenv(BinEnv); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("%s=%s: %w", BinEnv, bin, err)
		}
		return bin, nil
	}
	if bin := CachedBin(); bin != "" {
		if fi, err := os.Stat(bin); err == nil && !fi.IsDir() {
			return bin, nil
		}
	}
	if bin, err := exec.LookPath("ollama"); err == nil {
		return bin, nil
	}
	return "", ErrNotFound
}

// Require returns the Ollama binary or ends the test: a skip that says how
// to get one, or a failure when $CTXFIT_REQUIRE_OLLAMA is 1.
func Require(tb testing.TB) string {
	tb.Helper()
	bin, err := Find()
	if err == nil {
		return bin
	}
	msg := fmt.Sprintf("%v: these tests need a real Ollama server. Run scripts/ollama-for-tests "+
		"(builds Ollama %s once, about 10 minutes, into %s), set %s to an ollama binary, or put ollama on PATH",
		err, Version, CachedBin(), BinEnv)
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatalf("%s (%s=1 makes this a failure)", msg, RequireEnv)
		return ""
	}
	tb.Skip(msg)
	return ""
}

// FindVulkan returns the Ollama binary with the Vulkan backend:
// $CTXFIT_OLLAMA_VULKAN_BIN, else the build cached by
// scripts/ollama-vulkan-for-tests.
func FindVulkan() (string, error) {
	if bin := os.Getenv(VulkanBinEnv); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("%s=%s: %w", VulkanBinEnv, bin, err)
		}
		return bin, nil
	}
	if bin := CachedVulkanBin(); bin != "" {
		if fi, err := os.Stat(bin); err == nil && !fi.IsDir() {
			return bin, nil
		}
	}
	return "", ErrNotFound
}

// RequireVulkan returns the Ollama binary with the Vulkan backend or ends
// the test: a skip that says how to get one, or a failure when
// $CTXFIT_REQUIRE_OLLAMA_VULKAN is 1.
func RequireVulkan(tb testing.TB) string {
	tb.Helper()
	bin, err := FindVulkan()
	if err == nil {
		return bin
	}
	skipOrFail(tb, RequireVulkanEnv, fmt.Sprintf("%v: these tests need Ollama with its Vulkan backend on Mesa's software GPU. "+
		"Run scripts/ollama-vulkan-for-tests (builds it once, 10–15 minutes, into %s) or set %s",
		err, filepath.Dir(filepath.Dir(CachedVulkanBin())), VulkanBinEnv))
	return ""
}

// skipOrFail skips the test with msg, or fails it when the environment
// variable require is 1.
func skipOrFail(tb testing.TB, require, msg string) {
	tb.Helper()
	if os.Getenv(require) == "1" {
		tb.Fatalf("%s (%s=1 makes this a failure)", msg, require)
	}
	tb.Skip(msg)
}
