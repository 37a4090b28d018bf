package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/pkg/build"
	"github.com/nixery-action/nixery-action/pkg/nix"
	"github.com/nixery-action/nixery-action/pkg/registry"
	"github.com/nixery-action/nixery-action/pkg/serve"
)

// serve's mistakes are told before it listens: a bad command line exits
// 2, a file or storage it cannot use names the flag and what to do.
func TestServeStartErrors(t *testing.T) {
	dir := t.TempDir()
	storage := filepath.Join(dir, "storage")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--listen", "bogus"}, 2, "nixery serve: --listen bogus is not HOST:PORT, such as 127.0.0.1:8080 (or :8080 for every address)\n"},
		{[]string{"--nixpkgs", ""}, 2, "nixery serve: no nixpkgs for the tag latest: pass --nixpkgs FLAKEREF"},
		{[]string{"--htpasswd", filepath.Join(dir, "none")}, 1, "nixery serve: --htpasswd: open " + filepath.Join(dir, "none") + ": no such file or directory\n"},
		{[]string{"--token-file", filepath.Join(dir, "none")}, 1, "nixery serve: --token-file: open "},
		{[]string{"--storage", "docker://127.0.0.1:1/x", "--max-storage", "20G"}, 2, "nixery serve: --max-images and --max-storage bound a directory storage"},
		{[]string{"--max-connections", "-1"}, 2, "nixery serve: --max-connections -1 is negative: give the most connections to hold open at once, or 0 for no bound\n"},
	} {
		args := append([]string{"serve", "--storage", storage, "--nixpkgs", "path:/nonexistent"}, tc.args...)
		code, out, errOut := runCLI(t, args...)
		assert.Check(t, is.Equal(code, tc.code), tc.args)
		assert.Check(t, is.Contains(errOut, tc.want), tc.args)
		assert.Check(t, is.Equal(out, ""), tc.args)
	}
}

// Hints name the flags of the command that failed: serve has --storage
// and logs in with the docker config only.
func TestHintsNameTheCommandsFlags(t *testing.T) {
	flags := func(register func(*flag.FlagSet)) func(string) bool {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		register(fs)
		return func(name string) bool { return fs.Lookup(name) != nil }
	}
	serveHas := flags(func(fs *flag.FlagSet) { serveCommand().setup(fs) })
	buildHas := flags(new(buildFlags).register)
	unreachable := &registry.RegistryError{Registry: "127.0.0.1:5999", Kind: registry.Unreachable}
	noLogin := &registry.RegistryError{Registry: "ghcr.io", Kind: registry.Unauthorized, NoCredentials: true}
	assert.Check(t, is.ErrorContains(withHints(unreachable, serveHas, false), "; check --storage"))
	assert.Check(t, is.ErrorContains(withHints(unreachable, buildHas, false), "; check --image"))
	assert.Check(t, is.ErrorContains(withHints(noLogin, serveHas, false), "; run docker login ghcr.io (the docker config is read)"))
	assert.Check(t, is.ErrorContains(withHints(noLogin, buildHas, false), "; pass --username with --password-stdin"))
	assert.Check(t, is.ErrorContains(withHints(noLogin, actionInput, true), "; set the username and password inputs for ghcr.io"))
}

// A request that announces a body and never sends it is answered or
// closed within the read bound, not held open for good.
func TestServeBoundsRequestRead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	hs := httpServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}), 300*time.Millisecond)
	go hs.Serve(ln)
	defer hs.Close()

	conn, err := net.Dial("tcp", ln.Addr().String())
	assert.NilError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "POST /v2/hello/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
	assert.NilError(t, err)
	start := time.Now()
	conn.SetReadDeadline(start.Add(5 * time.Second))
	_, err = io.Copy(io.Discard, conn)
	assert.NilError(t, err, "the connection was still open after %s", time.Since(start))
	assert.Check(t, time.Since(start) < 3*time.Second, "closed after %s", time.Since(start))
}

// stuckNix is Nix building for as long as it is let: every call ends
// only with its context.
type stuckNix struct{}

func (stuckNix) Lock(ctx context.Context) (nix.Locked, error) {
	<-ctx.Done()
	return nix.Locked{}, ctx.Err()
}

func (n stuckNix) LockFlake(ctx context.Context, _ string) (nix.Locked, error) { return n.Lock(ctx) }

func (stuckNix) BuildLogged(ctx context.Context, _ string, _ []string, _ io.Writer) (*nix.Result, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// Stopping serve while a pull waits for a build does not wait for the
// build: the pull gets 503 with a Retry-After at once, and the drain
// ends in well under docker stop's 10 seconds, though transfers may
// take a minute.
func TestServeDrainCancelsBuilds(t *testing.T) {
	lock := func(_ context.Context, ref string) (nix.Locked, error) { return nix.Locked{URL: ref}, nil }
	srv, err := serve.New(serve.Options{Nixpkgs: "path:/nonexistent", Lock: lock, Storage: t.TempDir(), Build: build.Options{Realiser: stuckNix{}}})
	assert.NilError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	hs := httpServer(srv, serveReadTimeout)
	go hs.Serve(ln)
	defer hs.Close()
	base := "http://" + ln.Addr().String()

	pulled := make(chan *http.Response, 1)
	go func() {
		res, err := http.Get(base + "/v2/hello/manifests/latest")
		assert.Check(t, err)
		pulled <- res
	}()
	for i := 0; ; i++ {
		res, err := http.Get(base + "/metrics")
		assert.NilError(t, err)
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Contains(string(body), "nixery_serve_builds_running 1") {
			break
		}
		assert.Assert(t, i < 250, "no build started")
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	assert.NilError(t, drain(hs, srv, slog.New(slog.DiscardHandler)))
	took := time.Since(start)
	res := <-pulled
	assert.Assert(t, res != nil)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Check(t, is.Equal(res.StatusCode, http.StatusServiceUnavailable), string(body))
	assert.Check(t, res.Header.Get("Retry-After") != "")
	assert.Check(t, took < 2*time.Second, "drained in %s", took)
}
