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

// Nix quotes a reference in its own encoding, not as written: Scrub hides
// its credentials in any encoding, given the reference's secrets (a
// userinfo even without them), and Secrets (what the action masks) holds the forms Nix and Go write.
func TestScrubAnyEncoding(t *testing.T) {
	for _, c := range []struct {
		ref, nix, want string
		leaks          []string
	}{
		{"http://h/x.tar.gz?access_token=QTokB/x2", "unable to download 'http://h/x.tar.gz?access_token=QTokB%2fx2': HTTP error 404",
			"unable to download 'http://h/x.tar.gz?access_token=REDACTED': HTTP error 404", []string{"QTokB"}},
		{"http://h/x.tar.gz?access_token=QTokB/x2", "unable to download 'http://h/x.tar.gz?access_token=QTokB%2Fx2'",
			"unable to download 'http://h/x.tar.gz?access_token=REDACTED'", []string{"QTokB"}},
		{"http://h/x?rev=abc&access_token=a%2Bb+c%3Dd", "fetching 'http://h/x?rev=abc&access_token=a+b+c=d' failed",
			"fetching 'http://h/x?rev=abc&access_token=REDACTED' failed", []string{"a+b", "c=d"}},
		{"http://h/x?access_token=a+b=c", "fetching 'http://h/x?access_token=a%2Bb%3Dc' failed",
			"fetching 'http://h/x?access_token=REDACTED' failed", []string{"a%2Bb"}},
		{"http://pk-user:a%2Bb%3DTok8@h/x.tar.gz", "unable to download 'http://pk-user:a%2Bb%3DTok8@h/x.tar.gz'",
			"unable to download 'http://REDACTED@h/x.tar.gz'", []string{"Tok8", "pk-user"}},
		{"http://pk-user:a+b=Tok8@h/x.tar.gz", "unable to download 'http://pk-user:a%2bb%3dTok8@h/x.tar.gz'",
			"unable to download 'http://REDACTED@h/x.tar.gz'", []string{"Tok8", "pk-user"}},
		{"http://pk-user:a%2fTok9@h/x.tar.gz", "unable to download 'http://pk-user:a%2FTok9@h/x.tar.gz'",
			"unable to download 'http://REDACTED@h/x.tar.gz'", []string{"Tok9"}},
		{"https://p%40k%3Auser:a%3Ab%40Tok7@h/x", "unable to download 'https://p@k:user:a:b@Tok7@h/x'",
			"unable to download 'https://REDACTED@h/x'", []string{"Tok7", "user"}},
		{"git+ssh://git:hun%2Fter@h/r", "fetching git+ssh://git:hun%2fter@h/r", "fetching git+ssh://git:REDACTED@h/r", []string{"hun"}},
		{"github:o/r?dir=x&token=T%2fk", "error: 'github:o/r?dir=x&token=T/k': nope", "error: 'github:o/r?dir=x&token=REDACTED': nope", []string{"T/k"}},
	} {
		secrets := Secrets(c.ref)
		got := Scrub(c.nix, secrets)
		assert.Check(t, is.Equal(got, c.want), c.ref)
		for _, leak := range c.leaks {
			assert.Check(t, !strings.Contains(got, leak), "%s: %q left in %s", c.ref, leak, got)
		}
		// Without the reference's secrets, a URL's userinfo is still a
		// credential; its query parameters are anybody's.
		if strings.Contains(c.ref, "?") {
			assert.Check(t, is.Equal(Scrub(c.nix, nil), c.nix), c.ref)
		} else {
			assert.Check(t, is.Equal(Scrub(c.nix, nil), c.want), c.ref)
		}
		assert.Check(t, len(secrets) <= 10, "%s: %d secrets: %q", c.ref, len(secrets), secrets)
	}

	// A secret quoted outside a URL is found only by its forms.
	assert.Check(t, is.Equal(Scrub("HTTP error 401 (p%40k%3Auser:a%3Ab%40Tok7@h)", Secrets("https://p%40k%3Auser:a%3Ab%40Tok7@h/x")), "HTTP error 401 (REDACTED@h)"))

	masks := Secrets("http://u:a%2fTok9@h/x?access_token=Q/x2")
	for _, want := range []string{"u:a%2fTok9@", "u:a%2FTok9@", "u:a/Tok9@", ":a%2fTok9@", "access_token=Q%2fx2", "access_token=Q%2Fx2", "access_token=Q/x2"} {
		assert.Check(t, is.Contains(masks, want))
	}
	// What is not a credential stays.
	for _, text := range []string{
		"fetching 'git+ssh://git@github.com/team/pkgs?ref=main&rev=0123'",
		"path:/nix/store/abc-source?lastModified=1&narHash=sha256-x",
		"error: a?b=c is no URL",
	} {
		assert.Check(t, is.Equal(Scrub(text, nil), text))
	}
}

// The query parameters hidden are those that carried a secret in the
// references given, in any URL; other URLs' parameters stay (a build log
// names what it downloads).
func TestScrubOnlySecretParams(t *testing.T) {
	secrets := Secrets("https://h/np.tar.gz?access_token=Tok1&dir=sub")
	for _, c := range []struct{ in, want string }{
		{"trying https://example.org/dl?version=1.2&mirror=eu", "trying https://example.org/dl?version=1.2&mirror=eu"},
		{"GET https://other.example/x?version=1.2&access_token=Other2", "GET https://other.example/x?version=1.2&access_token=REDACTED"},
		{"GET https://other.example/x?access%5Ftoken=Other2", "GET https://other.example/x?access%5Ftoken=REDACTED"},
		{"GET https://other.example/x?token=Other2", "GET https://other.example/x?token=Other2"},
	} {
		assert.Check(t, is.Equal(Scrub(c.in, secrets), c.want))
		assert.Check(t, is.Equal(Scrub(c.in, nil), c.in))
	}
	// A reference that is no valid URL is scrubbed by Redacted's rule.
	assert.Check(t, is.Equal(Redacted("https://h/x%zz?version=1&dir=a"), "https://h/x%zz?version=REDACTED&dir=a"))
}

// Scrub runs on every line Nix writes (build logs included) and every
// message a server logs: ordinary lines must cost next to nothing.
func BenchmarkScrub(b *testing.B) {
	secrets := Secrets("git+https://oauth2:glpat-BenchTok@git.example.org/nixpkgs?ref=main&access_token=abc%2Fdef")
	for _, c := range []struct {
		name  string
		lines []string
	}{
		{"ordinary", []string{
			"building '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello-2.12.drv'...",
			"checking for a BSD-compatible install... /usr/bin/install -c",
			"gcc -O2 -c hello.c -o hello.o",
		}},
		{"at-or-query", []string{
			"npm: added @babel/core@7.24.0 and @types/node@20.1.0",
			"works? yes, see the log",
			"mail maintainer@example.org about it",
		}},
		{"url", []string{
			"trying https://example.org/dl/hello-2.12.tar.gz?version=2.12&mirror=eu",
			"downloading 'https://oauth2:glpat-BenchTok@git.example.org/nixpkgs?access_token=abc%2fdef'",
			"fetching git+ssh://git@github.com/team/pkgs?ref=main",
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				for _, line := range c.lines {
					Scrub(line, secrets)
				}
			}
		})
	}
}
