//go:build integration

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// TestBuildBadInput: each kind of bad input gives one clear error line, a
// non-zero exit, and no tag in the registry.
func TestBuildBadInput(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo")
	host := testenv.StartRegistry(t)
	authHost, user, password := testenv.StartAuthRegistry(t)
	out := "oci:" + filepath.Join(t.TempDir(), "oci")
	fallbackTag := "sha256-" + strings.Repeat("5e", 32)
	readOnly := testenv.ReadOnlyDir(t)
	garbage := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(garbage, "oci-layout"), []byte(`{"imageLayoutVersion": "1.0.0"}`), 0o644))
	assert.NilError(t, os.WriteFile(filepath.Join(garbage, "index.json"), []byte("garbage"), 0o644))

	cases := []struct {
		name string
		args []string
		want string // in the error line
		repo string // a repository that must have no tags afterwards
	}{
		{
			name: "unknown packages",
			args: []string{"--nixpkgs", standIn(), "--image", host + "/bad/unknown", "nosuchpkg", "hello", "alsomissing"},
			want: "not found in nixpkgs for x86_64-linux: alsomissing, nosuchpkg",
			repo: host + "/bad/unknown",
		},
		{
			name: "unknown package on the second platform",
			args: []string{"--nixpkgs", standIn(), "--platforms", "linux/amd64,linux/arm64", "--output", out, "nosuchpkg"},
			want: "not found in nixpkgs for x86_64-linux and aarch64-linux: nosuchpkg",
		},
		{
			name: "misspelled package",
			args: []string{"--nixpkgs", standIn(), "--output", out, "helo", "python3Packages.reqests"},
			want: "not found in nixpkgs for x86_64-linux: helo (did you mean hello?), python3Packages.reqests (did you mean python3Packages.requests?)",
		},
		{
			name: "misspelled flag",
			args: []string{"--nixpkgs", standIn(), "--ouptut", out, "hello"},
			want: "unknown flag --ouptut (did you mean --output?)",
		},
		{
			name: "injection in a package name",
			args: []string{"--nixpkgs", standIn(), "--output", out, `hello"; builtins.abort "x`},
			want: `hello"; builtins.abort "x`,
		},
		{
			name: "unknown platform",
			args: []string{"--nixpkgs", standIn(), "--platforms", "linux/sparc64", "--output", out, "hello"},
			want: "linux/sparc64",
		},
		{
			name: "bad image reference",
			args: []string{"--nixpkgs", standIn(), "--image", "Not A/Reference", "hello"},
			want: "Not A/Reference",
		},
		{
			name: "bad tag",
			args: []string{"--nixpkgs", standIn(), "--image", host + "/bad/tag", "--tags", "ok,no good", "hello"},
			want: "no good",
			repo: host + "/bad/tag",
		},
		{
			name: "unreachable registry",
			args: []string{"--nixpkgs", standIn(), "--image", "127.0.0.1:1/bad/unreachable", "hello"},
			want: "127.0.0.1:1",
		},
		{
			name: "wrong credentials",
			args: []string{"--nixpkgs", standIn(), "--image", authHost + "/bad/auth", "--username", user, "--password", password + "-wrong", "hello"},
			want: "authentication failed",
		},
		{
			name: "neither image nor output",
			args: []string{"--nixpkgs", standIn(), "hello"},
			want: "--image",
		},
		{
			name: "flag after the packages",
			args: []string{"--nixpkgs", standIn(), "hello", "--output", out},
			want: "--output comes after the package names",
		},
		{
			name: "layer budget out of range",
			args: []string{"--nixpkgs", standIn(), "--output", out, "--layer-budget", "125", "hello"},
			want: "--layer-budget 125 is out of range: use 1 to 124 (Docker refuses images of more than 125 layers",
		},
		{
			name: "malformed popularity file",
			args: []string{"--nixpkgs", standIn(), "--output", out, "--popularity", "/etc/hostname", "hello"},
			want: "popularity data is not a JSON object",
		},
		{
			name: "no packages",
			args: []string{"--nixpkgs", standIn(), "--output", out},
			want: "package",
		},
		{
			name: "referrers fallback tag",
			args: []string{"--nixpkgs", standIn(), "--image", host + "/bad/fallback", "--tags", "v1," + fallbackTag, "hello"},
			want: `tag "` + fallbackTag + `" is the OCI referrers fallback tag of the image sha256:5e5e`,
			repo: host + "/bad/fallback",
		},
		{
			name: "referrers fallback tag on the image",
			args: []string{"--nixpkgs", standIn(), "--image", host + "/bad/fallback:" + fallbackTag, "hello"},
			want: "is the OCI referrers fallback tag",
			repo: host + "/bad/fallback",
		},
		{
			name: "referrers fallback tag in a layout",
			args: []string{"--nixpkgs", standIn(), "--output", out, "--tags", fallbackTag, "hello"},
			want: "is the OCI referrers fallback tag",
		},
		{
			name: "relative workdir",
			args: []string{"--nixpkgs", standIn(), "--output", out, "--workdir", "relative/dir", "hello"},
			want: `working directory "relative/dir" is not an absolute path`,
		},
		{
			name: "workdir out of the root",
			args: []string{"--nixpkgs", standIn(), "--output", out, "--workdir", "../../etc", "hello"},
			want: `working directory "../../etc" is not an absolute path`,
		},
		{
			name: "env key with a blank",
			args: []string{"--nixpkgs", standIn(), "--output", out, "--env", "MY VAR=1", "hello"},
			want: `environment variable key "MY VAR" is not valid: a key is printable ASCII`,
		},
		{
			name: "annotation key with a control character",
			args: []string{"--nixpkgs", standIn(), "--output", out, "--annotations", "org.example\x1bteam=1", "hello"},
			want: `annotation key "org.example\x1bteam" is not valid`,
		},
		{
			name: "label value not UTF-8",
			args: []string{"--nixpkgs", standIn(), "--output", out, "--labels", "org.example.team=caf\xe9", "hello"},
			want: `label org.example.team's value "caf\xe9" is not UTF-8 text`,
		},
		{
			name: "NUL in the command",
			args: []string{"--nixpkgs", standIn(), "--output", out, "--cmd", `["a\u0000b"]`, "hello"},
			want: `command word "a\x00b" holds a NUL byte`,
		},
		{
			name: "NUL in the entrypoint",
			args: []string{"--nixpkgs", standIn(), "--output", out, "--entrypoint", `["/bin/hello", "x\u0000"]`, "hello"},
			want: `entrypoint word "x\x00" holds a NUL byte`,
		},
		{
			name: "Nix timeout",
			args: []string{"--nixpkgs", standIn(), "--output", out, "--timeout", "1ns", "hello"},
			want: "timed out after 1ns; raise --timeout",
		},
		{
			name: "read-only output directory",
			args: []string{"--nixpkgs", standIn(), "--output", "oci:" + filepath.Join(readOnly, "image"), "hello"},
			want: "cannot write in " + readOnly + " (operation not permitted): name a directory you can write to",
		},
		{
			name: "docker archive in a read-only directory",
			args: []string{"--nixpkgs", standIn(), "--output", "docker:" + filepath.Join(readOnly, "image.tar"), "hello"},
			want: "cannot write in " + readOnly,
		},
		{
			name: "garbage layout",
			args: []string{"--nixpkgs", standIn(), "--output", "oci:" + garbage, "hello"},
			want: "is not a valid OCI layout (index.json: invalid character",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, nil, append([]string{"build"}, tc.args...)...)
			assert.Assert(t, r.code != 0, "exit status 0; stdout: %s", r.stdout)
			line := errorLine(r.stderr)
			assert.Assert(t, is.Contains(line, tc.want), "stderr: %s", r.stderr)
			assert.Assert(t, !strings.Contains(r.stderr, "goroutine "), r.stderr)
			assert.Assert(t, !strings.Contains(r.stderr+r.stdout, password), "password leaked")
			if tc.repo != "" {
				assertNoTags(t, tc.repo)
			}
		})
	}
}

// errorLine returns the line of stderr that nixery wrote its error on.
func errorLine(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "nixery ") {
			return l
		}
	}
	return ""
}

// assertNoTags checks with skopeo that a repository has no tags.
func assertNoTags(t *testing.T, repo string) {
	t.Helper()
	out, err := runOutput("skopeo", "list-tags", "--tls-verify=false", "docker://"+repo)
	if err != nil {
		// A repository never pushed is not found (404).
		assert.Assert(t, is.Contains(out, "404"), "skopeo list-tags: %v %s", err, out)
		return
	}
	assert.Assert(t, is.Contains(out, `"Tags": []`), out)
}
