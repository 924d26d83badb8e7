package clients

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctxfit/ctxfit/internal/ollamahost"
)

// FuzzContinueEdit checks, for any file, that Edit either refuses it or
// returns a file that parses, holds the new values (a second edit changes
// nothing), and equals the input outside the changed spans. The seeds are
// the golden inputs and the corpus in testdata/fuzz/FuzzContinueEdit.
func FuzzContinueEdit(f *testing.F) {
	for _, in := range goldenCases(f) {
		src, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src, strings.HasSuffix(in, ".yaml"), uint32(24576))
	}
	f.Fuzz(func(t *testing.T, src []byte, yml bool, tuned uint32) {
		path := "config.json"
		if yml {
			path = "config.yaml"
		}
		n := 256 + int(tuned%(1<<20))
		tgt := Target{Host: ollamahost.Parse(""), Tuned: func(string) (int, bool) { return n, true }}
		orig := append([]byte(nil), src...)
		res, err := continueClient{}.Edit(Input{Path: path, Src: src}, tgt)
		if !bytes.Equal(src, orig) {
			t.Fatal("Edit modified its input")
		}
		if err != nil {
			if strings.Contains(err.Error(), "internal error") {
				// Not a crash and nothing written, but a file ctxfit should
				// have handled or refused as unparsable: worth knowing.
				t.Logf("refused with %v", err)
			}
			return
		}
		checkEditProperties(t, path, src, res, tgt)
		if _, err := (continueClient{}).Asks(Input{Path: path, Src: res.Out}, tgt); err != nil {
			t.Fatalf("Asks on the output: %v", err)
		}
	})
}

// TestFuzzCorpusPresent keeps the committed corpus from going missing: the
// seeds there are inputs that once broke or nearly broke the editors.
func TestFuzzCorpusPresent(t *testing.T) {
	m, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzContinueEdit", "*"))
	if len(m) == 0 {
		t.Fatal("testdata/fuzz/FuzzContinueEdit is empty")
	}
}
