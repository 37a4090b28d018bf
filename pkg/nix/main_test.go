package nix

import (
	"os"
	"testing"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

func TestMain(m *testing.M) {
	os.Setenv("NIX_CONFIG", testenv.NixConfig)
	os.Exit(m.Run())
}
