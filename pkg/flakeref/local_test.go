package flakeref

import (
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestWithoutDirectory: an installable names no directory of this
// machine; relative and remote ones are kept as given.
func TestWithoutDirectory(t *testing.T) {
	for in, want := range map[string]string{
		".#app":                                   ".#app",
		"./sub#pkg":                               "./sub#pkg",
		"path:../x#pkg":                           "path:../x#pkg",
		"/home/runner/work/app/app#app":           ".../app#app",
		"path:/tmp/TestX/001/many#many":           "path:.../many#many",
		"path:/tmp/TestX/001/many/":               "path:.../many",
		"git+file:///tmp/a/fa?ref=feature#app":    "git+file:.../fa?ref=feature#app",
		"git+file://localhost/tmp/a/fa#app":       "git+file:.../fa#app",
		"tarball+file:///tmp/a/src.tar.gz#pkg":    "tarball+file:.../src.tar.gz#pkg",
		"github:owner/repo#pkg":                   "github:owner/repo#pkg",
		"git+https://host/x?ref=main#pkg":         "git+https://host/x?ref=main#pkg",
		"git+https://oauth2:tok@host/x#pkg":       "git+https://REDACTED@host/x#pkg",
		"git+ssh://git@host.example/tmp/repo#pkg": "git+ssh://git@host.example/tmp/repo#pkg",
	} {
		assert.Check(t, is.Equal(WithoutDirectory(in), want), in)
	}
}

// TestRecorded: a local flake is recorded by its input type, where the
// user pointed and what locks it; no directory, no branch. Remote ones
// keep their locked reference, credentials hidden.
func TestRecorded(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	const hash = "sha256-AbC+/dEf="
	for _, c := range []struct{ given, locked, rev, narHash, want string }{
		{".", "git+file:///tmp/T1/fa?ref=master&rev=" + rev, rev, hash, "git+file:.?rev=" + rev},
		{".", "git+file:///tmp/T2/other/fa?ref=feature&rev=" + rev, rev, "", "git+file:.?rev=" + rev},
		{".", "git+file:///tmp/T2/fa?rev=" + rev, rev, "", "git+file:.?rev=" + rev}, // detached HEAD
		{"./sub", "git+file:///tmp/T1/fa?dir=sub&ref=main&rev=" + rev, rev, "", "git+file:./sub?rev=" + rev},
		// Nix reads a + as itself: a space stays %20, a + is %2B.
		{"git+file:.?dir=my%20flake", "git+file:///tmp/T1/fa?dir=my%20flake&rev=" + rev, rev, "", "git+file:.?dir=my%20flake&rev=" + rev},
		{"git+file:.?dir=a+b", "git+file:///tmp/T1/fa?dir=a%2Bb&rev=" + rev, rev, "", "git+file:.?dir=a%2Bb&rev=" + rev},
		{"git+file:///tmp/T1/fa?dir=sub&ref=main", "git+file:///tmp/T1/fa?dir=sub&ref=main&rev=" + rev, rev, "", "git+file:.../fa?dir=sub&rev=" + rev},
		{".", "path:/tmp/T1/many?narHash=" + hash, "", hash, "path:.?narHash=sha256-AbC%2B/dEf%3D"},
		{"path:/tmp/T1/many", "path:/tmp/T1/many?narHash=" + hash, "", hash, "path:.../many?narHash=sha256-AbC%2B/dEf%3D"},
		// A checkout with uncommitted changes, built from its copy.
		{".", "path:/nix/store/aaaa-source?narHash=" + hash, "", hash, "path:.?narHash=sha256-AbC%2B/dEf%3D"},
		// A registry name for a local flake: its directory hidden.
		{"flake:mine", "path:/srv/flakes/mine?narHash=" + hash, "", hash, "path:.../mine?narHash=sha256-AbC%2B/dEf%3D"},
		{"github:owner/repo", "github:owner/repo/" + rev + "?narHash=" + hash, rev, hash, "github:owner/repo/" + rev + "?narHash=" + hash},
		{"git+https://oauth2:tok@host/x", "git+https://oauth2:tok@host/x?ref=main&rev=" + rev, rev, "", "git+https://REDACTED@host/x?ref=main&rev=" + rev},
	} {
		assert.Check(t, is.Equal(Recorded(c.given, c.locked, c.rev, c.narHash), c.want), "%s locked as %s", c.given, c.locked)
	}
}
