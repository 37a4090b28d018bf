package nix

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// nix23 answers as Debian 11's Nix 2.3.7 does: its version, and
// "unrecognised flag" for the flags of Nix 2.4 and later. Each call is
// counted in calls.
const nix23 = `#!/bin/sh
echo "$1" >> %q
if [ "$1" = --version ]; then echo "nix (Nix) 2.3.7"; exit 0; fi
echo "error: unrecognised flag '$1'" >&2
echo "Try 'nix --help' for more information." >&2
exit 1
`

// A Nix older than 2.8 is named in one line, with where it was found,
// when its first command fails: not only Nix's "unrecognised flag". It is
// asked its version once per process however many commands fail.
func TestNixTooOld(t *testing.T) {
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "nix"), []byte(strings.Replace(nix23, "%q", "'"+calls+"'", 1)), 0o755))
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))

	var log strings.Builder
	b := &Builder{Flake: "path:" + dir, Log: &log}
	for range 2 {
		_, err := b.Lock(context.Background())
		assert.Error(t, err, "Nix 2.3.7 is too old: nixery needs Nix 2.8 or later (found at "+filepath.Join(dir, "nix")+")")
	}
	asked, err := os.ReadFile(calls)
	assert.NilError(t, err)
	// Two commands and one --version, asked beside the first of them.
	lines := strings.Fields(string(asked))
	slices.Sort(lines)
	assert.Check(t, is.DeepEqual(lines, []string{"--extra-experimental-features", "--extra-experimental-features", "--version"}))
}

// Nix 2.8 and later, Lix and Determinate Nix pass; so does a Nix whose
// answer cannot be read.
func TestParseVersion(t *testing.T) {
	for out, want := range map[string]string{
		"nix (Nix) 2.3.7\n":                      "2.3.7 old",
		"nix (Nix) 2.8.0\n":                      "2.8.0 new",
		"nix (Nix) 2.18.0pre20230920_dirty\n":    "2.18.0pre20230920_dirty new",
		"nix (Lix, like Nix) 2.91.1\n":           "2.91.1 new",
		"nix (Determinate Nix 3.8.2) 2.30.1\n":   "2.30.1 new",
		"nix (Nix) 2.7.0\nSystem type: x86_64\n": "2.7.0 old",
		"nix (Nix) 1.11.16\n":                    "1.11.16 old",
		"nix (Nix) 3.0.0\n":                      "3.0.0 new",
		"something else\n":                       "",
		"":                                       "",
	} {
		version, major, minor, ok := parseVersion(out)
		got := ""
		if ok {
			got = version + " new"
			if (&versionCheck{major: major, minor: minor, known: true}).before(minMajor, minMinor) {
				got = version + " old"
			}
		}
		assert.Check(t, is.Equal(got, want), out)
	}
}

// A version asked with Version (serve's start-up check) is the one the
// builds use: Nix is not asked again.
func TestVersionAskedOnce(t *testing.T) {
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	script := "#!/bin/sh\necho \"$@\" >> '" + calls + "'\necho 'nix (Nix) 2.28.4'\n"
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "nix"), []byte(script), 0o755))
	b := &Builder{Nix: filepath.Join(dir, "nix")}
	v, err := b.Version(context.Background())
	assert.NilError(t, err)
	assert.Equal(t, v, "nix (Nix) 2.28.4")
	assert.Check(t, versionOf(b.program(), nil).before(2, 33))
	asked, err := os.ReadFile(calls)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(strings.Count(string(asked), "--version"), 1), "%s", asked)
}
