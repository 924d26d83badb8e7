package fanout

import (
	"testing"
	"time"
)

// A consumer that does not read never blocks the producer; when it reads,
// it gets every value, the oldest merged.
func TestSlowConsumerLosesNothing(t *testing.T) {
	f := New(func(a, b []int) []int { return append(append([]int{}, a...), b...) })
	ch, stop := f.Subscribe()
	defer stop()
	done := make(chan struct{})
	go func() {
		for i := range 1000 {
			f.Publish([]int{i})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a consumer that does not read")
	}
	var got []int
	for len(got) < 1000 {
		select {
		case v := <-ch:
			got = append(got, v...)
		case <-time.After(5 * time.Second):
			t.Fatalf("got %d of 1000 values", len(got))
		}
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("value %d is %d: out of order", i, v)
		}
	}
}

func TestStopClosesAndUnsubscribes(t *testing.T) {
	f := New(func(a, b int) int { return b })
	ch, stop := f.Subscribe()
	stop()
	stop() // twice is fine
	if _, ok := <-ch; ok {
		t.Error("the channel is open after stop")
	}
	f.Publish(1) // no subscriber left: nothing blocks, nothing panics
	if len(f.subs) != 0 {
		t.Errorf("%d subscribers after stop", len(f.subs))
	}
}
