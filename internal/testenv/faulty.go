package testenv

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// SilentListener listens on loopback, takes every connection and never
// reads or answers, as a registry behind a dead proxy does; it returns
// its host:port. The connections close when the test ends.
func SilentListener(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(t, err)
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // read nothing, answer nothing
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// StartFullRegistry is a real registry behind a proxy that answers 500
// to every write of a blob upload (the POST that opens it, its PATCHes
// and its closing PUT), as a registry whose disk is full does. It
// returns the proxy's host, the registry's own, and a count of the
// uploads opened.
func StartFullRegistry(t testing.TB) (host, upstream string, opened *atomic.Int32) {
	t.Helper()
	upstream = StartRegistry(t)
	opened = new(atomic.Int32)
	host = Front(t, upstream, func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, "/blobs/uploads/") || r.Method == http.MethodGet {
			return false
		}
		if r.Method == http.MethodPost {
			opened.Add(1)
		}
		RegistryError(w, http.StatusInternalServerError, "UNKNOWN", "unknown error")
		return true
	})
	return host, upstream, opened
}
