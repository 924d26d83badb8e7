package autostart

import "github.com/kardianos/service"

// noProgram is the service.Interface for services that ctxfit only
// installs and controls; the service itself runs in another process.
type noProgram struct{}

func (noProgram) Start(service.Service) error { return nil }
func (noProgram) Stop(service.Service) error  { return nil }
