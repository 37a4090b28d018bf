package nix

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// stoppedNix works until it is signalled, then says what Nix says when
// interrupted, as Nix does on SIGINT or SIGTERM. It says "evaluating"
// once its work has started, so that a signal then stops that too.
const stoppedNix = `#!/bin/sh
[ "$1" = --version ] && { echo "nix (Nix) 2.18.1"; exit 0; }
# SIGKILL: a signal that came between fork and exec would not stop sleep.
trap 'kill -9 $work 2>/dev/null; echo "error: interrupted by the user" >&2; exit 1' INT TERM
sleep 30 &
work=$!
echo "evaluating" >&2
wait $work
`

// firstLine is a log that tells when its first line came.
type firstLine struct {
	mu    sync.Mutex
	buf   strings.Builder
	once  sync.Once
	wrote chan struct{}
}

func (f *firstLine) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.once.Do(func() { close(f.wrote) })
	return f.buf.Write(p)
}

func (f *firstLine) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.buf.String()
}

// When this process stops Nix (a failed destination check cancels the
// build), Nix's "interrupted by the user" is not shown: it would read as
// Nix's own failure. What Nix said before is.
func TestCancelledNixQuiet(t *testing.T) {
	nix := filepath.Join(t.TempDir(), "nix")
	assert.NilError(t, os.WriteFile(nix, []byte(stoppedNix), 0o755))
	log := &firstLine{wrote: make(chan struct{})}
	b := &Builder{Nix: nix}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-log.wrote
		cancel()
	}()
	_, err := b.run(ctx, log, "nix eval", "[nix] ", "eval")
	assert.Check(t, errors.Is(err, context.Canceled), err)
	assert.Check(t, is.Equal(log.String(), "[nix] evaluating\n"))
}

// When Nix fails on its own, all it said is shown, the same words too.
func TestFailedNixShown(t *testing.T) {
	nix := filepath.Join(t.TempDir(), "nix")
	script := "#!/bin/sh\n[ \"$1\" = --version ] && exit 1\necho evaluating >&2\necho 'error: interrupted by the user' >&2\nexit 1\n"
	assert.NilError(t, os.WriteFile(nix, []byte(script), 0o755))
	var log strings.Builder
	b := &Builder{Nix: nix}
	_, err := b.run(context.Background(), &log, "nix eval", "[nix] ", "eval")
	assert.Check(t, is.ErrorContains(err, "nix eval failed: interrupted by the user"))
	assert.Check(t, is.Equal(log.String(), "[nix] evaluating\n[nix] error: interrupted by the user\n"))
}
