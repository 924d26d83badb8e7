// Package fanout delivers values from one producer to any number of
// consumers without letting a slow consumer block the producer: each
// consumer has its own bounded queue, and past its bound the two oldest
// values are merged into one, so nothing a merge keeps is lost.
package fanout

import (
	"sync"
)

// MaxQueued is how many values wait for one consumer before the oldest are
// merged.
const MaxQueued = 64

// Fanout sends each published value to every subscriber. The zero value is
// not usable; call New.
type Fanout[T any] struct {
	merge func(older, newer T) T

	mu   sync.Mutex
	subs map[*subscriber[T]]struct{}
}

// New returns a Fanout that merges two queued values with merge (the older
// first) when a consumer falls MaxQueued values behind.
func New[T any](merge func(older, newer T) T) *Fanout[T] {
	return &Fanout[T]{merge: merge, subs: map[*subscriber[T]]struct{}{}}
}

// Publish queues v for every subscriber; it never blocks.
func (f *Fanout[T]) Publish(v T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		s.push(v, f.merge)
	}
}

// Subscribe returns a channel of the values published from now on, in
// order, and a function that ends the subscription and closes the channel.
func (f *Fanout[T]) Subscribe() (<-chan T, func()) {
	s := &subscriber[T]{signal: make(chan struct{}, 1), out: make(chan T), done: make(chan struct{})}
	f.mu.Lock()
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	go s.forward()
	var once sync.Once
	return s.out, func() {
		once.Do(func() {
			f.mu.Lock()
			delete(f.subs, s)
			f.mu.Unlock()
			close(s.done)
		})
	}
}

type subscriber[T any] struct {
	mu     sync.Mutex
	queue  []T
	signal chan struct{}
	out    chan T
	done   chan struct{}
}

func (s *subscriber[T]) push(v T, merge func(T, T) T) {
	s.mu.Lock()
	if len(s.queue) >= MaxQueued {
		s.queue[1] = merge(s.queue[0], s.queue[1])
		s.queue = append(s.queue[:0], s.queue[1:]...)
	}
	s.queue = append(s.queue, v)
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

func (s *subscriber[T]) forward() {
	defer close(s.out)
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.mu.Unlock()
			select {
			case <-s.signal:
				continue
			case <-s.done:
				return
			}
		}
		v := s.queue[0]
		s.queue = s.queue[1:]
		s.mu.Unlock()
		select {
		case s.out <- v:
		case <-s.done:
			return
		}
	}
}
