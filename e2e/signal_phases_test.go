//go:build integration

package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// bigSize is the size of the big fixture's one file: random bytes, so
// that packing it at level 9 takes seconds and a signal lands inside it.
const bigSize = 300_000_000

// bigFlake writes a flake whose default package is one file of bigSize
// random bytes, builds it, and returns the flake's reference and the
// package's store path. The path is deleted from the store afterwards.
func bigFlake(t *testing.T) (ref, storePath string) {
	t.Helper()
	dir := t.TempDir()
	flake := fmt.Sprintf(`{
  outputs = { self }: {
    packages.x86_64-linux.default = builtins.derivation {
      name = "signal-big";
      system = "x86_64-linux";
      builder = "/bin/sh";
      args = [ "-c" "/bin/mkdir $out && /usr/bin/head -c %d /dev/urandom > $out/data" ];
    };
  };
}
`, bigSize)
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(flake), 0o644))
	ref = "path:" + dir + "#default"
	cmd := exec.Command("nix", "build", "--no-link", "--json", ref)
	cmd.Env = append(os.Environ(), "NIX_CONFIG="+testenv.NixConfig, "TMPDIR="+t.TempDir())
	out, err := cmd.Output()
	assert.NilError(t, err, "nix build of the big fixture: %s", stderrOf(err))
	var built []struct {
		DrvPath string            `json:"drvPath"`
		Outputs map[string]string `json:"outputs"`
	}
	assert.NilError(t, json.Unmarshal(out, &built))
	assert.Assert(t, len(built) == 1 && built[0].Outputs["out"] != "", string(out))
	storePath = built[0].Outputs["out"]
	t.Cleanup(func() {
		del := exec.Command("nix", "store", "delete", storePath, built[0].DrvPath)
		del.Env = append(os.Environ(), "NIX_CONFIG="+testenv.NixConfig)
		if out, err := del.CombinedOutput(); err != nil {
			t.Logf("nix store delete %s: %v\n%s", storePath, err, out)
		}
	})
	return ref, storePath
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

var stopSignals = []struct {
	sig  syscall.Signal
	name string
	code int
}{
	{syscall.SIGINT, "SIGINT", 130},
	{syscall.SIGTERM, "SIGTERM", 143},
}

// stopped is how a run that was sent a signal ended.
type stopped struct {
	code    int
	stderr  string
	latency time.Duration // from the signal to the exit
}

// interruptWhen runs nixery with args and tmp as its TMPDIR, sends sig as
// soon as ready is true for its process (checked every 2 ms), and waits
// for it to exit.
func interruptWhen(t *testing.T, tmp string, args []string, sig syscall.Signal, ready func(pid int) bool) stopped {
	t.Helper()
	cmd := exec.Command(nixery, args...)
	cmd.Env = append(os.Environ(), "NIX_CONFIG="+testenv.NixConfig, "TMPDIR="+tmp)
	pipe, err := cmd.StderrPipe()
	assert.NilError(t, err)
	assert.NilError(t, cmd.Start())
	var stderr bytes.Buffer
	var mu sync.Mutex
	read := make(chan struct{})
	go func() {
		defer close(read)
		lines := bufio.NewScanner(pipe)
		for lines.Scan() {
			mu.Lock()
			stderr.WriteString(lines.Text() + "\n")
			mu.Unlock()
		}
	}()
	exited := make(chan error, 1)
	go func() {
		<-read
		exited <- cmd.Wait()
	}()
	deadline := time.After(3 * time.Minute)
	var sent time.Time
	for sent.IsZero() {
		select {
		case err := <-exited:
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("nixery ended (%v) before the moment to interrupt it:\n%s", err, stderr.String())
		case <-deadline:
			_ = cmd.Process.Kill()
			t.Fatalf("the moment to interrupt never came")
		case <-time.After(2 * time.Millisecond):
			if ready(cmd.Process.Pid) {
				assert.NilError(t, cmd.Process.Signal(sig))
				sent = time.Now()
			}
		}
	}
	var werr error
	select {
	case werr = <-exited:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		werr = <-exited
		t.Errorf("nixery was still running a minute after the signal")
	}
	latency := time.Since(sent)
	code := 0
	if ee, ok := werr.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if werr != nil {
		t.Fatalf("running nixery: %v", werr)
	}
	return stopped{code: code, stderr: stderr.String(), latency: latency}
}

// readBytes is how many bytes process pid has read so far (rchar), or 0.
func readBytes(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// grown tells whether a file matching pattern holds at least min bytes;
// files in old (a snapshot) do not count.
func grown(pattern string, min int64, old ...map[string]string) func() bool {
	return func() bool {
		files, _ := filepath.Glob(pattern)
		for _, f := range files {
			if len(old) > 0 && old[0][f] != "" {
				continue
			}
			if info, err := os.Stat(f); err == nil && info.Size() >= min {
				return true
			}
		}
		return false
	}
}

// snapshot maps each file and directory under dir to its mode and, for
// files, the sha256 of its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files[p] = info.Mode().String()
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files[p] += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		return nil
	})
	if os.IsNotExist(err) {
		return files
	}
	assert.NilError(t, err)
	return files
}

// maxStopLatency bounds how long nixery may take to stop after a signal
// (it takes a tenth of a second or less here).
const maxStopLatency = 2 * time.Second

// TestSignalsStopEveryPhase sends SIGINT and SIGTERM while a large layer
// is packed (with --push=false, and streaming to a registry), while an
// OCI layout or a docker archive is written, and while nixery pack packs:
// nixery stops within seconds, exits 130 or 143, leaves nothing in its
// TMPDIR or the output directory, and an existing layout as it was.
func TestSignalsStopEveryPhase(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo")
	registry := testenv.StartRegistry(t)
	ref, storePath := bigFlake(t)
	build := func(level string, dest ...string) []string {
		args := append([]string{"build", "--nixpkgs", standIn(), "--no-default-packages", "--cmd", "data", "--level", level}, dest...)
		return append(args, ref)
	}
	// An existing layout, written before any interrupted run.
	existing := filepath.Join(t.TempDir(), "layout")
	if r := run(t, nil, "build", "--nixpkgs", standIn(), "--output", "oci:"+existing, "hello"); r.code != 0 {
		t.Fatalf("writing the existing layout: %s", r.stderr)
	}

	type phase struct {
		name  string
		cmd   string
		args  func(sig string, tmp, out string) []string
		ready func(tmp, out string, pid int) bool
		after time.Duration // how long after the start ready is first asked
		tmpfs bool          // TMPDIR on another file system than out
		check func(t *testing.T, sig string, tmp, out string)
	}
	packing := func(tmp, _ string, _ int) bool {
		return grown(filepath.Join(tmp, "nixery-build-*", "layer-*"), 8<<20)()
	}
	outEmpty := func(t *testing.T, _, _, out string) {
		entries, err := os.ReadDir(out)
		assert.NilError(t, err)
		assert.Check(t, is.Len(entries, 0), "left in the output directory: %v", entries)
	}
	before := snapshot(t, existing)
	// A blob this big is the big layer being written: hello's are smaller.
	const bigBlob = 16 << 20
	// Per-platform images pushed by digest, for merge to join through a
	// registry slow enough to be interrupted.
	pushed := decodeResult(t, run(t, nil, "build", "--nixpkgs", standIn(), "--image", registry+"/signal/merge", "--push-by-digest", "--json", "hello"))
	slow := slowProxy(t, registry, 300*time.Millisecond)
	// The big layer pushed once: a build under another tag verifies it
	// (hashes the store path as a tar) instead of packing it.
	if r := run(t, nil, build("1", "--image", registry+"/signal/verify", "--tags", "v1")...); r.code != 0 {
		t.Fatalf("pushing the big layer: %s", r.stderr)
	}
	phases := []phase{
		{
			name:  "packing with --push=false",
			cmd:   "build",
			args:  func(string, string, string) []string { return build("9", "--push=false") },
			ready: packing,
		},
		{
			name: "packing while streaming to a registry",
			cmd:  "build",
			args: func(sig, _, _ string) []string {
				return build("9", "--image", registry+"/signal/stream-"+strings.ToLower(sig), "--tags", "v1")
			},
			ready: packing,
			check: func(t *testing.T, sig, _, _ string) { assertNoTags(t, registry+"/signal/stream-"+strings.ToLower(sig)) },
		},
		{
			name:  "writing into an existing OCI layout",
			cmd:   "build",
			tmpfs: true, // as below
			args:  func(string, string, string) []string { return build("1", "--output", "oci:"+existing) },
			ready: func(string, string, int) bool {
				// A new blob: a run that left one must not fire the next.
				return grown(filepath.Join(existing, "blobs", "sha256", "*"), bigBlob, before)()
			},
			check: func(t *testing.T, _, _, _ string) {
				assert.Check(t, is.DeepEqual(snapshot(t, existing), before), "the existing layout changed")
			},
		},
		{
			// With TMPDIR on the layout's file system the layers are
			// linked into it at once, leaving no time to interrupt; on
			// another, they are copied.
			name:  "writing a new OCI layout",
			cmd:   "build",
			tmpfs: true,
			args:  func(_, _, out string) []string { return build("1", "--output", "oci:"+filepath.Join(out, "layout")) },
			ready: func(_, out string, _ int) bool {
				return grown(filepath.Join(out, "layout", "blobs", "sha256", "*"), bigBlob)()
			},
			check: outEmpty,
		},
		{
			name: "writing a docker archive",
			cmd:  "build",
			args: func(_, _, out string) []string {
				return build("1", "--output", "docker:"+filepath.Join(out, "img.tar"))
			},
			ready: func(_, out string, _ int) bool { return grown(filepath.Join(out, ".img.tar.*"), bigBlob)() },
			check: outEmpty,
		},
		{
			name: "verifying a cached layer",
			cmd:  "build",
			args: func(sig, _, _ string) []string {
				return build("1", "--image", registry+"/signal/verify", "--tags", strings.ToLower(sig))
			},
			// Nothing is written while a layer is verified: the process
			// has read part of the big file.
			ready: func(_, _ string, pid int) bool { return readBytes(pid) > 32<<20 },
			check: func(t *testing.T, sig, _, _ string) {
				out := testenv.Run(t, "skopeo", "list-tags", "--tls-verify=false", "docker://"+registry+"/signal/verify")
				assert.Check(t, !strings.Contains(out, `"`+strings.ToLower(sig)+`"`), "the interrupted build tagged the index: %s", out)
			},
		},
		{
			name: "nixery pack",
			cmd:  "pack",
			args: func(_, _, out string) []string {
				return []string{"pack", "--level", "9", "--output", filepath.Join(out, "layer.tar.gz"), storePath}
			},
			ready: func(_, out string, _ int) bool { return grown(filepath.Join(out, ".layer.tar.gz.*"), 8<<20)() },
			check: outEmpty,
		},
		{
			name: "nixery merge",
			cmd:  "merge",
			args: func(sig, _, _ string) []string {
				return []string{"merge", "--image", slow + "/signal/merge", "--tags", strings.ToLower(sig), pushed.Digest}
			},
			// It is a few requests, each held up by the proxy.
			ready: func(string, string, int) bool { return true },
			after: 700 * time.Millisecond,
			check: func(t *testing.T, sig, _, _ string) {
				// The pushes by digest left their own tags (SBOM fallbacks, the cache record).
				out := testenv.Run(t, "skopeo", "list-tags", "--tls-verify=false", "docker://"+registry+"/signal/merge")
				assert.Check(t, !strings.Contains(out, `"`+strings.ToLower(sig)+`"`), "the interrupted merge tagged the index: %s", out)
			},
		},
	}
	for _, ph := range phases {
		for _, s := range stopSignals {
			t.Run(ph.name+"/"+s.name, func(t *testing.T) {
				tmp, out := t.TempDir(), t.TempDir()
				if ph.tmpfs {
					tmp = mountTmpfs(t, "1g")
				}
				start := time.Now()
				ready := func(pid int) bool { return time.Since(start) >= ph.after && ph.ready(tmp, out, pid) }
				got := interruptWhen(t, tmp, ph.args(s.name, tmp, out), s.sig, ready)
				t.Logf("%s: stopped %s after %s", ph.name, s.name, got.latency.Round(time.Millisecond))
				assert.Check(t, is.Equal(got.code, s.code), got.stderr)
				assert.Check(t, is.Contains(got.stderr, "nixery "+ph.cmd+": interrupted by "+s.name+"\n"))
				assert.Check(t, got.latency < maxStopLatency, "stopping took %s", got.latency)
				left, err := os.ReadDir(tmp)
				assert.NilError(t, err)
				assert.Check(t, is.Len(left, 0), "left in TMPDIR: %v", left)
				if ph.check != nil {
					ph.check(t, s.name, tmp, out)
				}
			})
		}
	}
}
