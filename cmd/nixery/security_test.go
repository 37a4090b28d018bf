package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/hostile"
	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/build"
	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/publish"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoginCredentials(t *testing.T) {
	cases := []struct {
		name  string
		flags loginFlags
		stdin string
		env   map[string]string
		want  string // error, or the password chosen
		fails bool
	}{
		{name: "flags", flags: loginFlags{username: "u", password: "p1"}, want: "p1"},
		{name: "stdin", flags: loginFlags{username: "u", passwordStdin: true}, stdin: "p2\r\n", want: "p2"},
		{name: "environment", flags: loginFlags{username: "u"}, env: map[string]string{"NIXERY_PASSWORD": "p3"}, want: "p3"},
		{name: "flag over environment", flags: loginFlags{username: "u", password: "p1"}, env: map[string]string{"NIXERY_PASSWORD": "p3"}, want: "p1"},
		{name: "none", want: ""},
		{name: "environment without user", env: map[string]string{"NIXERY_PASSWORD": "p3"}, fails: true,
			want: "NIXERY_PASSWORD is set but --username is not"},
		{name: "password without user", flags: loginFlags{password: "p1"}, fails: true, want: "--password needs --username"},
		{name: "user without password", flags: loginFlags{username: "u"}, fails: true, want: "--username needs a password"},
		{name: "both ways", flags: loginFlags{username: "u", password: "p", passwordStdin: true}, fails: true, want: "exclude each other"},
		{name: "empty stdin", flags: loginFlags{username: "u", passwordStdin: true}, stdin: "\n", fails: true, want: "empty password"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.flags.credentials("registry.example:5000", strings.NewReader(tc.stdin), envOf(tc.env))
			if tc.fails {
				assert.ErrorContains(t, err, tc.want)
				assert.Assert(t, !strings.Contains(err.Error(), "\n"))
				return
			}
			assert.NilError(t, err)
			assert.Equal(t, c.Password, tc.want)
			assert.Equal(t, c.Registry, "registry.example:5000")
		})
	}
}

// testImage pushes a one-layer linux/amd64 image to repo and returns the
// index digest.
func testImage(t *testing.T, repo string) string {
	t.Helper()
	var tarBuf, gz bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	assert.NilError(t, tw.WriteHeader(&tar.Header{Name: "hello", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg}))
	tw.Write([]byte("hi"))
	assert.NilError(t, tw.Close())
	zw := gzip.NewWriter(&gz)
	zw.Write(tarBuf.Bytes())
	assert.NilError(t, zw.Close())
	diffID, _, _ := v1.SHA256(bytes.NewReader(tarBuf.Bytes()))
	digest, size, _ := v1.SHA256(bytes.NewReader(gz.Bytes()))
	blob := gz.Bytes()
	img, err := image.NewImage(v1.Platform{OS: "linux", Architecture: "amd64"}, []image.Blob{{
		Digest: digest, DiffID: diffID, Size: size,
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil },
	}}, image.Options{})
	assert.NilError(t, err)
	idx, err := image.NewIndex([]*image.Image{img}, nil)
	assert.NilError(t, err)
	target, err := publish.NewTarget(repo, nil, false)
	assert.NilError(t, err)
	res, err := publish.Push(context.Background(), target, idx, publish.Options{})
	assert.NilError(t, err)
	return res.Digest
}

// isOurCommand tells the workflow commands action mode issues itself.
func isOurCommand(line string) bool {
	for _, p := range []string{"::error title=nixery::", "::group::", "::endgroup::", "::add-mask::"} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

// A registry's error message with line breaks and workflow commands
// reaches the log escaped, as one line that issues no command.
func TestActionRegistryTextIssuesNoCommand(t *testing.T) {
	evil := "denied\n::set-output name=digest::sha256:evil\n::warning title=INJECTED::pwned\n##[error]old style"
	reg := testenv.StartHostile(t, hostile.Behaviour{ErrorMessage: evil})
	dir := t.TempDir()
	out := filepath.Join(dir, "output")
	assert.NilError(t, os.WriteFile(out, nil, 0o644))
	var stdout bytes.Buffer
	err := runAction(envOf(map[string]string{
		"INPUT_IMAGE":         reg.Host + "/x/img",
		"INPUT_MERGE_DIGESTS": "sha256:" + strings.Repeat("1", 64),
		"GITHUB_OUTPUT":       out,
		"HOME":                dir,
	}), &stdout)
	assert.Assert(t, err != nil)
	assert.Assert(t, !strings.ContainsAny(err.Error(), "\r\n"), err.Error())
	assert.Assert(t, !strings.HasPrefix(err.Error(), "::"))
	for _, line := range strings.Split(stdout.String(), "\n") {
		trimmed := strings.TrimLeft(line, " \t")
		if strings.HasPrefix(trimmed, "::") || strings.Contains(trimmed, "##[") {
			assert.Assert(t, isOurCommand(trimmed), "foreign command in the log: %q", line)
		}
	}
	assert.Assert(t, !strings.Contains(err.Error(), "##["), err.Error())
	assert.Assert(t, is.Contains(stdout.String(), "::error title=nixery::"))
	assert.Assert(t, is.Contains(stdout.String(), "(DENIED: denied ::set-output name=digest::sha256:evil ::warning"), stdout.String())
	written, err := os.ReadFile(out)
	assert.NilError(t, err)
	assert.Equal(t, string(written), "", "no output may be set")
}

// With GITHUB_OUTPUT and GITHUB_STEP_SUMMARY missing, or not writable,
// action mode pushes, prints the result, then fails with a clear error:
// no panic.
func TestActionWithoutOutputFiles(t *testing.T) {
	reg := testenv.StartHostile(t, hostile.Behaviour{})
	digest := testImage(t, reg.Host+"/ok/img")
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"unset", map[string]string{}, "GITHUB_OUTPUT is not set"},
		{"unwritable", map[string]string{"GITHUB_OUTPUT": filepath.Join(dir, "no", "such", "file")}, "set output digest"},
		{"summary unset", map[string]string{"GITHUB_OUTPUT": filepath.Join(dir, "out")}, "GITHUB_STEP_SUMMARY is not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.NilError(t, os.WriteFile(filepath.Join(dir, "out"), nil, 0o644))
			env := map[string]string{"INPUT_IMAGE": reg.Host + "/ok/img", "INPUT_TAGS": "v1", "INPUT_MERGE_DIGESTS": digest, "HOME": dir}
			for k, v := range tc.env {
				env[k] = v
			}
			var stdout bytes.Buffer
			err := runAction(envOf(env), &stdout)
			assert.ErrorContains(t, err, tc.want)
			assert.ErrorContains(t, err, "was pushed, but")
			text := stdout.String()
			result := strings.Index(text, reg.Host+"/ok/img@sha256:")
			errLine := strings.Index(text, "::error title=nixery::")
			assert.Assert(t, result >= 0 && errLine > result, "result, then the error:\n%s", text)
		})
	}
}

// Nix's output and cache notes pass through the action's logs, line by
// line, and none of their lines can issue a command.
func TestActionLogsNeutraliseForeignLines(t *testing.T) {
	var stdout bytes.Buffer
	logs := safeLogs(newGroups(&stdout, func(p string) (string, string) { return "::group::" + p + "\n", "::endgroup::\n" }).sink)
	w, end := logs("linux/amd64")
	io.WriteString(w, "building hello\n::set-output name=digest::evil\n  ::add-mask::x\r\n##[warning]y\npartial ::stop-commands")
	end()
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	assert.DeepEqual(t, lines, []string{
		"::group::linux/amd64", "building hello", "%3A:set-output name=digest::evil", "  %3A:add-mask::x",
		"%23#[warning]y", "partial ::stop-commands", "::endgroup::",
	})
}

// Bad values are one-line errors before any work, from the library that
// owns them.
func TestBuildValidation(t *testing.T) {
	out := "oci:" + filepath.Join(t.TempDir(), "oci")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--entrypoint", "[null]"}, "entrypoint's first word (the program) is empty or null"},
		{[]string{"--workdir", "/a\n/b"}, "working directory"},
		{[]string{"--user", "root\nx"}, "--user \"root\\nx\": it holds a line break"},
		{[]string{"--user", "app:x:0:0::/:/bin/sh"}, "--user \"app:x:0:0::/:/bin/sh\": too many ':'"},
		{[]string{"--user", "app\nevil:x:0:0"}, "it holds a line break"},
		{[]string{"--labels", "bad key=x"}, `label key "bad key" is not valid`},
		{[]string{"--timeout", "-1s"}, "Nix timeout -1s is negative"},
	} {
		args := append(append([]string{"build", "--nixpkgs", "path:/nonexistent", "--output", out}, tc.args...), "hello")
		code, _, stderr := runCLI(t, args...)
		assert.Equal(t, code, 2, "%v: %s", tc.args, stderr)
		assert.Assert(t, is.Contains(stderr, tc.want), "%v", tc.args)
		assert.Equal(t, strings.Count(stderr, "\n"), 2, "one line and the --help hint: %q", stderr)
	}
	code, _, stderr := runCLI(t, "pack", "--output", filepath.Join(t.TempDir(), "b"), "--concurrency", "-2", "/nix/store/0c5ma6vzrfd1asz7jg4z0pb8dh8f6z2b-x")
	assert.Equal(t, code, 2, stderr)
	assert.Assert(t, is.Contains(stderr, "--concurrency -2 is out of range"))
}

// Values in the step summary stay in their heading, paragraph or table
// cell: an image named with line breaks (an output directory may be), a
// merged index whose platform a registry wrote, packages with '|'.
func TestSummaryKeepsValuesOnTheirLines(t *testing.T) {
	evil := "\n::set-output name=digest::evil\n## fake | cell `x`"
	res := &build.Result{Result: &publish.Result{
		Image: "oci:/x" + evil, Digest: "sha256:" + strings.Repeat("1", 64), Tags: []string{"v1"},
		Manifests: []publish.ManifestResult{{Platform: "linux/amd64" + evil, Layers: []publish.LayerResult{
			{Size: 10, Packages: []string{"hello" + evil}},
		}}},
	}}
	md := summary(res, "")
	lines := strings.Split(md, "\n")
	for _, l := range lines {
		bare := strings.TrimLeft(l, "#|` ")
		assert.Check(t, !strings.HasPrefix(bare, "::") && !strings.HasPrefix(bare, "fake"), "a value broke its line: %q in\n%s", l, md)
		if strings.HasPrefix(l, "| 1 |") {
			assert.Check(t, is.Equal(strings.Count(l, "|")-strings.Count(l, `\|`), 5), "a value split the row: %q", l)
		}
	}
	assert.Check(t, is.Contains(md, "### oci:/x%0A::set-output name=digest::evil%0A\\#\\# fake \\| cell \\`x\\`\n"))
	assert.Check(t, is.Contains(md, "#### linux/amd64%0A::set-output"))
	assert.Check(t, is.Contains(md, "``oci:/x%0A::set-output name=digest::evil%0A## fake | cell `x`@sha256:"))
}

// A token in the nixpkgs or packages input is masked, as the password is,
// before anything is printed: the runner then hides it in every step.
func TestActionMasksFlakeTokens(t *testing.T) {
	var stdout bytes.Buffer
	err := runAction(envOf(map[string]string{
		"INPUT_NIXPKGS":       "git+https://oauth2:tok3n-one@example.com/nixpkgs.git",
		"INPUT_PACKAGES":      "hello, https://example.com/app.tar.gz?access_token=tok3n-two#app",
		"INPUT_MERGE_DIGESTS": "sha256:" + strings.Repeat("1", 64),
		"INPUT_IMAGE":         "127.0.0.1:1/x/img",
		"HOME":                t.TempDir(),
	}), &stdout)
	assert.Assert(t, err != nil) // a merge takes neither input
	var masks []string
	for _, line := range strings.Split(stdout.String(), "\n") {
		if m, ok := strings.CutPrefix(line, "::add-mask::"); ok {
			masks = append(masks, m)
		}
	}
	for _, tok := range []string{"tok3n-one", "tok3n-two"} {
		assert.Check(t, slices.ContainsFunc(masks, func(m string) bool { return strings.Contains(m, tok) }), "%s not masked: %v", tok, masks)
	}
	first := strings.Index(stdout.String(), "::add-mask::")
	assert.Check(t, first == 0, "something was printed before the masks: %q", stdout.String())
}
