package nix

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"sync"
	"time"

	"github.com/nixery-action/nixery-action/pkg/flakeref"

	"github.com/nixery-action/nixery-action/internal/limit"
)

// killGrace is how long Nix gets to stop its builders after SIGTERM before
// its whole process group is killed.
const killGrace = 5 * time.Second

// stderrKept bounds the part of Nix's stderr kept for error messages.
const stderrKept = 64 << 10

// MaxOutputBytes bounds what one Nix command may print on stdout. The
// largest is path-info of a closure, which layers.ParseGraph bounds at
// the same size; past it Nix's output is not read further and the
// command fails.
const MaxOutputBytes = 256 << 20

// outputBuffer keeps a command's stdout up to max bytes; a write past it
// fails, which closes the pipe Nix writes to. (The buffer is a field, not
// embedded: an embedded bytes.Buffer's ReadFrom would bypass Write.)
type outputBuffer struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (o *outputBuffer) Write(p []byte) (int, error) {
	if o.buf.Len()+len(p) > o.max {
		o.over = true
		return 0, &limit.Error{Bound: int64(o.max)}
	}
	return o.buf.Write(p)
}

// secrets are the credentials in the flake references Nix is given
// (nixpkgs', the installables'), which Nix quotes in its messages.
func (b *Builder) secrets() []string {
	out := flakeref.Secrets(b.Flake)
	for _, inst := range b.Installables {
		out = append(out, flakeref.Secrets(inst.Flake)...)
	}
	// Longest first, as Scrub wants them.
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// commonArgs come before every command's own: the features this package
// needs, whatever nix.conf enables.
var commonArgs = []string{"--extra-experimental-features", "nix-command flakes"}

// environ is the environment Nix runs in (before nixEnv filters it).
func (b *Builder) environ() []string {
	if b.Env == nil {
		return os.Environ()
	}
	return b.Env
}

// run runs one Nix command and returns its stdout. Its stderr streams to
// log (nil: kept only for the error message), each line prefixed, and its
// tail goes into the error. When ctx ends, Nix gets SIGTERM (so that it
// stops its builders, which run in sessions of their own) and, after
// killGrace, its process group gets SIGKILL.
func (b *Builder) run(ctx context.Context, logTo io.Writer, what, prefix string, args ...string) ([]byte, error) {
	env := b.environ()
	cmd := exec.CommandContext(ctx, b.nix(), append(append([]string{}, commonArgs...), args...)...)
	cmd.Env = nixEnv(env)
	cmd.SysProcAttr = sysProcAttr()
	var (
		mu   sync.Mutex
		kill *time.Timer
	)
	cmd.Cancel = func() error {
		pid := cmd.Process.Pid
		_ = killGroup(pid, false)
		mu.Lock()
		kill = time.AfterFunc(killGrace, func() { _ = killGroup(pid, true) })
		mu.Unlock()
		return nil
	}
	cmd.WaitDelay = killGrace + 5*time.Second

	stdout := &outputBuffer{max: int(b.maxOutput)}
	if stdout.max <= 0 {
		stdout.max = MaxOutputBytes
	}
	tail := &tailBuffer{max: stderrKept}
	secrets := b.secrets()
	log := &lineWriter{mu: &b.logMu, w: logTo, prefix: prefix, secrets: secrets}
	cmd.Stdout = stdout
	cmd.Stderr = io.MultiWriter(untilCancelled{ctx, log}, tail)

	if err := cmd.Start(); err != nil {
		if ctx.Err() != nil {
			// Start refuses an ended context: the callers tell a
			// timeout from an interruption.
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("cannot run Nix (%w): install Nix and put nix on PATH", err)
	}
	err := cmd.Wait()
	mu.Lock()
	if kill != nil {
		kill.Stop()
	}
	mu.Unlock()
	if ctx.Err() != nil {
		// A line begun before is not ended: it is not shown either.
		return nil, ctx.Err()
	}
	log.Flush()
	if stdout.over {
		return nil, fmt.Errorf("%s: Nix printed more than %s, the bound on one Nix command's output (MaxOutputBytes): is this one image's closure?", what, limit.Size(int64(stdout.max)))
	}
	if err != nil {
		// A Nix too old for the flags every command is given fails
		// all of them: said as such (its version was asked beside the
		// first command).
		if err := b.checkVersion(env); err != nil {
			return nil, err
		}
		// Scrubbed without colours, which would split a URL.
		return nil, NewCommandError(what, flakeref.Scrub(string(stripANSI(tail.buf)), secrets), err)
	}
	return stdout.buf.Bytes(), nil
}

// untilCancelled passes Nix's stderr on to the log until ctx ends. What
// Nix says once this process has stopped it ("error: interrupted by the
// user") would read as a failure of Nix's own, where the cause is ours
// and is reported as such.
type untilCancelled struct {
	ctx context.Context
	w   io.Writer
}

func (u untilCancelled) Write(p []byte) (int, error) {
	if u.ctx.Err() != nil {
		return len(p), nil
	}
	return u.w.Write(p)
}
