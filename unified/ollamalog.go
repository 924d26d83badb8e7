package unified

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/ollama/ollama/format"
)

// OllamaLogPath returns where the Ollama app for macOS writes its server log,
// ~/.ollama/logs/server.log.
func OllamaLogPath(home string) string {
	return filepath.Join(home, ".ollama", "logs", "server.log")
}

var (
	computeLine = regexp.MustCompile(`msg="inference compute".*\blibrary=(?:"?)([A-Za-z]+)`)
	totalField  = regexp.MustCompile(`\btotal="([0-9.]+ [KMGT]i?B)"`)
)

// OllamaBudget returns the GPU budget the Ollama server last started with,
// read from the last `msg="inference compute" library=metal` line of its
// log (Ollama logs it once at start-up, and its own macOS app reads the same
// line). ok is false when the log has no such line.
func OllamaBudget(r io.Reader) (budget int64, ok bool, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		m := computeLine.FindStringSubmatch(line)
		if m == nil || !strings.EqualFold(m[1], "metal") {
			continue
		}
		t := totalField.FindStringSubmatch(line)
		if t == nil {
			continue
		}
		if b, perr := parseHumanBytes(t[1]); perr == nil {
			budget, ok = b, true
		}
	}
	return budget, ok, sc.Err()
}

// OllamaBudgetFile is OllamaBudget of the log at path; a missing log is not
// an error (ok is false).
func OllamaBudgetFile(path string) (int64, bool, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if !fi.Mode().IsRegular() {
		return 0, false, fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	return OllamaBudget(f)
}

// parseHumanBytes reads Ollama's format.HumanBytes2 output ("21.3 GiB").
func parseHumanBytes(s string) (int64, error) {
	var v float64
	var unit string
	if _, err := fmt.Sscanf(s, "%g %s", &v, &unit); err != nil {
		return 0, err
	}
	mult := map[string]float64{
		"B": 1, "KiB": format.KibiByte, "MiB": format.MebiByte, "GiB": format.GibiByte, "TiB": 1 << 40,
		"KB": format.KiloByte, "MB": format.MegaByte, "GB": format.GigaByte, "TB": 1e12,
	}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("unknown unit %q", unit)
	}
	return int64(v * mult), nil
}
