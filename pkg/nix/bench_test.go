//go:build integration

package nix

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkBuildStandIn realises every stand-in package for two systems:
// "warm" when everything is already in the store (the cost of evaluating
// and asking Nix), "cold" from a copy of the stand-in whose derivations
// carry a fresh nonce, so that all 24 are built. Keep -benchtime small for
// the cold case: each run adds about 20 MB to the store.
func BenchmarkBuildStandIn(b *testing.B) {
	systems := []string{"x86_64-linux", "aarch64-linux"}
	build := func(b *testing.B, flake string) {
		nb := &Builder{Flake: flake}
		for _, s := range systems {
			if _, err := nb.Build(context.Background(), s, standInAttrs); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("warm", func(b *testing.B) {
		build(b, standIn(b))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			build(b, standIn(b))
		}
	})
	b.Run("cold", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			flake := freshStandIn(b)
			b.StartTimer()
			build(b, flake)
		}
	})
}

// freshStandIn copies the stand-in nixpkgs with a nonce in every
// derivation, so that none of its packages is in the store yet.
func freshStandIn(b *testing.B) string {
	src := strings.TrimPrefix(standIn(b), "path:")
	dir := b.TempDir()
	for _, name := range []string{"flake.nix", "flake.lock", "packages.nix"} {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			b.Fatal(err)
		}
		if name == "packages.nix" {
			s := string(data)
			marked := strings.Replace(s, "PATH = hostPath;",
				fmt.Sprintf("PATH = hostPath;\n      nonce = %q;", fmt.Sprint(time.Now().UnixNano())), 1)
			if marked == s {
				b.Fatal("packages.nix no longer sets PATH = hostPath; update freshStandIn")
			}
			data = []byte(marked)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return "path:" + dir
}
