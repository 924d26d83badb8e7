package autostart

import (
	"context"
	"sync"
	"time"

	"github.com/kardianos/service"
)

// Serve runs run until ctx ends. When Windows' service manager started this
// process (the --headless service), Serve also answers the service manager,
// which otherwise kills a service that does not report itself running, and
// ends run's context when the service manager asks the service to stop. If
// run returns on its own first, Serve asks the service manager to stop the
// service and returns run's error.
func Serve(ctx context.Context, run func(context.Context) error) error {
	if service.Interactive() {
		return run(ctx)
	}
	p := &serviceProgram{parent: ctx, run: run}
	s, err := service.New(p, &service.Config{Name: WindowsServiceName})
	if err != nil {
		return err
	}
	if err := s.Run(); err != nil {
		return err
	}
	return p.result()
}

// serviceProgram adapts run to kardianos/service's Interface.
type serviceProgram struct {
	parent context.Context
	run    func(context.Context) error

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// stopWait is how long Stop waits for run to return; the service manager
// allows about 20 s before it kills the process.
const stopWait = 15 * time.Second

func (p *serviceProgram) Start(s service.Service) error {
	ctx, cancel := context.WithCancel(p.parent)
	p.mu.Lock()
	p.cancel, p.done = cancel, make(chan struct{})
	p.mu.Unlock()
	go func() {
		err := p.run(ctx)
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
		if ctx.Err() == nil {
			s.Stop() // returned on its own: tell the service manager
		}
	}()
	return nil
}

func (p *serviceProgram) Stop(s service.Service) error {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	p.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
	case <-time.After(stopWait):
	}
	return nil
}

func (p *serviceProgram) result() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}
