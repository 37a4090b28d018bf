//go:build integration

package nix

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// standIn is the flake reference of the repository's stand-in nixpkgs.
func standIn(t testing.TB) string {
	dir, err := filepath.Abs("../../testdata/nixpkgs")
	if err != nil {
		t.Fatal(err)
	}
	return "path:" + dir
}

// writeFlake writes a flake whose legacyPackages.<system> (for both test
// systems) is the Nix expression pkgs, a function of system and of nonce,
// a string unique to this call so that its derivations are always built
// afresh. It returns the flake's reference.
func writeFlake(t testing.TB, pkgs string) string {
	t.Helper()
	dir := t.TempDir()
	nonce := fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())
	flake := fmt.Sprintf(`{
  outputs = { self }:
    let
      nonce = %q;
      mk = system: name: script: builtins.derivation {
        inherit name system nonce;
        builder = "/bin/sh";
        args = [ "-eu" "-c" script ];
        PATH = "/usr/bin:/bin";
      };
      pkgsFor = system: let drv = mk system; in (%s);
    in {
      legacyPackages.x86_64-linux = pkgsFor "x86_64-linux";
      legacyPackages.aarch64-linux = pkgsFor "aarch64-linux";
    };
}
`, nonce, pkgs)
	if err := os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(flake), 0o644); err != nil {
		t.Fatal(err)
	}
	return "path:" + dir
}
