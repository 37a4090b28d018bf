package spec

import (
	"os"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestParseInstallable(t *testing.T) {
	for _, tc := range []struct {
		in          string
		flake, attr string
	}{
		{".#app", ".", "app"},
		{".", ".", ""},
		{"./sub#tool", "./sub", "tool"},
		{"../x", "../x", ""},
		{"/src/app#app", "/src/app", "app"},
		{"path:../x#pkg", "path:../x", "pkg"},
		{"github:owner/repo#pkg", "github:owner/repo", "pkg"},
		{"git+https://example.org/r.git?ref=v1#pkg", "git+https://example.org/r.git?ref=v1", "pkg"},
		{"github:owner/repo#python3Packages.tool", "github:owner/repo", "python3Packages.tool"},
	} {
		got, err := ParseInstallable(tc.in)
		assert.NilError(t, err, tc.in)
		assert.DeepEqual(t, got, Installable{Ref: tc.in, Flake: tc.flake, Attr: tc.attr})
	}
	for in, want := range map[string]string{
		"#app":                "no flake before '#'",
		".#":                  "nothing after '#'",
		".#a#b":               "more than one '#'",
		".#a b":               "spaces or control characters",
		".#a\nb":              "spaces or control characters",
		".#bad@attr":          "the attribute after '#' is not valid",
		"ftp:x#a":             "not a path (., ./dir, /dir) or a URL",
		"-L#app":              "starts with '-'",
		"github:#app":         "not a path",
		".#app;rm -rf /":      "spaces or control characters",
		`.#"quoted"`:          "the attribute after '#' is not valid",
		".#../../etc/passwd":  "the attribute after '#' is not valid",
		"path:x#a.${builtin}": "the attribute after '#' is not valid",
	} {
		_, err := ParseInstallable(in)
		assert.ErrorContains(t, err, want, in)
		assert.ErrorContains(t, err, "invalid flake installable", in)
	}
}

// A flake directory written without ./ before '#' is a registry name to
// Nix: the error names the two ways to write the directory.
func TestInstallableDirectoryReadAsRegistryName(t *testing.T) {
	t.Chdir(t.TempDir())
	assert.NilError(t, os.MkdirAll("testdata/app", 0o755))
	assert.NilError(t, os.WriteFile("testdata/app/flake.nix", []byte("{ outputs = _: { }; }\n"), 0o644))
	_, err := ParseInstallable("testdata/app#greet")
	assert.Error(t, err, "invalid flake installable `testdata/app#greet`: "+
		`"testdata/app" is read as a flake registry name; for the directory write ./testdata/app#greet or path:testdata/app#greet`)
	// With no such directory, the general error stays.
	_, err = ParseInstallable("other/app#greet")
	assert.ErrorContains(t, err, "not a path (., ./dir, /dir) or a URL")
}

// Installables mix with plain names and Nixery's path form; their own
// slashes are kept, and they do not count as nixpkgs packages.
func TestParseMixed(t *testing.T) {
	s, err := Parse([]string{"hello .#app", "path:../x#tool,shell/git", ".#app"}, Options{})
	assert.NilError(t, err)
	assert.DeepEqual(t, s.Installables, []Installable{
		{Ref: ".#app", Flake: ".", Attr: "app"},
		{Ref: "path:../x#tool", Flake: "path:../x", Attr: "tool"},
	})
	assert.DeepEqual(t, s.Packages, []string{"bashInteractive", "cacert", "coreutils", "git", "hello", "iana-etc", "moreutils", "nano"})
	assert.Check(t, is.Contains(s.Requested, ".#app"))
	assert.Check(t, is.Contains(s.Requested, "path:../x#tool"))

	// An installable alone, without the default packages, is enough.
	s, err = Parse([]string{"."}, Options{NoDefaults: true})
	assert.NilError(t, err)
	assert.Equal(t, len(s.Packages), 0)
	assert.Equal(t, s.Installables[0].Name(), DefaultAttr)

	_, err = Parse([]string{"hello", ".#"}, Options{})
	assert.ErrorContains(t, err, "invalid flake installable `.#`")
}

// An invalid installable is named with its credentials hidden, however it
// is invalid (a bad attribute, a control character, a bad escape), and so
// is the argument a bad name came in.
func TestInvalidInstallableHidesCredentials(t *testing.T) {
	for _, in := range []string{
		"http://pk-user:SpecTok1@127.0.0.1:5392/np.tar.gz#hel$lo",
		"git+https://oauth2:SpecTok1@h/r.git#a#b",
		"https://h/x.tar.gz?access_token=SpecTok1#",
		"https://pk-user:SpecTok1@h/x\x01.tar.gz#app",
		"https://pk-user:SpecTok1@h/x%zz.tar.gz#a$b",
	} {
		_, err := ParseInstallable(in)
		assert.ErrorContains(t, err, "invalid flake installable", in)
		assert.Check(t, !strings.Contains(err.Error(), "SpecTok1"), "%q: %v", in, err)
		assert.Check(t, strings.Contains(err.Error(), "REDACTED"), "%q: %v", in, err)
	}
	for _, arg := range []string{
		"git+https://oauth2:SpecTok2@h/r.git#app bad$name",
		"https://h/x.tar.gz?access_token=SpecTok2#app bad$name",
	} {
		_, err := Parse([]string{arg}, Options{})
		assert.ErrorContains(t, err, "bad$name")
		assert.Check(t, !strings.Contains(err.Error(), "SpecTok2"), "%v", err)
	}
}
