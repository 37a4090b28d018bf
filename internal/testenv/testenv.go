// Package testenv gives tests the real tools they need. A missing tool
// fails the test with what to run; tests never skip, so CI cannot pass
// without exercising them.
package testenv

import (
	"os/exec"
	"testing"
)

// Require fails the test unless every named program is on PATH.
func Require(t testing.TB, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s is not installed: run scripts/setup.sh (as root) first", p)
		}
	}
}
