package nix

import "syscall"

// sysProcAttr puts Nix in a process group of its own (so that its
// builders can be stopped with it) and, through Pdeathsig, stops it when
// this process dies without cancelling.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
