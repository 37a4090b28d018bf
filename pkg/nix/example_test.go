package nix_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/nix"
	"github.com/nixery-action/nixery-action/pkg/spec"
)

// How the build command uses spec and nix: names and platforms in, per
// platform a closure graph whose roots are the requested packages.
func Example() {
	s, err := spec.Parse([]string{"shell/hello"}, spec.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	requested, err := spec.ParsePlatforms("linux/amd64,linux/arm64")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	b := &nix.Builder{
		Flake:   "github:NixOS/nixpkgs/nixos-26.05",
		Timeout: 30 * time.Minute,
		Log:     os.Stderr,
	}
	for _, p := range s.SelectPlatforms(requested) {
		res, err := b.Build(context.Background(), p.System, s.Packages)
		if err != nil {
			fmt.Fprintln(os.Stderr, err) // e.g. not found in nixpkgs for aarch64-linux: foo, bar
			return
		}
		// The outputs are garbage collector roots until released: once
		// read into layers.
		defer res.Release()
		g, err := layers.ParseGraph(res.Closure)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return
		}
		if err := g.SetRoots(res.Roots()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return
		}
		// res.Packages maps each attribute to its outputs, for the
		// customisation layer's symlinks; s.Shell asks for Cmd ["bash"];
		// p gives the image's os, architecture and variant.
		fmt.Println(p, len(g.Paths), s.Shell)
	}
}
