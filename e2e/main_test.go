// Package e2e runs the nixery binary as users do, against real Nix, a real
// registry and image clients we did not write (skopeo, umoci, podman).
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

// nixConfig is the offline single-user configuration of the recipes; tests
// set it themselves so they do not depend on /etc/nix/nix.conf.
const nixConfig = "experimental-features = nix-command flakes\nsandbox = false\nbuild-users-group =\nsubstituters =\nextra-platforms = aarch64-linux\n"

// standIn is the flake reference of the stand-in nixpkgs.
func standIn() string { return "path:" + filepath.Join(repoRoot, "testdata", "nixpkgs") }

type result struct {
	stdout, stderr string
	code           int
}

// run runs nixery with args and extra environment variables.
func run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(nixery, args...)
	cmd.Env = append(os.Environ(), "NIX_CONFIG="+nixConfig)
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running nixery: %v", err)
	}
	return result{stdout.String(), stderr.String(), code}
}

// mustRun runs a program and fails the test when it fails.
func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// runOutput runs a program and returns its combined output.
func runOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
