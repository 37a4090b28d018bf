//go:build integration

package flaketest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// These tests run action.yml with nixery built here by go build, given
// as the install step gives a release's binary, so that the step that
// runs nixery gets exactly the env action.yml declares.

// nixeryBinary builds nixery from this checkout.
func nixeryBinary(t *testing.T) string {
	t.Helper()
	testenv.Require(t, "go")
	out := filepath.Join(t.TempDir(), "nixery")
	run(t, repoRoot(t), nil, "go", "build", "-o", out, "./cmd/nixery")
	return out
}

// scriptFlake writes a flake whose package broken runs script with
// /bin/sh as its builder, and returns the flake's reference.
func scriptFlake(t *testing.T, script string) string {
	t.Helper()
	dir := t.TempDir()
	system := nixString(nixSystem(t))
	text := fmt.Sprintf(`{
  outputs = { self }: {
    packages.%s.broken = builtins.derivation {
      name = "broken";
      system = %s;
      builder = "/bin/sh";
      args = [ "-c" %s ];
    };
  };
}
`, system, system, nixString(script))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(text), 0o644))
	return "path:" + dir
}

// actionWithFlake is a runner of action.yml building package broken of
// flake, with nothing pushed, and inputs on top.
func actionWithFlake(t *testing.T, nixery, flake string, inputs map[string]string) *runner {
	t.Helper()
	with := map[string]string{
		"packages": flake + "#broken",
		"nixpkgs":  "path:" + filepath.Join(repoRoot(t), "testdata", "nixpkgs"),
		"push":     "false",
		"sbom":     "false",
	}
	for k, v := range inputs {
		with[k] = v
	}
	r := newRunner(t, repoRoot(t), with, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "NIX_CONFIG=" + testenv.NixConfig})
	r.installed = nixery
	return r
}

// TestActionPrintBuildLogs: a package whose build fails prints a line,
// then 30 more. Nix's error quotes the last 10 lines only; with
// print-build-logs: true the first line reaches the step's log too.
func TestActionPrintBuildLogs(t *testing.T) {
	testenv.Require(t, "nix")
	nixery := nixeryBinary(t)
	for _, logs := range []string{"false", "true"} {
		t.Run("print-build-logs="+logs, func(t *testing.T) {
			// A new derivation each run: Nix builds it, and fails, again.
			marker := fmt.Sprintf("nixery-test-cause-%d", time.Now().UnixNano())
			flake := scriptFlake(t, "echo "+marker+"; i=0; while [ $i -lt 30 ]; do echo filler-$i; i=$((i+1)); done; exit 1")
			r := actionWithFlake(t, nixery, flake, map[string]string{"print-build-logs": logs})
			assert.ErrorContains(t, r.run(t), `step "Build and push"`)
			assert.Check(t, is.Contains(r.stdout, "filler-29"), "Nix's error is gone:\n%s", r.stdout)
			assert.Check(t, is.Contains(r.stdout, "::error title=nixery::"))
			assert.Check(t, strings.Contains(r.stdout, marker) == (logs == "true"),
				"print-build-logs: %s, and the build's first line is in the log: %t\n%s", logs, strings.Contains(r.stdout, marker), r.stdout)
		})
	}
}

// TestActionTimeout: a package whose build would take two minutes fails
// once the timeout input has passed, the error naming that input, and
// leaves no builder running.
func TestActionTimeout(t *testing.T) {
	testenv.Require(t, "nix")
	nixery := nixeryBinary(t)
	marker := fmt.Sprintf("nixery-test-slow-%d", time.Now().UnixNano())
	flake := scriptFlake(t, "echo "+marker+"; /bin/sleep 120")
	r := actionWithFlake(t, nixery, flake, map[string]string{"timeout": "10s"})
	start := time.Now()
	assert.ErrorContains(t, r.run(t), `step "Build and push"`)
	took := time.Since(start)
	assert.Check(t, took < time.Minute, "the step took %s", took)
	assert.Check(t, is.Contains(r.stdout, "timed out after 10s"), r.stdout)
	assert.Check(t, is.Contains(r.stdout, "the timeout input"), r.stdout)
	assert.Check(t, !strings.Contains(r.stdout, "--timeout"), r.stdout)
	assert.Check(t, noProcessWith(marker, 10*time.Second), "a builder of the timed-out build is still running")
}

// noProcessWith waits up to wait for no process's command line to hold s.
func noProcessWith(s string, wait time.Duration) bool {
	for end := time.Now().Add(wait); ; time.Sleep(200 * time.Millisecond) {
		found := false
		cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, f := range cmdlines {
			if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), s) {
				found = true
				break
			}
		}
		if !found || time.Now().After(end) {
			return !found
		}
	}
}
