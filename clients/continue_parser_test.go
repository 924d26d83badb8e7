package clients

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctxfit/ctxfit/internal/clientstest"
)

// TestContinueParserAcceptsFixedFiles runs Continue's own parser and
// validator (npm @continuedev/config-yaml) over every config.yaml ctxfit
// writes in the tests: the golden fixes, and the same fixes with Continue's
// CLI installed (which select derived models). Whatever Continue accepted
// before the fix it must accept after it. The fixtures are fragments, so
// the name and version Continue requires are added when they lack them.
func TestContinueParserAcceptsFixedFiles(t *testing.T) {
	dir := clientstest.Dir(t)
	tmp := t.TempDir()
	type pair struct{ in, out []string }
	var cases []pair
	var files []string
	write := func(name string, b []byte) string {
		body := bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
		var head []byte
		if !bytes.Contains(body, []byte("\nname:")) && !bytes.HasPrefix(body, []byte("name:")) {
			head = append(head, "name: ctxfit test\n"...)
		}
		if !bytes.Contains(body, []byte("\nversion:")) && !bytes.HasPrefix(body, []byte("version:")) {
			head = append(head, "version: 1.0.0\n"...)
		}
		if bytes.Contains(body, []byte("\r\n")) {
			head = bytes.ReplaceAll(head, []byte("\n"), []byte("\r\n"))
		}
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, append(head, body...), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
		return p
	}
	inputs, _ := filepath.Glob(filepath.Join("testdata", "continue", "*.yaml"))
	for _, in := range inputs {
		if strings.Contains(in, ".fixed.") {
			continue
		}
		src := readFile(t, in)
		base := strings.TrimSuffix(filepath.Base(in), ".yaml")
		c := pair{in: []string{write(base+".yaml", src)}}
		for _, cli := range []bool{false, true} {
			input := Input{Path: "config.yaml", Src: src}
			name := base + ".fixed.yaml"
			if cli {
				input.V1Readers, name = []string{"cn"}, base+".cn.yaml"
			}
			res, err := continueClient{}.Edit(input, clientTarget())
			if err != nil {
				t.Fatalf("%s: %v", in, err)
			}
			c.out = append(c.out, write(name, res.Out))
		}
		cases = append(cases, c)
	}
	cmd := exec.Command("node", append([]string{filepath.Join("..", "scripts", "continue-config-check.mjs")}, files...)...)
	cmd.Env = append(os.Environ(), "CTXFIT_CLIENTS_DIR="+dir)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("continue-config-check: %v\n%s", err, out)
	}
	var verdict map[string]string
	if err := json.Unmarshal(out, &verdict); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	valid := 0
	for _, c := range cases {
		if msg := verdict[c.in[0]]; msg != "" {
			t.Logf("%s: Continue rejects the input too: %s", filepath.Base(c.in[0]), msg)
			continue
		}
		valid++
		for _, o := range c.out {
			if msg := verdict[o]; msg != "" {
				t.Errorf("Continue accepts %s but not ctxfit's fix %s: %s", filepath.Base(c.in[0]), filepath.Base(o), msg)
			}
		}
	}
	if valid < 5 {
		t.Errorf("only %d of %d inputs are valid Continue configs; the check proves little", valid, len(cases))
	}
}
