package testenv

import (
	"testing"

	"github.com/nixery-action/nixery-action/internal/hostile"
)

// StartHostile starts a hostile registry (in this process, on loopback)
// that behaves as b says, and stops it when the test ends.
func StartHostile(t testing.TB, b hostile.Behaviour) *hostile.Registry {
	t.Helper()
	r := hostile.Start(b)
	t.Cleanup(r.Close)
	return r
}
