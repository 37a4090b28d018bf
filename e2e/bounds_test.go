//go:build integration

package e2e

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// measured is a finished run of nixery with what it cost.
type measured struct {
	result
	elapsed time.Duration
	maxRSS  int64 // bytes, the peak resident set size
}

// runMeasured runs nixery under GNU time, which reports the peak memory of
// nixery alone (a child's rusage from os/exec would include this test
// process's: Go starts children with vfork, and Linux keeps the peak
// across exec).
func runMeasured(t *testing.T, args ...string) measured {
	t.Helper()
	testenv.Require(t, "time")
	report := filepath.Join(t.TempDir(), "time")
	cmd := exec.Command("time", append([]string{"-f", "%M", "-o", report, nixery}, args...)...)
	cmd.Env = append(os.Environ(), "NIX_CONFIG="+testenv.NixConfig)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running nixery: %v", err)
	}
	text, err := os.ReadFile(report)
	assert.NilError(t, err)
	// The last line; a failing command's status comes before it.
	lines := strings.Split(strings.TrimSpace(string(text)), "\n")
	kib, err := strconv.ParseInt(lines[len(lines)-1], 10, 64)
	assert.NilError(t, err, "GNU time's report: %q", text)
	m := measured{result{stdout.String(), stderr.String(), code}, elapsed, kib << 10}
	t.Logf("nixery %s: %.1f s, peak %d MiB", strings.Join(args, " "), elapsed.Seconds(), m.maxRSS>>20)
	return m
}

// oneLineFailure checks that a run failed with exactly one line holding
// want, within 10 s and 300 MB.
func oneLineFailure(t *testing.T, m measured, want string) {
	t.Helper()
	assert.Equal(t, m.code, 1, m.stderr)
	assert.Equal(t, m.stdout, "")
	assert.Equal(t, strings.Count(m.stderr, "\n"), 1, m.stderr)
	assert.Assert(t, strings.Contains(m.stderr, want), m.stderr)
	assert.Assert(t, m.elapsed < 10*time.Second, m.elapsed)
	assert.Assert(t, m.maxRSS < 300e6, "peak %d bytes", m.maxRSS)
}

// An endless device as the closure fails at once, in a few MiB.
func TestLayersClosureDevZero(t *testing.T) {
	m := runMeasured(t, "layers", "--closure", "/dev/zero")
	oneLineFailure(t, m, "nixery layers: /dev/zero: closure graph: expected the JSON list or object printed by `nix path-info --json --recursive --closure-size`")
}

// A closure file over the bound is refused by its size, unread; one that
// starts as JSON and never ends stops at the bound.
func TestLayersClosureTooLarge(t *testing.T) {
	const want = "closure graph: larger than 256 MiB, the bound on closure graphs"
	file := filepath.Join(t.TempDir(), "closure.json")
	f, err := os.Create(file)
	assert.NilError(t, err)
	_, err = f.WriteString("[")
	assert.NilError(t, err)
	assert.NilError(t, f.Truncate(257<<20)) // sparse: no disk used
	assert.NilError(t, f.Close())
	m := runMeasured(t, "layers", "--closure", file)
	oneLineFailure(t, m, "nixery layers: "+file+": "+want)
	assert.Assert(t, m.maxRSS < 50<<20, "refused by its size, not read: peak %d bytes", m.maxRSS)

	fifo := filepath.Join(t.TempDir(), "endless")
	assert.NilError(t, syscall.Mkfifo(fifo, 0o600))
	go func() {
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer w.Close()
		w.WriteString("[")
		blanks := bytes.Repeat([]byte(" "), 1<<20)
		for {
			if _, err := w.Write(blanks); err != nil {
				return // the reader gave up
			}
		}
	}()
	oneLineFailure(t, runMeasured(t, "layers", "--closure", fifo), "nixery layers: "+fifo+": "+want)
}

// A popularity file over the bound is one line, for layers and build.
func TestPopularityTooLarge(t *testing.T) {
	dir := t.TempDir()
	closure := filepath.Join(dir, "closure.json")
	assert.NilError(t, os.WriteFile(closure, []byte(`[{"path":"/nix/store/00000000000000000000000000000000-a","narSize":1,"references":[]}]`), 0o644))
	pop := filepath.Join(dir, "popularity.json")
	assert.NilError(t, os.WriteFile(pop, append([]byte(`{"a": 1, `), bytes.Repeat([]byte(" "), 64<<20)...), 0o644))
	const want = "popularity data: larger than 64 MiB, the bound on popularity data (MaxBytes; all of nixpkgs' is about 4 MiB): give the output of nixery popcount"
	oneLineFailure(t, runMeasured(t, "layers", "--closure", closure, "--popularity", pop), "nixery layers: "+pop+": "+want)
	oneLineFailure(t, runMeasured(t, "build", "--nixpkgs", standIn(), "--output", "oci:"+filepath.Join(dir, "oci"), "--popularity", pop, "hello"), pop+": "+want)
}

// storePathLine is a narinfo's StorePath line for the path r asks for.
func storePathLine(r *http.Request) string {
	return "StorePath: /nix/store/" + strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), ".narinfo") + "-x\n"
}

// A binary cache whose every narinfo names 5,000 new references is
// stopped at popcount's closure bound, 500,000 paths.
func TestPopcountEndlessReferences(t *testing.T) {
	var next atomic.Int64
	next.Store(10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		b.WriteString(storePathLine(r) + "References:")
		for range 5000 {
			b.WriteString(" " + testenv.NixHash(next.Add(1)) + "-endless-1.0")
		}
		io.WriteString(w, b.String()+"\n")
	}))
	defer srv.Close()
	m := runMeasured(t, "popcount", "--cache", srv.URL, "/nix/store/"+testenv.NixHash(1)+"-root")
	oneLineFailure(t, m, "nixery popcount: binary cache "+srv.URL+": the closure has more than 500000 paths, the bound on popcount's walk")
}

// A narinfo naming ../../../etc/passwd is refused: nothing is counted.
func TestPopcountPathReference(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, storePathLine(r)+"References: "+testenv.NixHash(2)+"-glibc ../../../etc/passwd\n")
	}))
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "popularity.json")
	m := runMeasured(t, "popcount", "--cache", srv.URL, "--output", out, "/nix/store/"+testenv.NixHash(1)+"-root")
	oneLineFailure(t, m, `names the reference "../../../etc/passwd", which is not a store path's base name`)
	_, err := os.Stat(out)
	assert.Assert(t, os.IsNotExist(err), "no popularity data is written")
}

// A cache whose narinfos name one new reference each would take days to
// reach the closure bound: --timeout stops it.
func TestPopcountTimeout(t *testing.T) {
	var next atomic.Int64
	next.Store(10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, storePathLine(r)+"References: "+testenv.NixHash(next.Add(1))+"-endless-1.0\n")
	}))
	defer srv.Close()
	m := runMeasured(t, "popcount", "--cache", srv.URL, "--timeout", "3s", "/nix/store/"+testenv.NixHash(1)+"-root")
	oneLineFailure(t, m, "nixery popcount: binary cache "+srv.URL+": not done after 3s (the timeout), with ")
	assert.Assert(t, m.elapsed > 3*time.Second, m.elapsed)

	r := run(t, nil, "popcount", "--timeout", "0s", "/nix/store/"+testenv.NixHash(1)+"-root")
	assert.Equal(t, r.code, 2)
	assert.Assert(t, strings.Contains(r.stderr, "--timeout 0s: give a positive duration such as 30m"), r.stderr)
}
