package ollamatest

import "syscall"

// setParentDeathSignal kills the server when the test binary dies without
// running its cleanups (a panic, a timeout, Ctrl-C).
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
