package flakeref

import (
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// The locked references of the same sources as Nix 2.8 and Nix 2.26
// print them (seen on this project's machines), and others.
func TestCanonical(t *testing.T) {
	const rev = "a6c9e5e84b02873e67539e08ff5bbb949a24c5c5"
	for _, tc := range []struct {
		printed []string
		want    string
	}{
		{[]string{
			"path:/src/nixpkgs?narHash=sha256-90OIdKdNDH2vXNDQK7m%2fhNNCrBIB9IkUqgllkfvsXOo=", // 2.8
			"path:/src/nixpkgs?narHash=sha256-90OIdKdNDH2vXNDQK7m/hNNCrBIB9IkUqgllkfvsXOo%3D", // 2.26
		}, "path:/src/nixpkgs?narHash=sha256-90OIdKdNDH2vXNDQK7m/hNNCrBIB9IkUqgllkfvsXOo%3D"},
		{[]string{
			"github:NixOS/nixpkgs/" + rev + "?narHash=sha256-et1qSyVmYH1K3nGaYCHvcf6KPDe2YraKXXhAg%2fMwFwE=",
			"github:NixOS/nixpkgs/" + rev + "?narHash=sha256-et1qSyVmYH1K3nGaYCHvcf6KPDe2YraKXXhAg/MwFwE%3D",
		}, "github:NixOS/nixpkgs/" + rev + "?narHash=sha256-et1qSyVmYH1K3nGaYCHvcf6KPDe2YraKXXhAg/MwFwE%3D"},
		{[]string{
			"git+file:///src/app?ref=master&rev=" + rev,                     // 2.8, no ref given
			"git+file:///src/app?ref=refs/heads/master&rev=" + rev,          // 2.26, no ref given
			"git+file:///src/app?ref=refs%2fheads%2fmaster&rev=" + rev,      // 2.8, ?ref=refs/heads/master
			"git+file:///src/app?rev=" + rev + "&ref=refs%2Fheads%2Fmaster", // another order
		}, "git+file:///src/app?ref=master&rev=" + rev},
		{[]string{
			"git+file:///src/app?dir=sub&ref=refs/heads/release/1.0&rev=" + rev,
			"git+file:///src/app?dir=sub&ref=release%2f1.0&rev=" + rev,
		}, "git+file:///src/app?dir=sub&ref=release/1.0&rev=" + rev},
		// A tag's full name says it is not a branch: kept.
		{[]string{"git+file:///src/app?ref=refs%2ftags%2fv1&rev=" + rev, "git+file:///src/app?ref=refs/tags/v1&rev=" + rev},
			"git+file:///src/app?ref=refs/tags/v1&rev=" + rev},
		// Nix reads + as itself: it stays a +, and a space is %20.
		{[]string{"path:/src?narHash=sha256-a+b=", "path:/src?narHash=sha256-a%2Bb%3D"}, "path:/src?narHash=sha256-a%2Bb%3D"},
		{[]string{"git+file:///src/app?dir=my%20dir&rev=" + rev}, "git+file:///src/app?dir=my%20dir&rev=" + rev},
		// Nothing to do, or nothing that can be read: as Nix printed it.
		{[]string{"path:/src/nixpkgs"}, "path:/src/nixpkgs"},
		{[]string{"path:/src?narHash=%zz"}, "path:/src?narHash=%zz"},
	} {
		for _, printed := range tc.printed {
			assert.Check(t, is.Equal(Canonical(printed), tc.want), "printed %s", printed)
		}
		assert.Check(t, is.Equal(Canonical(tc.want), tc.want), "not stable")
	}
}

// Credentials Nix needs stay in the locked reference, and what is
// recorded of it (Redacted) still hides them.
func TestCanonicalRedacted(t *testing.T) {
	const rev = "a6c9e5e84b02873e67539e08ff5bbb949a24c5c5"
	for _, tc := range []struct{ printed, secret, redacted string }{
		{"git+https://oauth2:TOKEN@example.org/team/app?ref=refs/heads/main&rev=" + rev, "TOKEN",
			"git+https://REDACTED@example.org/team/app?ref=main&rev=" + rev},
		{"https://example.org/src.tar.gz?narHash=sha256-a%2fb=&access_token=SECRET", "SECRET",
			"https://example.org/src.tar.gz?access_token=REDACTED&narHash=sha256-a%2Fb%3D"},
	} {
		canonical := Canonical(tc.printed)
		assert.Check(t, is.Contains(canonical, tc.secret), "Nix needs the credential")
		redacted := Redacted(canonical)
		assert.Check(t, !strings.Contains(redacted, tc.secret), redacted)
		assert.Check(t, is.Equal(redacted, tc.redacted))
	}
}

func TestIsCommit(t *testing.T) {
	const rev = "a6c9e5e84b02873e67539e08ff5bbb949a24c5c5"
	assert.Check(t, IsCommit(rev))
	for _, s := range []string{rev[:39], rev + "0", strings.ToUpper(rev), "nixos-26.05", ""} {
		assert.Check(t, !IsCommit(s), s)
	}
}

func TestParseForge(t *testing.T) {
	for _, tc := range []struct {
		ref  string
		want Forge
		ok   bool
	}{
		{"github:NixOS/nixpkgs", Forge{Type: "github", Repo: "NixOS/nixpkgs"}, true},
		{"github:NixOS/nixpkgs/nixos-26.05?narHash=x", Forge{"github", "NixOS/nixpkgs", "nixos-26.05", "narHash=x"}, true},
		{"gitlab:team/pkgs/release/2?dir=nix", Forge{"gitlab", "team/pkgs", "release/2", "dir=nix"}, true},
		{"sourcehut:~team/nixpkgs", Forge{Type: "sourcehut", Repo: "~team/nixpkgs"}, true},
		{"github:NixOS", Forge{}, false},
		{"git+https://example.org/nixpkgs", Forge{}, false},
		{"path:/src/nixpkgs", Forge{}, false},
	} {
		got, ok := ParseForge(tc.ref)
		assert.Check(t, is.Equal(ok, tc.ok), tc.ref)
		assert.Check(t, is.DeepEqual(got, tc.want), tc.ref)
	}
}
