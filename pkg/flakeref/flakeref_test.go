package flakeref

import (
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// Credentials in a flake reference are hidden; everything else stays as
// written.
func TestRedacted(t *testing.T) {
	for ref, want := range map[string]string{
		"git+https://oauth2:glpat-SECRET@git.example.org/nixpkgs?ref=main":   "git+https://REDACTED@git.example.org/nixpkgs?ref=main",
		"git+https://ghp_TOKEN@github.com/team/pkgs?rev=0123456789&ref=main": "git+https://REDACTED@github.com/team/pkgs?rev=0123456789&ref=main",
		"git+ssh://git:hunter22@git.example.org/nixpkgs":                     "git+ssh://git:REDACTED@git.example.org/nixpkgs",
		"https://example.org/nixpkgs.tar.gz?access_token=SECRET2":            "https://example.org/nixpkgs.tar.gz?access_token=REDACTED",
		"tarball+https://u:p@example.org/n.tar.gz?dir=x":                     "tarball+https://REDACTED@example.org/n.tar.gz?dir=x",
	} {
		got := Redacted(ref)
		assert.Check(t, is.Equal(got, want), ref)
		for _, s := range Secrets(ref) {
			assert.Check(t, !strings.Contains(got, s), "%s: %q left in %s", ref, s, got)
		}
	}
	for _, ref := range []string{
		"github:NixOS/nixpkgs/nixos-26.05",
		"github:team/pkgs/main?dir=nix&ref=x",
		"git+ssh://git@github.com/team/pkgs?ref=main",
		"git+file:///srv/nixpkgs?ref=other&rev=59391d28677139e93ec6c7d2903a70d418f0d8d6",
		"path:/src/nixpkgs?lastModified=1&narHash=sha256-x",
		"/src/nixpkgs", "./nixpkgs", "nixpkgs", "flake:nixpkgs/nixos-26.05",
	} {
		assert.Check(t, is.Equal(Redacted(ref), ref))
		assert.Check(t, is.Len(Secrets(ref), 0), ref)
	}
}

// Scrub hides the credentials of a reference in a message that quotes
// it, as Nix's errors do, percent-encoded or not.
func TestScrub(t *testing.T) {
	ref := "git+https://oauth2:glpat%2FSECRET@git.example.org/nixpkgs?ref=main&access_token=abc%2Fdef"
	msg := "error: unable to download 'https://oauth2:glpat%2FSECRET@git.example.org/nixpkgs?access_token=abc%2Fdef': HTTP error 401 (oauth2:glpat/SECRET@git.example.org, access_token=abc/def)"
	got := Scrub(msg, Secrets(ref))
	for _, leak := range []string{"glpat", "SECRET", "abc"} {
		assert.Check(t, !strings.Contains(got, leak), "%q left in %s", leak, got)
	}
	assert.Check(t, is.Contains(got, "https://REDACTED@git.example.org/nixpkgs?access_token=REDACTED': HTTP error 401"))
	assert.Equal(t, Scrub("no secret here", Secrets(ref)), "no secret here")

	ssh := Secrets("git+ssh://git:hunter22@git.example.org/r")
	assert.Equal(t, Scrub("fetching git+ssh://git:hunter22@git.example.org/r", ssh), "fetching git+ssh://git:REDACTED@git.example.org/r")
}
