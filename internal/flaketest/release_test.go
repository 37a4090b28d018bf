//go:build integration

package flaketest

import (
	"bytes"
	"context"
	"debug/elf"
	"debug/macho"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// releaseTargets are the binaries scripts/build-release.sh makes.
var releaseTargets = []string{"linux-amd64", "linux-arm64", "darwin-amd64", "darwin-arm64"}

// release is a copy of the repository with its release built and recorded
// (release/SHA256SUMS, release/source), as a release commit is.
type release struct {
	dir     string // the repository, which is also a copy of the action
	version string
	assets  map[string][]byte // asset name -> bytes
}

// buildRelease copies the tracked files into a new directory and runs
// scripts/build-release.sh --record there, with env added.
func buildRelease(t testing.TB, env ...string) *release {
	return buildReleaseOf(t, releaseTargets, env...)
}

// buildReleaseOf builds some of the targets ("linux-amd64", ...).
func buildReleaseOf(t testing.TB, targets []string, env ...string) *release {
	t.Helper()
	testenv.Require(t, "go", "git", "jq", "bash")
	r := &release{dir: filepath.Join(t.TempDir(), "repo"), assets: map[string][]byte{}}
	copyTracked(t, repoRoot(t), r.dir)
	cmd := exec.Command("bash", "scripts/build-release.sh", "--record", "dist")
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), env...)
	if len(targets) < len(releaseTargets) {
		var list []string
		for _, target := range targets {
			list = append(list, strings.Replace(target, "-", "/", 1))
		}
		cmd.Env = append(cmd.Env, "RELEASE_TARGETS="+strings.Join(list, " "))
	}
	out, err := cmd.CombinedOutput()
	assert.NilError(t, err, "scripts/build-release.sh --record:\n%s", tail(string(out), 30))
	r.version = strings.TrimSpace(readFile(t, filepath.Join(r.dir, "VERSION")))
	for _, target := range targets {
		b, err := os.ReadFile(filepath.Join(r.dir, "dist", "nixery-"+target))
		assert.NilError(t, err)
		r.assets["nixery-"+target] = b
	}
	return r
}

// TestRelease builds the release twice, in two directories, the second
// with an empty Go build cache, and checks that the bytes are the same;
// then checks the binaries, and the action's download of them from a
// stand-in releases host.
func TestRelease(t *testing.T) {
	a := buildRelease(t)

	t.Run("reproducible", func(t *testing.T) {
		// One target from an empty build cache, in another directory:
		// nothing cached or local leaks into the bytes. (All four would
		// take minutes; they are built the same way.)
		b := buildReleaseOf(t, releaseTargets[:1], "GOCACHE="+t.TempDir())
		asset := "nixery-" + releaseTargets[0]
		assert.Assert(t, bytes.Equal(a.assets[asset], b.assets[asset]), "%s differs between two builds", asset)
		// What release.yml does on the tag, in that other directory:
		// rebuild every target and compare with the committed release/.
		assert.NilError(t, os.RemoveAll(filepath.Join(b.dir, "release")))
		copyDir(t, filepath.Join(a.dir, "release"), filepath.Join(b.dir, "release"))
		run(t, b.dir, nil, "bash", "scripts/build-release.sh", "--check", filepath.Join(t.TempDir(), "dist"))
	})

	t.Run("binaries", func(t *testing.T) {
		sums := readFile(t, filepath.Join(a.dir, "release", "SHA256SUMS"))
		assert.Equal(t, len(strings.Split(strings.TrimSpace(sums), "\n")), len(releaseTargets), sums)

		// Static Linux binaries, darwin ones for the right CPUs.
		for _, tc := range []struct {
			target  string
			machine elf.Machine
		}{{"linux-amd64", elf.EM_X86_64}, {"linux-arm64", elf.EM_AARCH64}} {
			exe, err := elf.NewFile(bytes.NewReader(a.assets["nixery-"+tc.target]))
			assert.NilError(t, err)
			assert.Equal(t, exe.Machine, tc.machine)
			for _, p := range exe.Progs {
				assert.Assert(t, p.Type != elf.PT_INTERP, "%s is dynamically linked", tc.target)
			}
		}
		for _, tc := range []struct {
			target string
			cpu    macho.Cpu
		}{{"darwin-amd64", macho.CpuAmd64}, {"darwin-arm64", macho.CpuArm64}} {
			exe, err := macho.NewFile(bytes.NewReader(a.assets["nixery-"+tc.target]))
			assert.NilError(t, err)
			assert.Equal(t, exe.Cpu, tc.cpu)
		}

		// The version is VERSION's; the default nixpkgs is flake.lock's pin.
		native := filepath.Join(a.dir, "dist", "nixery-linux-"+runtime.GOARCH)
		assert.Equal(t, run(t, a.dir, nil, native, "--version"), "nixery "+a.version+"\n")
		var lock struct {
			Nodes map[string]struct {
				Locked struct{ Owner, Repo, Rev, NarHash string }
			}
		}
		assert.NilError(t, json.Unmarshal([]byte(readFile(t, filepath.Join(a.dir, "flake.lock"))), &lock))
		pin := lock.Nodes["nixpkgs"].Locked
		// With its tree's NAR hash, as the flake's package bakes it.
		want := "github:" + pin.Owner + "/" + pin.Repo + "/" + pin.Rev + "?narHash=" + pin.NarHash
		assert.Assert(t, bytes.Contains(a.assets["nixery-linux-amd64"], []byte(want)), "the binary does not default to %s", want)
	})

	t.Run("source digest", func(t *testing.T) {
		digest := func(dir string) string {
			return strings.TrimSpace(run(t, dir, nil, "bash", "-c", `. "$1/action/release-lib.sh" && source_digest "$1"`, "-", dir))
		}
		recorded := strings.TrimSpace(readFile(t, filepath.Join(a.dir, "release", "source")))
		copyOf := filepath.Join(t.TempDir(), "copy")
		copyDir(t, a.dir, copyOf)
		assert.Equal(t, digest(copyOf), recorded)

		// Docs and tests are not what the binary is built from; code is.
		appendTo(t, filepath.Join(copyOf, "README.md"), "\nmore words\n")
		appendTo(t, filepath.Join(copyOf, "cmd", "nixery", "main_test.go"), "\n// a comment\n")
		assert.Equal(t, digest(copyOf), recorded)
		appendTo(t, filepath.Join(copyOf, "cmd", "nixery", "main.go"), "\n// a comment\n")
		assert.Assert(t, digest(copyOf) != recorded)
	})

	t.Run("install", func(t *testing.T) { testInstall(t, a) })
	t.Run("merge without Nix", func(t *testing.T) { testMergeWithBinary(t, a) })
	t.Run("merge without Nix, download failing", func(t *testing.T) { testMergeDownloadFails(t, a) })
}

// testMergeDownloadFails runs action.yml in merge mode at a release of a
// fork, on a PATH without Nix, where the download fails: the action
// downloads from the fork's releases, and its error says why there is no
// binary rather than blaming a branch.
func testMergeDownloadFails(t *testing.T, a *release) {
	path := tools(t, append(scriptTools, "env")...)
	r := newRunner(t, a.dir, map[string]string{
		"image":         "127.0.0.1:1/action/merged",
		"merge-digests": "sha256:" + strings.Repeat("0", 64),
	}, []string{"PATH=" + path, "HOME=" + t.TempDir(), "https_proxy=" + closedServerURL(t)})
	r.actionRepository = "someone/nixery-fork"
	err := r.run(t)
	assert.ErrorContains(t, err, `step "Check for Nix to build nixery"`)
	url := "https://github.com/someone/nixery-fork/releases/download/v" + a.version + "/nixery-linux-" + runtime.GOARCH
	var annotations []string
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(line, "::error") {
			annotations = append(annotations, line)
		}
	}
	assert.Assert(t, is.Len(annotations, 1), r.stdout)
	assert.Assert(t, is.Contains(annotations[0], "::error title=Nix is missing::"))
	assert.Assert(t, is.Contains(annotations[0], "(downloading "+url+" failed: curl: (7)"))
	assert.Assert(t, !strings.Contains(annotations[0], "a branch"), annotations[0])
}

// testMergeWithBinary runs action.yml in merge mode, as a runner would, on
// a PATH without Nix: the release binary comes from the stand-in host and
// merges two per-platform images into one index.
func testMergeWithBinary(t *testing.T, a *release) {
	testenv.Require(t, "docker-registry", "skopeo")
	host := testenv.StartRegistry(t)
	repo := host + "/action/merged"
	var digests []string
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{OS: "linux", Architecture: arch})
		assert.NilError(t, err)
		ref, err := name.ParseReference(repo+":"+arch, name.Insecure)
		assert.NilError(t, err)
		assert.NilError(t, remote.Write(ref, img))
		d, err := img.Digest()
		assert.NilError(t, err)
		digests = append(digests, d.String())
	}

	releases := releasesHost(t, a.version, a.assets)
	path := tools(t, append(scriptTools, "env")...)
	r := newRunner(t, a.dir, map[string]string{
		"image":         repo,
		"tags":          "v1",
		"merge-digests": strings.Join(digests, "\n"),
	}, []string{"PATH=" + path, "HOME=" + t.TempDir(), "NIXERY_TEST_RELEASES_URL=" + releases.URL})
	assert.NilError(t, r.run(t), r.stdout)
	assert.Assert(t, is.Contains(r.stdout, "using the release binary"))

	raw := run(t, "", nil, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+repo+":v1")
	var index v1.IndexManifest
	assert.NilError(t, json.Unmarshal([]byte(raw), &index))
	var got []string
	for _, m := range index.Manifests {
		got = append(got, m.Digest.String())
	}
	assert.DeepEqual(t, got, digests)
	assert.Equal(t, r.outputs(t)["image"], repo+"@"+r.outputs(t)["digest"])
}

// BenchmarkActionStartup measures what the action spends before nixery
// runs: with a release, installing the binary (the action's script: source
// digest, download from a loopback host, SHA-256 check) and running it;
// without one, `nix run` of the action's flake, once with nixery to build
// (an empty Go build cache; the Go toolchain and the vendored modules are
// already here, which on a fresh runner are downloaded too) and once with
// nixery already in the store.
//
//	go test -run '^$' -bench ActionStartup -benchtime 3x ./internal/flaketest/
func BenchmarkActionStartup(b *testing.B) {
	a := buildRelease(b)
	host := releasesHost(b, a.version, a.assets)

	b.Run("binary", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			out, command, err := install(b, a.dir, host.URL, false, "RUNNER_TEMP="+b.TempDir())
			if err != nil || command == "" {
				b.Fatalf("install: %v\n%s", err, out)
			}
			run(b, "", nil, command, "--version")
		}
	})

	f := newFlake(b)
	b.Run("nix-run-cold", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			standIn := f.standIn(b, b.TempDir())
			b.StartTimer()
			f.nix(b, "run", "--override-input", "nixpkgs", standIn, ".#nixery", "--", "--version")
		}
	})
	b.Run("nix-run-built", func(b *testing.B) {
		f.nix(b, "run", ".#nixery", "--", "--version")
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			f.nix(b, "run", ".#nixery", "--", "--version")
		}
	})
}

func testInstall(t *testing.T, a *release) {
	native := "nixery-linux-" + runtime.GOARCH
	host := releasesHost(t, a.version, a.assets)

	t.Run("good binary", func(t *testing.T) {
		out, command, err := install(t, a.dir, host.URL, false)
		assert.NilError(t, err, out)
		assert.Assert(t, is.Contains(out, "using the release binary "+native+" of v"+a.version))
		got, err := os.ReadFile(command)
		assert.NilError(t, err, "command output %q", command)
		assert.Assert(t, bytes.Equal(got, a.assets[native]))
		assert.Equal(t, run(t, "", nil, command, "--version"), "nixery "+a.version+"\n")
	})

	t.Run("macOS runner", func(t *testing.T) {
		out, command, err := install(t, a.dir, host.URL, false, "RUNNER_OS=macOS", "RUNNER_ARCH=ARM64")
		assert.NilError(t, err, out)
		got, err := os.ReadFile(command)
		assert.NilError(t, err)
		assert.Assert(t, bytes.Equal(got, a.assets["nixery-darwin-arm64"]))
	})

	t.Run("bad checksum", func(t *testing.T) {
		// The host serves other bytes under the name (here the other
		// architecture's binary): refused, and nothing is left to run.
		swapped := map[string][]byte{}
		for k, v := range a.assets {
			swapped[k] = v
		}
		swapped["nixery-linux-amd64"], swapped["nixery-linux-arm64"] = a.assets["nixery-linux-arm64"], a.assets["nixery-linux-amd64"]
		bad := releasesHost(t, a.version, swapped)
		temp := t.TempDir()
		out, command, err := install(t, a.dir, bad.URL, true, "RUNNER_TEMP="+temp)
		oneError(t, out, err, "but this action records")
		assert.Assert(t, is.Contains(out, native+" of v"+a.version+": not running it"))
		assert.Equal(t, command, "")
		left, _ := filepath.Glob(filepath.Join(temp, "nixery-v*", "nixery*"))
		assert.Assert(t, is.Len(left, 0), "left behind: %v", left)
	})

	t.Run("missing asset", func(t *testing.T) {
		empty := releasesHost(t, a.version, nil)
		out, outputs, err := installOutputs(t, a.dir, empty.URL, true)
		command := outputs["command"]
		assert.NilError(t, err, out)
		assert.Assert(t, is.Contains(out, "release v"+a.version+" has no "+native))
		assert.Assert(t, is.Contains(outputs["reason"], "release v"+a.version+" has no "+native))
		assert.Assert(t, is.Contains(out, "building nixery with nix run"))
		assert.Equal(t, command, "")

		// Without Nix too: the action checks for Nix, or installs it,
		// after this step when merging, which needs none otherwise.
		out, command, err = install(t, a.dir, empty.URL, false)
		assert.NilError(t, err, out)
		assert.Assert(t, is.Contains(out, "building nixery with nix run"))
		assert.Equal(t, command, "")
	})

	t.Run("host unreachable", func(t *testing.T) {
		gone := closedServerURL(t)
		out, outputs, err := installOutputs(t, a.dir, gone, true)
		assert.NilError(t, err, out)
		assert.Assert(t, is.Contains(out, "failed"))
		assert.Equal(t, outputs["command"], "")
		// Why, for the action's message if Nix is missing.
		assert.Assert(t, is.Contains(outputs["reason"], "downloading "+gone+"/v"+a.version+"/"+native+" failed: curl: (7)"))
	})

	t.Run("stalled download", func(t *testing.T) {
		// A host that answers, sends a little and then nothing: the
		// download gives up and Nix builds nixery, instead of holding the
		// job until its timeout.
		stalled := stallingHost(t)
		start := time.Now()
		out, outputs, err := installOutputs(t, a.dir, stalled, true, "NIXERY_TEST_STALL_SECONDS=2")
		assert.NilError(t, err, out)
		assert.Assert(t, is.Contains(out, "Operation too slow"))
		assert.Assert(t, is.Contains(out, "building nixery with nix run"))
		assert.Equal(t, outputs["command"], "")
		assert.Assert(t, time.Since(start) < time.Minute, "took %s", time.Since(start))
	})

	t.Run("releases of the action's repository", func(t *testing.T) {
		// No test host: the URL is the real one, which a proxy that
		// refuses connections keeps on this machine. A fork downloads its
		// own releases; anything else, nixery-action's.
		proxy := "https_proxy=" + closedServerURL(t)
		fork := "https://github.com/someone/nixery-fork/releases/download/v" + a.version + "/" + native
		upstream := "https://github.com/nixery-action/nixery-action/releases/download/v" + a.version + "/" + native
		for _, tc := range []struct {
			name string
			env  []string
			want string
		}{
			{"github.action_repository", []string{"NIXERY_ACTION_REPOSITORY=someone/nixery-fork"}, fork},
			{"GITHUB_ACTION_REPOSITORY", []string{"GITHUB_ACTION_REPOSITORY=someone/nixery-fork"}, fork},
			{"none", nil, upstream},
			{"not owner/name", []string{"NIXERY_ACTION_REPOSITORY=someone/../../x"}, upstream},
			// uses: ./ runs the copy in the workspace, whatever repository
			// the runner names.
			{"local copy", []string{"NIXERY_ACTION_REPOSITORY=someone/app", "GITHUB_WORKSPACE=" + filepath.Dir(a.dir)}, upstream},
		} {
			t.Run(tc.name, func(t *testing.T) {
				out, command, err := install(t, a.dir, "", true, append(tc.env, proxy)...)
				assert.NilError(t, err, out)
				assert.Assert(t, is.Contains(out, "downloading "+tc.want+" failed"))
				assert.Equal(t, command, "")
			})
		}
	})

	t.Run("not the release", func(t *testing.T) {
		// A branch or a commit after the release: same VERSION, other
		// code. It must not run the release binary.
		branch := filepath.Join(t.TempDir(), "branch")
		copyDir(t, a.dir, branch)
		appendTo(t, filepath.Join(branch, "pkg", "nix", "nix.go"), "\n// changed on a branch\n")
		out, command, err := install(t, branch, host.URL, true)
		assert.NilError(t, err, out)
		assert.Assert(t, is.Contains(out, "is not release v"+a.version))
		assert.Equal(t, command, "")

		// And the repository as committed records no release at all.
		out, command, err = install(t, repoRoot(t), host.URL, true)
		assert.NilError(t, err, out)
		if _, statErr := os.Stat(filepath.Join(repoRoot(t), "release", "source")); statErr != nil {
			assert.Assert(t, is.Contains(out, "records no release"))
		}
		assert.Equal(t, command, "")
	})

	t.Run("unsupported runner", func(t *testing.T) {
		out, _, err := install(t, a.dir, host.URL, true, "RUNNER_OS=Windows")
		oneError(t, out, err, "runs on Linux and macOS runners, not Windows")
	})
}

func appendTo(t *testing.T, file, text string) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	assert.NilError(t, err)
	_, err = f.WriteString(text)
	assert.NilError(t, err)
	assert.NilError(t, f.Close())
}

// releasesHost stands in for GitHub's releases: it serves assets under
// /vVERSION/NAME and answers 404 for anything else.
func releasesHost(t testing.TB, version string, assets map[string][]byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, "/v"+version+"/")
		b, found := assets[name]
		if !ok || !found {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// closedServerURL is the URL of a loopback server that is gone: nothing
// listens there.
func closedServerURL(t testing.TB) string {
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	return gone.URL
}

// stallingHost answers every request with 200 and a length of 100 MB,
// sends 1000 bytes and then nothing until the client leaves or the test
// ends.
func stallingHost(t testing.TB) string {
	t.Helper()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000000")
		_, _ = w.Write(make([]byte, 1000))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(done) }) // first: Close waits for the handlers
	return srv.URL
}

// tools is a PATH directory with only the named programs of this machine,
// so that a script can run without others (nix).
func tools(t testing.TB, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		p, err := exec.LookPath(n)
		assert.NilError(t, err)
		assert.NilError(t, os.Symlink(p, filepath.Join(dir, n)))
	}
	return dir
}

var scriptTools = []string{"bash", "curl", "sha256sum", "awk", "find", "sort", "mktemp", "tr", "cut", "head", "mv", "rm", "mkdir", "chmod", "cat", "uname", "dirname"}

// install runs action/install.sh of the action in dir as the
// action's step does, and returns what it printed and the command output.
func install(t testing.TB, dir, releasesURL string, withNix bool, env ...string) (stdout, command string, err error) {
	t.Helper()
	out, outputs, err := installOutputs(t, dir, releasesURL, withNix, env...)
	return out, outputs["command"], err
}

// installOutputs is install returning every output of the step. A script
// still running after two minutes is stopped (a hung download).
func installOutputs(t testing.TB, dir, releasesURL string, withNix bool, env ...string) (string, map[string]string, error) {
	t.Helper()
	path := tools(t, scriptTools...)
	if withNix {
		nix, lookErr := exec.LookPath("nix")
		assert.NilError(t, lookErr)
		path += ":" + filepath.Dir(nix)
	}
	work := t.TempDir()
	outputFile := filepath.Join(work, "output")
	assert.NilError(t, os.WriteFile(outputFile, nil, 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "action", "install.sh"))
	cmd.WaitDelay = time.Second
	cmd.Env = append([]string{
		"PATH=" + path,
		"HOME=" + work,
		"RUNNER_OS=Linux",
		"RUNNER_ARCH=" + runnerArch(t),
		"RUNNER_TEMP=" + work,
		"GITHUB_ACTION_PATH=" + dir,
		"GITHUB_OUTPUT=" + outputFile,
		"NIXERY_TEST_RELEASES_URL=" + releasesURL,
	}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), readOutputs(t, outputFile), err
}

// oneError checks that a failure printed exactly one line, an ::error::
// annotation holding want.
func oneError(t *testing.T, out string, err error, want string) {
	t.Helper()
	assert.Assert(t, err != nil, "the script succeeded:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	assert.Assert(t, is.Len(lines, 1), "want one line, got:\n%s", out)
	assert.Assert(t, strings.HasPrefix(lines[0], "::error "), lines[0])
	assert.Assert(t, is.Contains(lines[0], want))
}

// TestReleaseBuildEnvironment records a release, then rebuilds it with
// --check (as release.yml does on the tag) where the builder's Go
// environment would change the bytes: a `go env -w` file, GOFIPS140, and a
// Go on PATH that reports the pinned version but is patched (as nixpkgs'
// Go is). Each must build the recorded bytes.
func TestReleaseBuildEnvironment(t *testing.T) {
	a := buildReleaseOf(t, releaseTargets[:1])
	script := readFile(t, filepath.Join(a.dir, "scripts", "build-release.sh"))
	pinned := regexp.MustCompile(`(?m)^go_toolchain=(go[0-9.]+)$`).FindStringSubmatch(script)
	assert.Assert(t, pinned != nil, "scripts/build-release.sh pins no go_toolchain")

	// The official toolchain the record used, copied, with a line added
	// at the top of the runtime: every line number after it moves, so
	// what it builds has other bytes.
	modcache := strings.TrimSpace(run(t, "", nil, "go", "env", "GOMODCACHE"))
	official := filepath.Join(modcache, "golang.org", "toolchain@v0.0.1-"+pinned[1]+".linux-"+runtime.GOARCH)
	patched := filepath.Join(t.TempDir(), "go")
	copyDir(t, official, patched)
	proc := filepath.Join(patched, "src", "runtime", "proc.go")
	text := readFile(t, proc)
	assert.NilError(t, os.Remove(proc))
	assert.NilError(t, os.WriteFile(proc, []byte("// patched\n"+text), 0o644))
	assert.Equal(t, strings.TrimSpace(run(t, "", []string{"GOTOOLCHAIN=local"}, filepath.Join(patched, "bin", "go"), "env", "GOVERSION")), pinned[1])

	envFile := filepath.Join(t.TempDir(), "go.env")
	assert.NilError(t, os.WriteFile(envFile, []byte("GOAMD64=v3\n"), 0o644))

	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"go env -w GOAMD64=v3", []string{"GOENV=" + envFile}},
		{"GOFIPS140=latest", []string{"GOFIPS140=latest"}},
		{"patched Go on PATH", []string{"PATH=" + filepath.Join(patched, "bin") + ":" + os.Getenv("PATH")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("bash", "scripts/build-release.sh", "--check", filepath.Join(t.TempDir(), "dist"))
			cmd.Dir = a.dir
			cmd.Env = append(os.Environ(), append(tc.env, "RELEASE_TARGETS=linux/amd64")...)
			out, err := cmd.CombinedOutput()
			assert.NilError(t, err, "scripts/build-release.sh --check:\n%s", tail(string(out), 20))
			assert.Assert(t, is.Contains(string(out), "the binaries match release/SHA256SUMS"))
		})
	}
}

// TestReleaseArguments: scripts/build-release.sh refuses what it does not
// know, in one line, before building anything; options may follow OUTDIR.
func TestReleaseArguments(t *testing.T) {
	testenv.Require(t, "go", "git", "jq", "bash")
	dir := filepath.Join(t.TempDir(), "repo")
	copyTracked(t, repoRoot(t), dir)
	for _, args := range [][]string{
		{"dist", "--recrod"},
		{"dist", "extra"},
		{"--record", "--check"},
		{"-h"},
		{""},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			cmd := exec.Command("bash", append([]string{"scripts/build-release.sh"}, args...)...)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			assert.Assert(t, errors.As(err, &exit), "exit: %v\n%s", err, out)
			assert.Equal(t, exit.ExitCode(), 2, string(out))
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			assert.Assert(t, is.Len(lines, 1), string(out))
			assert.Assert(t, is.Contains(lines[0], "usage: scripts/build-release.sh [--record | --check] [OUTDIR]"))
			for _, made := range []string{"dist", "extra", "release"} {
				_, statErr := os.Stat(filepath.Join(dir, made))
				assert.Assert(t, os.IsNotExist(statErr), "%s was made", made)
			}
		})
	}

	// An option after OUTDIR counts.
	cmd := exec.Command("bash", "scripts/build-release.sh", "out", "--record")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "RELEASE_TARGETS=linux/amd64")
	out, err := cmd.CombinedOutput()
	assert.NilError(t, err, tail(string(out), 20))
	recorded := readFile(t, filepath.Join(dir, "release", "SHA256SUMS"))
	assert.Equal(t, recorded, readFile(t, filepath.Join(dir, "out", "SHA256SUMS")))
}
