//go:build integration

package e2e

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// serveExit runs nixery serve, which is expected to refuse to start, and
// returns its exit status and stderr; one still running after 30 seconds
// (serving what it cannot build) fails the test.
func serveExit(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	host := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nixery, append([]string{"serve", "--listen", host}, args...)...)
	cmd.Env = append(append(os.Environ(), "NIX_CONFIG="+testenv.NixConfig), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	assert.Assert(t, ctx.Err() == nil, "nixery serve was still running after 30 seconds: %s", stderr.String())
	var ee *exec.ExitError
	assert.Assert(t, errors.As(err, &ee), "nixery serve exited with %v: %s", err, stderr.String())
	return ee.ExitCode(), stderr.String()
}

// A server that could build nothing refuses to start, in one line that
// says what is wrong and what to do, rather than logging "serving" and
// answering every pull MANIFEST_UNKNOWN: a storage registry that wants a
// login nobody gave, no Nix on PATH, a --nixpkgs Nix cannot read.
func TestServeRefusesAtStart(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "htpasswd")
	reg, _, _ := testenv.StartAuthRegistry(t)
	noLogin := t.TempDir() // a DOCKER_CONFIG without credentials
	noNix := t.TempDir()   // a PATH without nix
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"storage registry wants a login", []string{"DOCKER_CONFIG=" + noLogin},
			[]string{"--nixpkgs", standIn(), "--storage", "docker://" + reg + "/nixery/store"},
			[]string{"nixery serve: authentication failed for registry " + reg + ": no credentials found; run docker login " + reg}},
		{"no nix on PATH", []string{"PATH=" + noNix},
			[]string{"--nixpkgs", standIn(), "--storage", t.TempDir()},
			[]string{`nixery serve: cannot run Nix (exec: "nix": executable file not found in $PATH): install Nix and put nix on PATH`}},
		{"nixpkgs missing", nil,
			[]string{"--nixpkgs", "path:" + missing, "--storage", t.TempDir()},
			[]string{`nixery serve: reading the nixpkgs flake "path:` + missing + `" failed: `, "; check --nixpkgs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := serveExit(t, tc.env, tc.args...)
			assert.Check(t, is.Equal(code, 1), stderr)
			assert.Check(t, is.Equal(strings.Count(stderr, "\n"), 1), "not one line: %q", stderr)
			for _, want := range tc.want {
				assert.Check(t, is.Contains(stderr, want))
			}
			assert.Check(t, !strings.Contains(stderr, `"serving"`), stderr)
		})
	}
}

// A server whose port is taken fails before it touches the storage: the
// directory it would have made is not left behind.
func TestServeBusyPortLeavesNoStorage(t *testing.T) {
	testenv.Require(t, "nix")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	defer busy.Close()
	store := filepath.Join(t.TempDir(), "store5")
	code, stderr := serveExit(t, nil, "--listen", busy.Addr().String(), "--nixpkgs", standIn(), "--storage", store)
	assert.Check(t, is.Equal(code, 1), stderr)
	assert.Check(t, is.Contains(stderr, "address already in use"))
	_, err = os.Lstat(store)
	assert.Check(t, errors.Is(err, os.ErrNotExist), "the storage %s was left: %v", store, err)
}

// A nixpkgs of a forge that cannot be reached does not stop the server:
// a forge down while it restarts must not stop it serving what it keeps.
// The lock is tried in the background, and its failure is logged.
func TestServeStartsWhileForgeIsDown(t *testing.T) {
	testenv.Require(t, "nix")
	down := testenv.FreePort(t) // 127.0.0.1:PORT, where nothing listens
	s := startServe(t, t.TempDir(), "--nixpkgs", "git+http://"+down+"/nixpkgs")
	for i := 0; !strings.Contains(strings.Join(s.lines(), "\n"), "nixpkgs could not be locked"); i++ {
		assert.Assert(t, i < 200, "no lock failure logged: %v", s.lines())
		time.Sleep(50 * time.Millisecond)
	}
	assert.Check(t, is.Contains(strings.Join(s.lines(), "\n"), `"serving"`))
}
