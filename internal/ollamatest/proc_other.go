//go:build !unix

package ollamatest

import "os/exec"

// setProcessGroup does nothing: without Unix process groups, Close stops
// only the server, which stops its runners when it exits normally.
func setProcessGroup(*exec.Cmd) {}

// stopGroup stops the server; there is no gentler signal to send here.
func stopGroup(cmd *exec.Cmd, kill bool) { cmd.Process.Kill() }
