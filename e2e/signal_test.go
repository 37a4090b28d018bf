//go:build integration

package e2e

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// TestInterrupted sends SIGINT and SIGTERM to running builds, as Ctrl-C
// and a CI runner's cancel do: nixery stops, says so on one line, exits
// 130 or 143 as shells report a process killed by the signal, and leaves
// no tag behind.
func TestInterrupted(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo")
	registry := testenv.StartRegistry(t)
	// Slow enough that the build is still pushing when the signal comes.
	front := slowProxy(t, registry, 500*time.Millisecond)
	for _, tc := range []struct {
		sig  syscall.Signal
		name string
		code int
	}{
		{syscall.SIGINT, "SIGINT", 130},
		{syscall.SIGTERM, "SIGTERM", 143},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := "signal/" + strings.ToLower(tc.name)
			cmd := exec.Command(nixery, "build", "--nixpkgs", standIn(), "--image", front+"/"+repo, "--tags", "v1", "hello")
			cmd.Env = append(os.Environ(), "NIX_CONFIG="+testenv.NixConfig, "TMPDIR="+t.TempDir())
			pipe, err := cmd.StderrPipe()
			assert.NilError(t, err)
			assert.NilError(t, cmd.Start())

			// Wait until Nix is at work, then interrupt.
			var stderr bytes.Buffer
			lines := bufio.NewScanner(pipe)
			started := false
			for !started && lines.Scan() {
				stderr.WriteString(lines.Text() + "\n")
				started = strings.Contains(lines.Text(), "[linux/amd64] building ")
			}
			assert.Assert(t, started, "the build never started:\n%s", stderr.String())
			assert.NilError(t, cmd.Process.Signal(tc.sig))
			sent := time.Now()
			for lines.Scan() {
				stderr.WriteString(lines.Text() + "\n")
			}
			err = cmd.Wait()
			took := time.Since(sent)

			var ee *exec.ExitError
			assert.Assert(t, errAs(err, &ee), "exit: %v\n%s", err, stderr.String())
			assert.Equal(t, ee.ExitCode(), tc.code, stderr.String())
			assert.Check(t, is.Contains(stderr.String(), "nixery build: interrupted by "+tc.name+"\n"))
			assert.Check(t, took < 10*time.Second, "stopping took %s", took)
			assertNoTags(t, registry+"/"+repo)
		})
	}
}

func errAs(err error, target **exec.ExitError) bool {
	ee, ok := err.(*exec.ExitError)
	*target = ee
	return ok
}

// TestClosedOutputPipe: a build whose output goes to a pipe closed early,
// as `nixery build ... 2>&1 | head -3` does, stops as a signal stops it:
// exit status 141 (SIGPIPE's, as shells report it), no temporary layer
// files, no half OCI layout.
func TestClosedOutputPipe(t *testing.T) {
	testenv.Require(t, "nix")
	tmp := t.TempDir()
	layout := filepath.Join(t.TempDir(), "oci")
	r, w, err := os.Pipe()
	assert.NilError(t, err)
	cmd := exec.Command(nixery, "build", "--nixpkgs", standIn(), "--no-cache", "--output", "oci:"+layout, "gotree", "hello")
	cmd.Env = append(os.Environ(), "NIX_CONFIG="+testenv.NixConfig, "TMPDIR="+tmp)
	cmd.Stdout, cmd.Stderr = w, w
	assert.NilError(t, cmd.Start())
	w.Close()

	// Read the first line, as head -1 would, and go.
	line, err := bufio.NewReader(r).ReadString('\n')
	assert.NilError(t, err)
	assert.Assert(t, is.Contains(line, "building"), line)
	r.Close()

	err = cmd.Wait()
	var ee *exec.ExitError
	assert.Assert(t, errAs(err, &ee), "exit: %v", err)
	assert.Equal(t, ee.ExitCode(), 141, "%v", err)
	left, err := os.ReadDir(tmp)
	assert.NilError(t, err)
	assert.Equal(t, len(left), 0, "left in TMPDIR: %v", left)
	_, err = os.Stat(layout)
	assert.Assert(t, os.IsNotExist(err), "a half layout: %v", err)
}
