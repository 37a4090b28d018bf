package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/pkg/archive"
	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/publish"
)

// runCLI runs the command in-process, capturing what it prints.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	// Commands print results on os.Stdout; swap it for a file.
	out, err := os.CreateTemp(t.TempDir(), "stdout")
	assert.NilError(t, err)
	saved := os.Stdout
	os.Stdout = out
	var errBuf bytes.Buffer
	code = run(args, out, &errBuf)
	os.Stdout = saved
	data, err := os.ReadFile(out.Name())
	assert.NilError(t, err)
	return code, string(data), errBuf.String()
}

func TestUsage(t *testing.T) {
	code, out, _ := runCLI(t, "--help")
	assert.Equal(t, code, 0)
	for _, c := range []string{"build", "layers", "pack", "merge", "action"} {
		assert.Assert(t, is.Contains(out, "  "+c+" "))
	}
	code, out, _ = runCLI(t, "--version")
	assert.Equal(t, code, 0)
	assert.Assert(t, strings.HasPrefix(out, "nixery "))
	code, _, errOut := runCLI(t, "frobnicate")
	assert.Equal(t, code, 2)
	assert.Assert(t, is.Contains(errOut, `unknown command "frobnicate"`))
	for _, c := range []string{"build", "layers", "pack", "merge", "popcount"} {
		code, out, errOut := runCLI(t, c, "--help")
		assert.Equal(t, code, 0)
		assert.Assert(t, is.Contains(out, "Usage: nixery "+c))
		// Once, on stdout only.
		assert.Equal(t, strings.Count(out, "Usage:"), 1, out)
		assert.Equal(t, errOut, "")
	}
}

// TestFlagErrors: a bad flag is one line on stderr naming it, with the
// closest flags of the command, and exit status 2.
func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"build", "--imgae", "x"}, "nixery build: unknown flag --imgae (did you mean --image?)\n"},
		{[]string{"build", "-platform", "linux/amd64"}, "nixery build: unknown flag --platform (did you mean --platforms?)\n"},
		{[]string{"merge", "--tag", "v1"}, "nixery merge: unknown flag --tag (did you mean --tags?)\n"},
		{[]string{"build", "--frobnicate"}, "nixery build: unknown flag --frobnicate (run 'nixery build --help' for the flags)\n"},
		{[]string{"build", "--level", "x"}, fmt.Sprintf("nixery build: --level takes a whole number, not \"x\": LEVEL of the layers' compression, as --compression ALGO:LEVEL gives it (gzip 1 (fastest) to 9, default %d)\n", archive.DefaultLevel)},
		{[]string{"build", "--layer-budget", "abc"}, fmt.Sprintf("nixery build: --layer-budget takes a whole number, not \"abc\": most layers (N) for the packages' store paths, 1 to %d\n", layers.MaxBudget)},
		{[]string{"build", "--timeout", "5"}, "nixery build: --timeout takes a duration such as 30m or 90s, not \"5\": give up on Nix after this long (DURATION, e.g. 30m), per platform\n"},
		{[]string{"serve", "--max-images", "all"}, "nixery serve: --max-images takes a whole number, not \"all\": keep at most N images, dropping those pulled least recently (0: keep all)\n"},
		{[]string{"build", "--image"}, "nixery build: flag needs an argument: --image\n"},
	} {
		code, out, errOut := runCLI(t, tc.args...)
		assert.Equal(t, code, 2, tc.args)
		assert.Equal(t, errOut, tc.want, tc.args)
		assert.Equal(t, out, "", tc.args)
	}
}

func TestLayersCommand(t *testing.T) {
	closure := filepath.Join("..", "..", "pkg", "layers", "testdata", "shell-hello-busybox.json")
	code, out, errOut := runCLI(t, "layers", "--closure", closure, "--budget", "4")
	assert.Equal(t, code, 0, errOut)
	var plan layers.LayerPlan
	assert.NilError(t, json.Unmarshal([]byte(out), &plan))
	assert.Assert(t, len(plan.Layers) >= 1 && len(plan.Layers) <= 4)
	for _, l := range plan.Layers {
		assert.Assert(t, strings.HasPrefix(l.Key, "sha256:") && len(l.Paths) > 0 && l.Size > 0)
	}

	bad := filepath.Join(t.TempDir(), "bad.json")
	assert.NilError(t, os.WriteFile(bad, []byte(`[{"path":"/usr/bin/x"}]`), 0o644))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"layers"}, "--closure FILE is required"},
		{[]string{"layers", "--closure", "/nonexistent"}, "read the closure graph"},
		{[]string{"layers", "--closure", bad}, `"/usr/bin/x" is not a store path`},
		{[]string{"layers", "--closure", closure, "--budget", "0"}, "--budget 0 is out of range"},
		{[]string{"layers", "--closure", closure, "--budget", "126"}, "--budget 126 is out of range"},
		{[]string{"layers", "--closure", closure, "--strategy", "nope"}, `unknown --strategy "nope"`},
		{[]string{"layers", "--closure", closure, "--root", "/nix/store/aaaa-nope"}, "not in the closure graph"},
		{[]string{"layers", "--closure", closure, "--popularity", bad}, "not a JSON object"},
	} {
		code, _, errOut := runCLI(t, tc.args...)
		assert.Assert(t, code != 0, tc.args)
		assert.Assert(t, is.Contains(errOut, tc.want), tc.args)
		assert.Assert(t, strings.HasPrefix(errOut, "nixery layers: "), errOut)
	}
}

func TestPackCommandErrors(t *testing.T) {
	out := filepath.Join(t.TempDir(), "blob")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pack", "/nix/store/0c5ma6vzrfd1asz7jg4z0pb8dh8f6z2b-x"}, "--output FILE is required"},
		{[]string{"pack", "--output", out}, "name the store paths"},
		{[]string{"pack", "--output", out, "/etc"}, `"/etc" is not a top-level store path`},
		{[]string{"pack", "--output", out, "--level", "10", "/nix/store/0c5ma6vzrfd1asz7jg4z0pb8dh8f6z2b-x"}, "--level 10 is out of range"},
		{[]string{"pack", "--output", out, "/nix/store/00000000000000000000000000000000-gone"}, "read /nix/store/00000000000000000000000000000000-gone"},
	} {
		code, _, errOut := runCLI(t, tc.args...)
		assert.Assert(t, code != 0, tc.args)
		assert.Assert(t, is.Contains(errOut, tc.want), tc.args)
	}
	_, err := os.Stat(out)
	assert.Assert(t, os.IsNotExist(err), "a failed pack left %s behind", out)
}

// TestPrintResult: the summary line says where the image went, or
// where it would have gone, and never shows an empty tag list.
func TestPrintResult(t *testing.T) {
	d := "sha256:" + strings.Repeat("1", 64)
	layers := []publish.LayerResult{{Uploaded: true}, {Uploaded: false}, {Uploaded: false}}
	two := []publish.ManifestResult{{Platform: "linux/amd64", Layers: layers}, {Platform: "linux/arm64", Layers: layers}}
	one := two[:1]
	for _, tc := range []struct {
		res  publish.Result
		want string
	}{
		{publish.Result{Image: "ghcr.io/me/t", Digest: d, Reference: "ghcr.io/me/t@" + d, Tags: []string{"v1", "latest"}, Pushed: true, Manifests: two},
			"pushed ghcr.io/me/t@" + d + " as v1, latest (2 platforms; 2 layers uploaded, 4 already there)"},
		{publish.Result{Image: "ghcr.io/me/t", Digest: d, Reference: "ghcr.io/me/t@" + d, Tags: []string{}, Pushed: true, Manifests: one},
			"pushed by digest, no tags: ghcr.io/me/t@" + d + " (1 layer uploaded, 2 already there)"},
		{publish.Result{Image: "ghcr.io/me/t", Digest: d, Tags: []string{"v1"}, Manifests: two},
			"built, not pushed: ghcr.io/me/t@" + d + " (would be pushed as v1; 2 platforms; 6 layers)"},
		{publish.Result{Image: "ghcr.io/me/t", Digest: d, Tags: []string{}, Manifests: one},
			"built, not pushed: ghcr.io/me/t@" + d + " (would be pushed by digest; 3 layers)"},
		{publish.Result{Digest: d, Tags: []string{}, Manifests: one},
			"built, not pushed: " + d + " (3 layers)"},
		{publish.Result{Image: "oci:/tmp/x", Digest: d, Tags: []string{"latest"}, Pushed: true, Manifests: one},
			"wrote oci:/tmp/x: " + d + " as latest (1 layer written, 2 already there)"},
		{publish.Result{Image: "ghcr.io/me/t", Digest: d, Reference: "ghcr.io/me/t@" + d, Tags: []string{"v1"}, Pushed: true,
			Manifests: []publish.ManifestResult{{Platform: "linux/amd64"}, {Platform: "linux/arm64"}}},
			"pushed ghcr.io/me/t@" + d + " as v1 (2 platforms)"}, // a merge
	} {
		var b strings.Builder
		assert.NilError(t, printResult(&b, &tc.res))
		assert.Equal(t, b.String(), tc.want+"\n")
	}
}

// TestHelpText: list flags say LIST, build explains the package syntax,
// popcount's --cache is optional with its default, and --strategy help
// works in build as in layers.
func TestHelpText(t *testing.T) {
	for _, c := range []string{"build", "merge", "layers", "pack", "popcount"} {
		_, out, _ := runCLI(t, c, "--help")
		assert.Check(t, !strings.Contains(out, " value\n"), "%s --help has a flag of \"value\":\n%s", c, out)
		assert.Check(t, !strings.Contains(out, "\n  -"+"-"+"-"), out)
		assert.Check(t, is.Contains(out, "\n  --"), "%s: flags are written --name", c)
	}
	_, out, _ := runCLI(t, "build", "--help")
	for _, want := range []string{"--platforms LIST", "--tags LIST", "python3Packages.requests", "shell/git/htop",
		"  shell ", "  arm64 ", "with --platforms, in addition to them", "--no-default-packages"} {
		assert.Check(t, is.Contains(out, want))
	}
	_, out, _ = runCLI(t, "popcount", "--help")
	assert.Check(t, is.Contains(out, "Usage: nixery popcount [--cache URL]"))
	assert.Check(t, is.Contains(out, "(default https://cache.nixos.org)"))

	for _, c := range []string{"build", "layers"} {
		code, out, errOut := runCLI(t, c, "--strategy", "help")
		assert.Equal(t, code, 0, errOut)
		assert.Check(t, is.Contains(out, "shared (default)\n"), c)
		assert.Check(t, is.Contains(out, "nixery\n"), c)
	}
}

// Full references in --tags need a registry push, and merge reads the
// images from the first repository: said before any work, as usage errors.
func TestTagReferencesUsage(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"build", "--nixpkgs", "path:/x", "--output", "oci:" + t.TempDir(), "--tags", "ghcr.io/me/app:v1", "hello"},
			"--tags=ghcr.io/me/app:v1 is a full reference, which only a push to a registry can use"},
		{[]string{"build", "--nixpkgs", "path:/x", "--push-by-digest", "--tags", "ghcr.io/me/app:v1", "hello"},
			"--push-by-digest pushes no tags, but tags were given"},
		{[]string{"build", "--nixpkgs", "path:/x", "--tags", "ghcr.io/me/app:v1,v2", "hello"},
			`tag "v2" names no repository: give --image, or write it as a full reference`},
		// The images are read from the first repository the tags name;
		// the others get copies.
		{[]string{"merge", "--tags", "127.0.0.1:1/a:v1,127.0.0.1:1/b:v1", "127.0.0.1:1/b@" + digest},
			"127.0.0.1:1/b@" + digest + " is in 127.0.0.1:1/b, not in 127.0.0.1:1/a, the repository to merge in"},
	} {
		code, _, errOut := runCLI(t, tc.args...)
		assert.Equal(t, code, 2, "%v: %s", tc.args, errOut)
		assert.Check(t, strings.Contains(errOut, tc.want), "%v: %s", tc.args, errOut)
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "512": 512, "4K": 4096, "20G": 20 << 30, "1t": 1 << 40, "3MB": 3 << 20} {
		var b byteSize
		assert.NilError(t, b.Set(in), in)
		assert.Equal(t, int64(b), want, in)
	}
	for _, in := range []string{"", "G", "-1G", "1.5G", "20X", "99999999999T"} {
		var b byteSize
		assert.ErrorContains(t, b.Set(in), "is not a size", in)
	}
}

// Flags asking for opposite things are refused, both named, before any
// work: neither is silently ignored.
func TestConflictingFlags(t *testing.T) {
	out := "oci:" + filepath.Join(t.TempDir(), "oci")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--output", out, "--push-by-digest"}, "--push-by-digest pushes to a registry, but --output writes the image to " + out + ": drop one of them"},
		{[]string{"--output", out, "--push=false"}, "--push=false writes the image nowhere, but --output writes it to " + out + ": drop one of them"},
		{[]string{"--image", "127.0.0.1:1/x", "--no-cache", "--cache-from", "127.0.0.1:1/y:v1"}, "--no-cache reuses no layers, but --cache-from names images to reuse them from: drop one of them"},
		{[]string{"--push=false", "--tags", "v1,latest"}, "--tags=v1,latest tag nothing: --push=false without --image builds an image no tag names; add --image=REGISTRY/NAME (nothing is pushed there), or drop --tags"},
	} {
		args := append(append([]string{"build", "--nixpkgs", "path:/nonexistent"}, tc.args...), "hello")
		code, stdout, stderr := runCLI(t, args...)
		assert.Check(t, is.Equal(code, 2), "%v: %s", tc.args, stderr)
		assert.Check(t, is.Equal(stderr, "nixery build: "+tc.want+"\nRun 'nixery build --help' for usage.\n"), "%v", tc.args)
		assert.Check(t, is.Equal(stdout, ""))
	}
}

// A bad value on the command line is a usage error, exit status 2, as
// the README promises, found before any work: a merge's bad digest before
// the registry is asked anything.
func TestUsageErrorsExitTwo(t *testing.T) {
	closure := filepath.Join("..", "..", "pkg", "layers", "testdata", "shell-hello-busybox.json")
	registry, conns := countingListener(t)
	path := "/nix/store/0c5ma6vzrfd1asz7jg4z0pb8dh8f6z2b-ok"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"layers", "--closure", closure, "--budget", "0"}, "nixery layers: --budget 0 is out of range: use 1 to"},
		{[]string{"layers", "--closure", closure, "--strategy", "bogus"}, `nixery layers: unknown --strategy "bogus"`},
		{[]string{"pack", "--output", filepath.Join(t.TempDir(), "b"), "--concurrency", "-5", path}, "nixery pack: --concurrency -5 is out of range: use 1 to 256, or 0 for one per CPU"},
		{[]string{"popcount", "--cache", "ftp://x", path}, `nixery popcount: --cache: binary cache "ftp://x" is not an https://, http:// or file:// URL`},
		{[]string{"merge", "--image", registry + "/x", "notadigest"}, `nixery merge: "notadigest" is not a digest (sha256:<64 hex digits>) or NAME@DIGEST`},
	} {
		code, stdout, stderr := runCLI(t, tc.args...)
		assert.Check(t, is.Equal(code, 2), "%v: %s", tc.args, stderr)
		line, _, _ := strings.Cut(stderr, "\n")
		assert.Check(t, strings.HasPrefix(line, tc.want), "%v: %s", tc.args, stderr)
		assert.Check(t, is.Equal(strings.Count(stderr, "\n"), 2), "one line and the --help hint: %q", stderr)
		assert.Check(t, is.Equal(stdout, ""), "%v", tc.args)
	}
	assert.Check(t, is.Equal(conns(), 0), "the registry was asked")
}

// countingListener is a TCP address on loopback that counts the
// connections made to it and answers none.
func countingListener(t *testing.T) (string, func() int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	var n atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return l.Addr().String(), func() int { return int(n.Load()) }
}

// "-" as an output is stdout where stdout is free (popcount's data), and
// refused where stdout carries something else (pack's blob description,
// build's result): never a file named "-".
func TestDashOutput(t *testing.T) {
	t.Chdir(t.TempDir())
	cache, _ := narinfoServer(t, "")
	code, stdout, stderr := runCLI(t, "popcount", "--cache", cache, "--output", "-", popcountRoot)
	assert.Equal(t, code, 0, stderr)
	assert.Check(t, is.Contains(stdout, `"glibc-2.40": 1`))

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pack", "--output", "-", "/nix/store/0c5ma6vzrfd1asz7jg4z0pb8dh8f6z2b-ok"}, "nixery pack: --output -: the blob cannot go to stdout, which carries its description: name a file"},
		{[]string{"build", "--nixpkgs", "path:/nonexistent", "--push=false", "--sbom-file", "-", "hello"}, "nixery build: --sbom-file -: the SBOM cannot go to stdout, which carries the result: name a file"},
		{[]string{"build", "--nixpkgs", "path:/nonexistent", "--output", "docker:-", "hello"}, `nixery build: bad output "docker:-": the image cannot go to stdout`},
	} {
		code, stdout, stderr := runCLI(t, tc.args...)
		assert.Check(t, is.Equal(code, 2), "%v: %s", tc.args, stderr)
		assert.Check(t, strings.HasPrefix(stderr, tc.want), "%v: %s", tc.args, stderr)
		assert.Check(t, is.Equal(stdout, ""), "%v", tc.args)
	}
	entries, err := os.ReadDir(".")
	assert.NilError(t, err)
	assert.Check(t, is.Len(entries, 0), "written: %v", entries)
}

// An empty --platforms would build the default platform, and --level 0
// is outside the 1 to 9 (or 22) the help promises: both refused where
// the flags are read, as the action's inputs too.
func TestEmptyPlatformsAndLevelZero(t *testing.T) {
	const noPlatform = "no platform in it: name one or more, e.g. linux/amd64,linux/arm64"
	const levels = "use 1 to 9 (gzip) or 1 to 22 (zstd)"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"build", "--platforms", "", "hello"}, `nixery build: invalid value "" for flag --platforms: ` + noPlatform},
		{[]string{"build", "--platforms", ",", "hello"}, `nixery build: invalid value "," for flag --platforms: ` + noPlatform},
		{[]string{"build", "--level", "0", "hello"}, `nixery build: invalid value "0" for flag --level: ` + levels},
		{[]string{"pack", "--output", filepath.Join(t.TempDir(), "b"), "--level", "0", "/nix/store/0c5ma6vzrfd1asz7jg4z0pb8dh8f6z2b-ok"}, `nixery pack: invalid value "0" for flag --level: ` + levels},
	} {
		code, stdout, stderr := runCLI(t, tc.args...)
		assert.Check(t, is.Equal(code, 2), "%v: %s", tc.args, stderr)
		assert.Check(t, is.Equal(stderr, tc.want+"\n"), "%v", tc.args)
		assert.Check(t, is.Equal(stdout, ""), "%v", tc.args)
	}
	var out bytes.Buffer
	err := runAction(envOf(map[string]string{"INPUT_PLATFORMS": ",", "INPUT_PACKAGES": "hello", "INPUT_PUSH": "false", "INPUT_NIXPKGS": "path:/nonexistent"}), &out)
	assert.Check(t, is.ErrorContains(err, "input platforms: "+noPlatform))
}
