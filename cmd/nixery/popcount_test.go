package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// popcountRoot is the store path popcount starts from in these tests.
var popcountRoot = "/nix/store/" + testenv.NixHash(1) + "-root"

// narinfoServer is a binary cache in which popcountRoot references
// glibc, and glibc nothing; it counts the requests it answers.
func narinfoServer(t *testing.T) (string, func() int) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		refs := ""
		if strings.HasPrefix(r.URL.Path, "/"+testenv.NixHash(1)) {
			refs = testenv.NixHash(2) + "-glibc-2.40"
		}
		io.WriteString(w, "StorePath: /nix/store/x\nReferences: "+refs+"\n")
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() int { return int(n.Load()) }
}
