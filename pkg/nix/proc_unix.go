//go:build unix && !linux

package nix

import "syscall"

// sysProcAttr puts Nix in a process group of its own, so that its builders
// can be stopped with it. Pdeathsig exists only on Linux: elsewhere Nix
// outlives this process if it dies without cancelling.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
