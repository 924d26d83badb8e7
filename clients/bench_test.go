package clients

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkContinueEdit measures the in-memory edit of a typical config
// (several models, comments): parse, splice, re-parse and check.
func BenchmarkContinueEdit(b *testing.B) {
	for _, name := range []string{"json_several.json", "yaml_several.yaml"} {
		src, err := os.ReadFile(filepath.Join("testdata", "continue", name))
		if err != nil {
			b.Fatal(err)
		}
		in := Input{Path: "config" + filepath.Ext(name), Src: src}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				if _, err := (continueClient{}).Edit(in, testTarget()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFix measures one whole fix of a typical config on disk: read,
// edit, check, back up, write a temporary file, fsync and rename. Each
// iteration puts the unfixed file back first (not timed).
func BenchmarkFix(b *testing.B) {
	for _, name := range []string{"json_several.json", "yaml_several.yaml"} {
		src, err := os.ReadFile(filepath.Join("testdata", "continue", name))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			home := b.TempDir()
			dir := filepath.Join(home, ".continue")
			os.MkdirAll(dir, 0o755)
			p := filepath.Join(dir, "config"+filepath.Ext(name))
			f := &Fixer{Env: Env{Home: home, Getenv: func(string) string { return "" }}, StateDir: b.TempDir()}
			for b.Loop() {
				b.StopTimer()
				if err := os.WriteFile(p, src, 0o644); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				rep, err := f.Fix(context.Background(), continueClient{}, testTarget(), false)
				if err != nil || !rep.Written {
					b.Fatalf("%+v, %v", rep, err)
				}
			}
		})
	}
}

// BenchmarkClientEdit measures the in-memory edit of each client's first
// golden input that changes: parse, splice, re-parse and check.
func BenchmarkClientEdit(b *testing.B) {
	for _, c := range All() {
		m := loadConformance(b, c)
		for _, file := range goldenInputs(b, c) {
			in := m.input(b, file)
			if res, err := c.Edit(in, clientTarget()); err != nil || len(res.Changes) == 0 {
				continue
			}
			b.Run(c.Name(), func(b *testing.B) {
				b.SetBytes(int64(len(in.Src)))
				for b.Loop() {
					if _, err := c.Edit(in, clientTarget()); err != nil {
						b.Fatal(err)
					}
				}
			})
			break
		}
	}
}
