// Package e2e runs the nixery binary as users do, against real Nix, a real
// registry and image clients we did not write (skopeo, umoci, podman).
// It holds tests only, all behind the integration build tag (they need
// those tools): go test -tags integration ./e2e.
package e2e
