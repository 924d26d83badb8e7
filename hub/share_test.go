package hub

import (
	"testing"
	"time"
)

func TestSetGPUShareTellsOnce(t *testing.T) {
	h := New("http://127.0.0.1:11434", time.Now)
	ch, stop := h.Subscribe()
	defer stop()
	h.SetGPUShare("GPU may use 24.0 GiB of 32.0 GiB")
	h.SetGPUShare("GPU may use 24.0 GiB of 32.0 GiB") // unchanged: no update
	h.SetGPUShare("")
	var got []string
	for len(got) < 2 {
		select {
		case u := <-ch:
			got = append(got, u.GPUShare)
		case <-time.After(2 * time.Second):
			t.Fatalf("updates %q, want two", got)
		}
	}
	select {
	case u := <-ch:
		t.Errorf("a third update %+v", u.GPUShare)
	case <-time.After(100 * time.Millisecond):
	}
	if got[0] != "GPU may use 24.0 GiB of 32.0 GiB" || got[1] != "" || h.State().GPUShare != "" {
		t.Errorf("updates %q", got)
	}
}
