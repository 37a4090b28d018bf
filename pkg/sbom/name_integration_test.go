//go:build integration

package sbom

import (
	"testing"

	"gotest.tools/v3/assert"
)

// parseDrvName agrees with Nix's builtins.parseDrvName.
func TestParseDrvNameLikeNix(t *testing.T) {
	want := nixParseDrvNames(t, parseDrvNameCases)
	for i, s := range parseDrvNameCases {
		name, version := parseDrvName(s)
		assert.DeepEqual(t, [2]string{name, version}, want[i])
	}
}

var parseDrvNameCases = []string{
	"hello", "hello-2.12.1", "python3.12-requests-2.31.0", "bash-interactive-5.2p37",
	"libsqlite3-0-3.40.1-2+deb12u2", "foo-bin", "a--1", "hello-", "x-_1", "nixos-system-x-24.05.2",
	"font-misc-misc-1.1.3", "gst-plugins-base-1.24.3", "ca-certificates.crt", "X11-rgb-1",
}
