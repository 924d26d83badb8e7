package atomicfile

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// raceRounds is how many rounds the race tests run: CTXFIT_RACE_ROUNDS, else
// a number that keeps `go test` short.
func raceRounds(t *testing.T, short int) int {
	if s := os.Getenv("CTXFIT_RACE_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("CTXFIT_RACE_ROUNDS=%q is not a positive number", s)
		}
		return n
	}
	return short
}

// A writer is another program writing the file: in place (truncating at
// open, or opening first and truncating later) or by renaming a new version
// over it.
type writer func(path string, content []byte, rng *rand.Rand) error

var writers = map[string]writer{
	"in place": func(path string, content []byte, rng *rand.Rand) error {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		half := len(content) / 2
		f.Write(content[:half])
		spin(rng.IntN(100))
		f.Write(content[half:])
		return f.Close()
	},
	"opened early, truncated late": func(path string, content []byte, rng *rand.Rand) error {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		spin(rng.IntN(200))
		f.Truncate(0)
		f.WriteAt(content, 0)
		return f.Close()
	},
	"by rename": func(path string, content []byte, rng *rand.Rand) error {
		tmp := path + ".other-" + strconv.Itoa(rng.Int())
		if err := os.WriteFile(tmp, content, 0o644); err != nil {
			return err
		}
		spin(rng.IntN(100))
		return os.Rename(tmp, path)
	},
}

// spin waits about n microseconds without giving up the thread, so that
// the race has fine-grained timing.
func spin(n int) {
	end := time.Now().Add(time.Duration(n) * time.Microsecond)
	for time.Now().Before(end) {
	}
}

// TestReplaceRace races Replace, retried from a fresh read as a fix does,
// against another writer writing once or twice at random moments, and
// checks after every round that the other writer's last content survives:
// as written, or with the replacer's change applied on top of it.
func TestReplaceRace(t *testing.T) {
	rounds := raceRounds(t, 600)
	dir := t.TempDir()
	p := filepath.Join(dir, "config")
	names := []string{"in place", "opened early, truncated late", "by rename"}
	var replaced, retried, gaveUp, lost int
	for round := 0; round < rounds; round++ {
		rng := rand.New(rand.NewPCG(uint64(round), 42))
		if err := os.WriteFile(p, []byte("base\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		var last []byte
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			spin(rng.IntN(300))
			for i := 0; i <= rng.IntN(2); i++ {
				name := names[rng.IntN(len(names))]
				last = fmt.Appendf(nil, "round %d write %d %s\n", round, i, name)
				if err := writers[name](p, last, rng); err != nil {
					t.Error(err)
				}
				spin(rng.IntN(100))
			}
		}()
		for attempt := 0; ; attempt++ {
			src, err := os.ReadFile(p)
			if err != nil {
				continue // between a rename's two steps on some systems; read again
			}
			f, err := os.CreateTemp(dir, TempPattern("config"))
			if err != nil {
				t.Fatal(err)
			}
			f.Write(append(src, "fixed\n"...))
			f.Close()
			err = Replace(p, f.Name(), src)
			if err == nil {
				replaced++
				break
			}
			if !errors.Is(err, ErrChanged) {
				t.Fatalf("round %d: %v", round, err)
			}
			retried++
			if attempt == 5 {
				gaveUp++
				break
			}
		}
		wg.Wait()
		got, _ := os.ReadFile(p)
		if string(got) != string(last) && string(got) != string(last)+"fixed\n" {
			lost++
			t.Errorf("round %d: the file holds %q; the other writer's last write was %q", round, got, last)
		}
		ents, _ := os.ReadDir(dir)
		if len(ents) != 1 {
			t.Fatalf("round %d: %d files in the directory, want the config alone", round, len(ents))
		}
	}
	t.Logf("%d rounds: %d replaced, %d retries after a concurrent write, %d gave up, %d lost writes", rounds, replaced, retried, gaveUp, lost)
}
