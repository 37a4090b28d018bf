//go:build integration

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// nixery is the binary under test, built once by TestMain.
var nixery string

// repoRoot is the repository's top directory.
var repoRoot string

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Dir(filepath.Dir(file))
	dir, err := os.MkdirTemp("", "nixery-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	nixery = filepath.Join(dir, "nixery")
	build := exec.Command("go", "build", "-o", nixery, "./cmd/nixery")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building nixery: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// standIn is the flake reference of the stand-in nixpkgs.
func standIn() string { return "path:" + filepath.Join(repoRoot, "testdata", "nixpkgs") }

type result struct {
	stdout, stderr string
	code           int
}

// run runs nixery with args and extra environment variables.
func run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return runStdin(t, "", env, args...)
}

// runStdin is run with standard input.
func runStdin(t *testing.T, stdin string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(nixery, args...)
	cmd.Env = append(append(os.Environ(), "NIX_CONFIG="+testenv.NixConfig), env...)
	cmd.Stdin = strings.NewReader(stdin)
	return runCmd(t, cmd)
}

// runCmd runs cmd and returns its output and exit status; failing to
// start it fails the test.
func runCmd(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", cmd.Path, err)
	}
	return result{stdout.String(), stderr.String(), code}
}

// runOutput runs a program and returns its combined output.
func runOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
