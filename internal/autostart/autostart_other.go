//go:build !linux && !darwin && !windows

package autostart

import "runtime"

func newBackend(o Options) (backend, error) { return nil, errUnsupported(runtime.GOOS) }
