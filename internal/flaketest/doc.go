// Package flaketest tests how this repository is shipped: the Nix flake
// (built, run, checked and entered offline against a stand-in nixpkgs from
// testdata/flake-nixpkgs), the vendorHash it pins, and rules every GitHub
// workflow must keep. It holds tests only.
package flaketest
