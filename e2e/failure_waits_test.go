//go:build integration

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// holdsOpen tells whether process pid has path open.
func holdsOpen(pid int, path string) bool {
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	for _, fd := range fds {
		if target, err := os.Readlink(fd); err == nil && target == path {
			return true
		}
	}
	return false
}

// --popularity <(...) whose writer has not written yet, or a FIFO with
// no writer at all: a signal stops the wait, with the signal's status.
func TestPopularityFIFOInterrupted(t *testing.T) {
	testenv.Require(t, "nix")
	for _, s := range stopSignals {
		t.Run(s.name, func(t *testing.T) {
			dir := t.TempDir()
			fifo := filepath.Join(dir, "popularity")
			assert.NilError(t, syscall.Mkfifo(fifo, 0o600))
			args := []string{"build", "--nixpkgs", standIn(), "--popularity", fifo, "--output", "oci:" + filepath.Join(dir, "layout"), "hello"}
			start := time.Now()
			r := interruptWhen(t, t.TempDir(), args, s.sig, func(int) bool { return time.Since(start) > 500*time.Millisecond })
			assert.Equal(t, r.code, s.code, r.stderr)
			assert.Check(t, is.Contains(r.stderr, "nixery build: interrupted by "+s.name+"\n"))
			assert.Check(t, r.latency < 2*time.Second, "stopping took %s", r.latency)
		})
	}
}

// A layout another process writes is waited for, and said so once; a
// signal stops the wait at once, leaving the layout as it was.
func TestLayoutLockWaitInterrupted(t *testing.T) {
	testenv.Require(t, "nix")
	for _, s := range stopSignals {
		t.Run(s.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "layout")
			assert.NilError(t, os.Mkdir(dir, 0o755))
			holder, err := os.Open(dir)
			assert.NilError(t, err)
			defer holder.Close()
			assert.NilError(t, syscall.Flock(int(holder.Fd()), syscall.LOCK_EX))

			args := []string{"build", "--nixpkgs", standIn(), "--output", "oci:" + dir, "hello"}
			// Held open for 100 ms: the wait, not a check's brief look.
			var since time.Time
			r := interruptWhen(t, t.TempDir(), args, s.sig, func(pid int) bool {
				if !holdsOpen(pid, dir) {
					since = time.Time{}
					return false
				}
				if since.IsZero() {
					since = time.Now()
				}
				return time.Since(since) > 100*time.Millisecond
			})
			assert.Equal(t, r.code, s.code, r.stderr)
			assert.Check(t, is.Contains(r.stderr, "nixery build: interrupted by "+s.name+"\n"))
			assert.Check(t, r.latency < 2*time.Second, "stopping took %s", r.latency)
			assert.Check(t, strings.Count(r.stderr, "waiting for another nixery writing "+dir+"\n") == 1, r.stderr)
			entries, err := os.ReadDir(dir)
			assert.NilError(t, err)
			assert.Check(t, is.Len(entries, 0))
		})
	}
}
