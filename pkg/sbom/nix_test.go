//go:build integration

package sbom

import (
	"encoding/json"
	"os"
	"os/exec"
	"testing"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// nixParseDrvNames asks Nix for builtins.parseDrvName of each name.
func nixParseDrvNames(t *testing.T, names []string) [][2]string {
	t.Helper()
	testenv.Require(t, "nix")
	arg, err := json.Marshal(names)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nix-instantiate", "--eval", "--json", "--strict", "--expr",
		`{ names }: map (n: let p = builtins.parseDrvName n; in [ p.name p.version ]) (builtins.fromJSON names)`,
		"--argstr", "names", string(arg))
	cmd.Env = append(os.Environ(), "NIX_CONFIG="+testenv.NixConfig)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nix-instantiate: %v", err)
	}
	var got [][2]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	return got
}
