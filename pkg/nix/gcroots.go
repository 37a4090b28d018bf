package nix

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/nixery-action/nixery-action/pkg/storepath"
)

// A build's derivations and outputs are garbage until the image is
// packed: nix build --no-link leaves no root, and the garbage collector
// (nix-collect-garbage, a NixOS machine's nightly nix.gc, or Nix's own
// min-free) could delete a path while it is read into a layer. Roots
// holds them as temporary roots of a `nix-store --serve --write` child:
// its QueryValidPaths, with lock set, roots each path for as long as the
// process lives (Nix's serve protocol, as nix-copy-closure and ssh://
// stores speak it; unchanged from Nix 2.3 to 2.3x and Lix). Nothing is
// written outside Nix's own temporary-roots file, and the roots go with
// the process, however nixery ends: no gcroots/auto link is left behind,
// as an --out-link would leave one.

// The serve protocol's words (Nix's serve-protocol.hh).
const (
	serveMagic1        = 0x390c9deb
	serveMagic2        = 0x5452eecb
	serveClientVersion = 2<<8 | 5
	cmdQueryValidPaths = 1
)

// rootsTimeout bounds starting the child and each exchange with it,
// which take milliseconds.
const rootsTimeout = 10 * time.Second

// Roots are paths held as temporary GC roots until Release.
type Roots struct {
	mu     sync.Mutex
	cmd    *exec.Cmd
	in     io.WriteCloser
	w      *bufio.Writer // to in
	out    *bufio.Reader
	broken bool
	done   bool // released
}

// nixStore is the nix-store beside the Nix program run, or beside the
// program it links to (/usr/local/bin/nix to a store path's bin/nix);
// "" when there is none.
func (b *Builder) nixStore() string {
	nix, ok := b.nixPath()
	if !ok {
		return ""
	}
	real, _ := filepath.EvalSymlinks(nix)
	for _, p := range []string{nix, real} {
		store := filepath.Join(filepath.Dir(p), "nix-store")
		if _, err := os.Stat(store); p != "" && err == nil {
			return store
		}
	}
	return ""
}

// sharedRoots is the build's GC-roots child, started on the first call
// and shared by the build's platforms (nil where there is none, or it
// failed to start: the build goes on unrooted, as it did before). Each
// call is matched by one dropRoots; the last ends the child, letting go
// of every path it held. A Builder is one build's: a server makes one per
// build, so nothing is held longer than the build's images need.
func (b *Builder) sharedRoots(ctx context.Context) *Roots {
	b.rootsMu.Lock()
	defer b.rootsMu.Unlock()
	b.rootsUses++
	if b.roots == nil {
		b.roots = b.hold(ctx, nil)
	}
	return b.roots
}

// dropRoots ends one use of sharedRoots.
func (b *Builder) dropRoots() {
	b.rootsMu.Lock()
	defer b.rootsMu.Unlock()
	if b.rootsUses--; b.rootsUses == 0 && b.roots != nil {
		b.roots.Release()
		b.roots = nil
	}
}

// hold roots paths, or gives nil where there is no nix-store (a Nix
// program of another layout) or it fails: the build goes on unrooted, as
// it did before. ctx ending stops it.
func (b *Builder) hold(ctx context.Context, paths []string) *Roots {
	store := b.nixStore()
	if store == "" || ctx.Err() != nil {
		return nil
	}
	cmd := exec.Command(store, "--serve", "--write")
	cmd.Env = nixEnv(b.environ())
	cmd.SysProcAttr = sysProcAttr()
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil
	}
	if err := cmd.Start(); err != nil {
		return nil
	}
	r := &Roots{cmd: cmd, in: in, w: bufio.NewWriter(in), out: bufio.NewReader(out)}
	if err := r.exchange(ctx, r.greet); err != nil {
		r.Release()
		return nil
	}
	if _, err := r.Hold(ctx, paths); err != nil {
		r.Release()
		return nil
	}
	return r
}

// Hold roots paths (store paths; others, such as the placeholder of a
// content-addressed output, are left out) until Release, and returns
// those of them that are in the store. An error says the child failed:
// what it held before is still held if it still runs.
func (r *Roots) Hold(ctx context.Context, paths []string) (valid map[string]bool, err error) {
	if r == nil {
		return nil, nil
	}
	var held []string
	for _, p := range paths {
		if storepath.Valid(p) {
			held = append(held, p)
		}
	}
	if len(held) == 0 {
		return map[string]bool{}, nil
	}
	valid = map[string]bool{}
	return valid, r.exchange(ctx, func() error {
		for _, n := range []uint64{cmdQueryValidPaths, 1, 0, uint64(len(held))} { // lock, no substitutes
			writeNum(r.w, n)
		}
		for _, p := range held {
			writeString(r.w, p)
		}
		if err := r.w.Flush(); err != nil {
			return fmt.Errorf("nix-store --serve: %w", err)
		}
		// The answer comes once every path is rooted: the valid ones.
		n, err := readNum(r.out)
		if err != nil {
			return err
		}
		if n > uint64(len(held)) {
			return fmt.Errorf("nix-store --serve answered %d paths for %d", n, len(held))
		}
		for range n {
			p, err := readString(r.out, 4096)
			if err != nil {
				return err
			}
			valid[p] = true
		}
		return nil
	})
}

// Release lets the paths go: the child ends.
func (r *Roots) Release() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	r.done = true
	r.in.Close() // end of input: nix-store --serve exits
	done := make(chan struct{})
	go func() {
		_ = r.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(rootsTimeout):
		_ = killGroup(r.cmd.Process.Pid, true)
		<-done
	}
}

// exchange runs f, one request and its answer, bounded by rootsTimeout
// and ctx; past them, or on a failure, the child is stopped.
func (r *Roots) exchange(ctx context.Context, f func() error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.broken {
		return errors.New("nix-store --serve failed before")
	}
	ctx, cancel := context.WithTimeout(ctx, rootsTimeout)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- f() }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		err = fmt.Errorf("nix-store --serve did not answer: %w", ctx.Err())
	}
	if err != nil {
		r.broken = true
		_ = killGroup(r.cmd.Process.Pid, true) // a wrapper's nix-store too
	}
	return err
}

// greet exchanges the protocol's greeting.
func (r *Roots) greet() error {
	writeNum(r.w, serveMagic1)
	writeNum(r.w, serveClientVersion)
	if err := r.w.Flush(); err != nil {
		return fmt.Errorf("nix-store --serve: %w", err)
	}
	magic, err := readNum(r.out)
	if err != nil {
		return err
	}
	if magic != serveMagic2 {
		return fmt.Errorf("nix-store --serve greeted with %#x", magic)
	}
	_, err = readNum(r.out) // its version: every one knows QueryValidPaths
	return err
}

// writeNum writes n as the protocol does: 64 bits, little-endian. A
// failed write shows when the writer is flushed.
func writeNum(w io.Writer, n uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], n)
	_, _ = w.Write(b[:])
}

// writeString writes s: its length, its bytes, zeros up to 8 bytes.
func writeString(w io.Writer, s string) {
	writeNum(w, uint64(len(s)))
	_, _ = io.WriteString(w, s)
	_, _ = w.Write(make([]byte, (8-len(s)%8)%8))
}

func readNum(r io.Reader) (uint64, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, fmt.Errorf("nix-store --serve: %w", err)
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// readString reads a string of at most max bytes.
func readString(r io.Reader, max uint64) (string, error) {
	n, err := readNum(r)
	if err != nil {
		return "", err
	}
	if n > max {
		return "", fmt.Errorf("nix-store --serve sent a string of %d bytes", n)
	}
	b := make([]byte, n+(8-n%8)%8)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("nix-store --serve: %w", err)
	}
	return string(b[:n]), nil
}
