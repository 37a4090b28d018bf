//go:build integration

package main

import (
	"context"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// With --max-connections 2, two connections held open (one silent, one
// partway through its request) leave a third client unanswered until
// one of them closes: it waits to be accepted, as the bound says.
func TestServeMaxConnections(t *testing.T) {
	testenv.Require(t, "nix")
	t.Setenv("NIX_CONFIG", testenv.NixConfig)
	nixpkgs := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(nixpkgs, "flake.nix"), []byte("{ outputs = _: { }; }\n"), 0o644))
	addr := testenv.FreePort(t)
	f := newServeFlags()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	f.register(fs)
	assert.NilError(t, fs.Parse([]string{"--listen", addr, "--storage", t.TempDir(), "--nixpkgs", "path:" + nixpkgs, "--max-connections", "2"}))
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.run(ctx) }()
	defer func() {
		cancel()
		assert.Check(t, <-served)
	}()

	// No keep-alive: a client's connection closes with its answer.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://" + addr + "/v2/"
	get := func() (int, error) {
		res, err := client.Get(url)
		if err != nil {
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}
	for i := 0; ; i++ {
		if _, err := get(); err == nil {
			break
		}
		assert.Assert(t, i < 200, "serve did not start")
		time.Sleep(50 * time.Millisecond)
	}

	silent, err := net.Dial("tcp", addr)
	assert.NilError(t, err)
	defer silent.Close()
	partial, err := net.Dial("tcp", addr)
	assert.NilError(t, err)
	defer partial.Close()
	_, err = io.WriteString(partial, "GET /v2/ HTTP/1.1\r\nHost: x\r\n")
	assert.NilError(t, err)

	type answer struct {
		code int
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		code, err := get()
		answered <- answer{code, err}
	}()
	select {
	case a := <-answered:
		t.Fatalf("a third connection was answered (%d, %v) while two were held open", a.code, a.err)
	case <-time.After(300 * time.Millisecond):
	}
	silent.Close()
	select {
	case a := <-answered:
		assert.NilError(t, a.err)
		assert.Check(t, is.Equal(a.code, http.StatusOK))
	case <-time.After(5 * time.Second):
		t.Fatal("the third connection was not answered after one of the two closed")
	}
	partial.Close()
}
