//go:build unix

package nix

import "syscall"

// killGroup signals Nix's process group: SIGTERM, or SIGKILL when hard.
func killGroup(pid int, hard bool) error {
	sig := syscall.SIGTERM
	if hard {
		sig = syscall.SIGKILL
	}
	return syscall.Kill(-pid, sig)
}
