package instance

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary hold a lock in a child process, because a
// lock is per process on some systems and per file description on others.
func TestMain(m *testing.M) {
	if dir := os.Getenv("INSTANCE_TEST_HOLD"); dir != "" {
		l, err := Acquire(dir, "http://127.0.0.1:11434")
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("held")
		time.Sleep(time.Minute)
		l.Release()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestAcquire(t *testing.T) {
	dir := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "INSTANCE_TEST_HOLD="+dir)
	out, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	buf := make([]byte, 64)
	n, _ := out.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "held") {
		t.Fatalf("child: %q", buf[:n])
	}

	_, err := Acquire(dir, "http://127.0.0.1:11434")
	if !errors.Is(err, ErrRunning) || !strings.Contains(err.Error(), fmt.Sprintf("process %d", child.Process.Pid)) {
		t.Fatalf("second Acquire: %v; want ErrRunning naming process %d", err, child.Process.Pid)
	}
	// Another server is another instance.
	other, err := Acquire(dir, "http://gpu-box:11434")
	if err != nil {
		t.Fatalf("lock for another host: %v", err)
	}
	other.Release()

	// The lock goes with the process, however it ends.
	child.Process.Kill()
	child.Wait()
	l, err := Acquire(dir, "http://127.0.0.1:11434")
	if err != nil {
		t.Fatalf("Acquire after the holder died: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Error(err)
	}
	if err := l.Release(); err != nil {
		t.Errorf("second Release: %v", err)
	}
}
