package serve

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/pkg/nix"
)

// A tag names a branch, tag or commit of a git-based nixpkgs, whatever
// revision the reference of latest names; other references serve latest
// only.
func TestNixpkgsFor(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct{ nixpkgs, tag, want string }{
		{"github:NixOS/nixpkgs/nixos-26.05", "latest", "github:NixOS/nixpkgs/nixos-26.05"},
		{"github:NixOS/nixpkgs/nixos-26.05", "nixos-unstable", "github:NixOS/nixpkgs/nixos-unstable"},
		{"github:NixOS/nixpkgs", rev, "github:NixOS/nixpkgs/" + rev},
		// nixery's default: the pinned tree's hash is not the tag's.
		{"github:NixOS/nixpkgs/" + rev + "?narHash=sha256-x%3D", "nixos-unstable", "github:NixOS/nixpkgs/nixos-unstable"},
		{"github:NixOS/nixpkgs/" + rev + "?narHash=sha256-x%3D", "latest", "github:NixOS/nixpkgs/" + rev + "?narHash=sha256-x%3D"},
		{"git+https://git.example.org/nixpkgs?narHash=sha256-x&rev=" + rev, "main", "git+https://git.example.org/nixpkgs?ref=main"},
		{"github:team/pkgs/main?dir=nix&ref=x", "v2", "github:team/pkgs/v2?dir=nix"},
		{"gitlab:team/nixpkgs", "release", "gitlab:team/nixpkgs/release"},
		{"sourcehut:~team/nixpkgs/main", "next", "sourcehut:~team/nixpkgs/next"},
		{"git+https://git.example.org/nixpkgs?ref=main&shallow=1", "release-1", "git+https://git.example.org/nixpkgs?ref=release-1&shallow=1"},
		{"git+https://git.example.org/nixpkgs?ref=main", rev, "git+https://git.example.org/nixpkgs?rev=" + rev},
		{"git+file:///srv/nixpkgs?rev=" + rev, "other", "git+file:///srv/nixpkgs?ref=other"},
		{"nixpkgs", "nixos-unstable", "flake:nixpkgs/nixos-unstable"},
		{"nixpkgs/nixos-26.05", rev, "flake:nixpkgs/" + rev},
		{"flake:team-pkgs/main?dir=nix", "v2", "flake:team-pkgs/v2?dir=nix"},
		// Nix reads a + in a query as itself: a space stays %20, a + %2B.
		{"github:team/pkgs/main?dir=my%20nix", "v2", "github:team/pkgs/v2?dir=my%20nix"},
		{"git+https://git.example.org/nixpkgs?dir=a%2Bb&ref=main", "v2", "git+https://git.example.org/nixpkgs?dir=a%2Bb&ref=v2"},
		{"git+https://git.example.org/nixpkgs?dir=a+b&ref=main", "v2", "git+https://git.example.org/nixpkgs?dir=a%2Bb&ref=v2"},
	} {
		s := &Server{o: Options{Nixpkgs: tc.nixpkgs}}
		got, err := s.nixpkgsFor(tc.tag)
		assert.NilError(t, err, tc.nixpkgs)
		assert.Check(t, is.Equal(got, tc.want), "%s at %s", tc.nixpkgs, tc.tag)
	}
	for _, ref := range []string{"path:/src/nixpkgs", "/src/nixpkgs", "./nixpkgs", "https://example.org/nixpkgs.tar.gz", "tarball+https://example.org/n.tar.gz"} {
		s := &Server{o: Options{Nixpkgs: ref}}
		_, err := s.nixpkgsFor("v1")
		assert.Check(t, is.ErrorContains(err, "serves only the tag latest"), ref)
		got, err := s.nixpkgsFor("latest")
		assert.Check(t, err)
		assert.Check(t, is.Equal(got, ref))
	}
}

// A branch's lock and its commit's name one revision: one key.
func TestRevisionKey(t *testing.T) {
	const rev = "59391d28677139e93ec6c7d2903a70d418f0d8d6"
	branch := revisionKey("git+file:///r?ref=other&rev=" + rev)
	assert.Equal(t, branch, revisionKey("git+file:///r?rev="+rev))
	assert.Check(t, branch != revisionKey("git+file:///r?rev=69391d28677139e93ec6c7d2903a70d418f0d8d6"))
	path := "path:/r?lastModified=1&narHash=sha256-x"
	assert.Equal(t, revisionKey(path), path)
	assert.Equal(t, revisionKey("github:o/r/"+rev+"?narHash=sha256-x"), "github:o/r/"+rev+"?narHash=sha256-x")
}

// locks is a Lock over a table of references, counting its calls.
type locks struct {
	mu    sync.Mutex
	to    map[string]string // reference → locked URL; missing: an error
	calls map[string]int
}

func (l *locks) lock(_ context.Context, ref string) (nix.Locked, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls[ref]++
	if u, ok := l.to[ref]; ok {
		return nix.Locked{URL: u}, nil
	}
	return nix.Locked{}, errors.New("error: cannot find ref\nand more lines")
}

func (l *locks) set(ref, url string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if url == "" {
		delete(l.to, ref)
	} else {
		l.to[ref] = url
	}
}

func (l *locks) called(ref string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls[ref]
}

// An image is kept under its nixpkgs's locked revision: the lock stands
// for Refresh, a moved branch is a new image, a lock that fails leaves
// the last one standing, and a reference that never locked is an error
// pulls see, not locked again for a while.
func TestServeLocksRevisions(t *testing.T) {
	const ref = "git+file:///srv/nixpkgs"
	l := &locks{to: map[string]string{ref: ref + "?ref=main&rev=aaaa"}, calls: map[string]int{}}
	storage := t.TempDir()
	s, err := New(Options{Lock: l.lock, Nixpkgs: ref, Storage: storage, Refresh: time.Hour})
	assert.NilError(t, err)
	stored(t, s, storage, "hello")
	s, err = New(Options{Lock: l.lock, Nixpkgs: ref, Storage: storage, Refresh: time.Hour})
	assert.NilError(t, err)
	l.calls = map[string]int{}

	for range 3 {
		res, body := get(t, s, http.MethodHead, "/v2/hello/manifests/latest")
		assert.Equal(t, res.StatusCode, http.StatusOK, body)
	}
	assert.Equal(t, l.called(ref), 1, "locked again within Refresh")

	// The branch moves: once the lock is older than Refresh, latest is
	// another image (here it cannot build: no nixpkgs).
	l.set(ref, ref+"?ref=main&rev=bbbb")
	s.o.Refresh = time.Nanosecond
	res, body := get(t, s, http.MethodGet, "/v2/hello/manifests/latest")
	assert.Equal(t, res.StatusCode, http.StatusNotFound, body)
	assert.Equal(t, l.called(ref), 2)
	_, metrics := get(t, s, http.MethodGet, "/metrics")
	assert.Check(t, is.Contains(metrics, `nixery_serve_builds_total{result="failed"} 1`), "the moved branch was not built")

	// Back to the stored revision, then the forge fails: the last lock
	// stands, and the image is served.
	l.set(ref, ref+"?ref=main&rev=aaaa")
	res, body = get(t, s, http.MethodGet, "/v2/hello/manifests/latest")
	assert.Equal(t, res.StatusCode, http.StatusOK, body)
	l.set(ref, "")
	res, body = get(t, s, http.MethodGet, "/v2/hello/manifests/latest")
	assert.Equal(t, res.StatusCode, http.StatusOK, body)
	assert.Equal(t, l.called(ref), 4)

	// A branch that does not exist: an error naming the tag, remembered.
	for range 2 {
		res, body = get(t, s, http.MethodGet, "/v2/hello/manifests/nosuch")
		assert.Equal(t, res.StatusCode, http.StatusNotFound, body)
		assert.Check(t, is.Contains(body, "MANIFEST_UNKNOWN"))
		assert.Check(t, is.Contains(body, "tag nosuch: nixpkgs "+ref+"?ref=nosuch cannot be locked: error: cannot find ref"), body)
		assert.Check(t, !strings.Contains(body, "more lines"), body)
	}
	assert.Equal(t, l.called(ref+"?ref=nosuch"), 1, "a failed lock was tried again at once")
	_, metrics = get(t, s, http.MethodGet, "/metrics")
	for _, want := range []string{`result="ok"} 1`, `result="moved"} 2`, `result="stale"} 1`, `result="failed"} 1`} {
		assert.Check(t, is.Contains(metrics, "nixery_serve_nixpkgs_locks_total{"+want), metrics)
	}
}

// Tags are the client's to choose, and each new one runs Nix: past
// Builds×5 locks at once, a pull of another is refused with
// TOOMANYREQUESTS. Failed locks are forgotten once they stand no more.
func TestServeLockBound(t *testing.T) {
	release := make(chan struct{})
	block := func(ctx context.Context, ref string) (nix.Locked, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nix.Locked{}, errors.New("no such ref")
	}
	s, err := New(Options{Lock: block, Nixpkgs: "git+file:///srv/nixpkgs", Storage: t.TempDir(), Builds: 1})
	assert.NilError(t, err)
	var wg sync.WaitGroup
	for _, tag := range []string{"a", "b", "c", "d", "e"} {
		wg.Go(func() { get(t, s, http.MethodGet, "/v2/hello/manifests/"+tag) })
	}
	reaches(t, &s.locking, 5, "locks running")
	res, body := get(t, s, http.MethodGet, "/v2/hello/manifests/f")
	assert.Equal(t, res.StatusCode, http.StatusTooManyRequests, body)
	assert.Check(t, is.Contains(body, "TOOMANYREQUESTS"))
	close(release)
	wg.Wait()
	assert.Equal(t, s.locking.Load(), int64(0))

	s.mu.Lock()
	assert.Equal(t, len(s.locks), 5)
	for ref, e := range s.locks {
		e.at = e.at.Add(-failedFor - time.Second)
		s.locks[ref] = e
	}
	s.mu.Unlock()
	s.o.Lock = fakeLock
	res, body = get(t, s, http.MethodHead, "/v2/hello/manifests/a")
	assert.Equal(t, res.StatusCode, http.StatusNotFound, body) // locked; no Nix to build
	s.mu.Lock()
	defer s.mu.Unlock()
	assert.Equal(t, len(s.locks), 1, "failed locks kept past failedFor")
}

// A forge that hangs does not hold the pulls of an image built: past
// relockWait the last lock stands, while the lock goes on; its result
// is what later pulls get.
func TestServeRelockHangs(t *testing.T) {
	const ref = "git+file:///srv/nixpkgs"
	release := make(chan string)
	hang := false
	var mu sync.Mutex
	lock := func(ctx context.Context, ref string) (nix.Locked, error) {
		mu.Lock()
		h := hang
		mu.Unlock()
		if !h {
			return nix.Locked{URL: ref + "?ref=main&rev=aaaa"}, nil
		}
		select {
		case rev := <-release:
			return nix.Locked{URL: ref + "?ref=main&rev=" + rev}, nil
		case <-ctx.Done():
			return nix.Locked{}, ctx.Err()
		}
	}
	storage := t.TempDir()
	s, err := New(Options{Lock: lock, Nixpkgs: ref, Storage: storage, Refresh: time.Nanosecond})
	assert.NilError(t, err)
	stored(t, s, storage, "hello")
	s, err = New(Options{Lock: lock, Nixpkgs: ref, Storage: storage, Refresh: time.Nanosecond, Timeout: 5 * time.Second})
	assert.NilError(t, err)
	s.relockWait = 50 * time.Millisecond
	res, body := get(t, s, http.MethodHead, "/v2/hello/manifests/latest")
	assert.Equal(t, res.StatusCode, http.StatusOK, body)

	mu.Lock()
	hang = true
	mu.Unlock()
	for range 3 {
		res, body := get(t, s, http.MethodHead, "/v2/hello/manifests/latest")
		assert.Equal(t, res.StatusCode, http.StatusOK, body)
		assert.Equal(t, s.locking.Load(), int64(1), "the pull waited for the lock to end")
	}
	release <- "bbbb"
	for i := 0; s.locking.Load() != 0; i++ {
		assert.Assert(t, i < 500, "the lock did not end")
		time.Sleep(2 * time.Millisecond)
	}
	mu.Lock()
	hang = false // the branch stays at aaaa from now: the next lock says it moved back
	mu.Unlock()
	s.mu.Lock()
	got := s.locks[ref].locked.URL
	s.mu.Unlock()
	assert.Equal(t, got, ref+"?ref=main&rev=bbbb", "the lock's result was dropped")
	_, metrics := get(t, s, http.MethodGet, "/metrics")
	assert.Check(t, is.Contains(metrics, `nixery_serve_nixpkgs_locks_total{result="moved"} 1`), metrics)

	// With every lock slot taken (by other tags), the last lock stands
	// too, rather than TOOMANYREQUESTS: bbbb, which is not stored (and
	// cannot build here).
	s.locking.Add(100)
	defer s.locking.Add(-100)
	res, body = get(t, s, http.MethodGet, "/v2/hello/manifests/latest")
	assert.Equal(t, res.StatusCode, http.StatusNotFound, body)
	assert.Check(t, !strings.Contains(body, "TOOMANYREQUESTS"), body)
}
