package serve

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/nixery-action/nixery-action/pkg/flakeref"
	"github.com/nixery-action/nixery-action/pkg/nix"
)

// A tag names a nixpkgs flake reference (nixpkgsFor), which is locked to
// one revision before anything else (lock): the image is kept under that
// revision, so a tag whose branch moves builds anew, and a branch and its
// commit give the same image. A lock stands for Options.Refresh.

// indirectRef is a flake reference through the flake registry (nixpkgs,
// nixpkgs/nixos-26.05, flake:nixpkgs): the id, optional parameters.
var indirectRef = regexp.MustCompile(`^(?:flake:)?([A-Za-z][A-Za-z0-9_-]*)(?:/[^?#]*)?(\?[^#]*)?$`)

// nixpkgsFor is the flake reference tag names: Nixpkgs for latest; for a
// git-based Nixpkgs (github:, gitlab:, sourcehut:, git+…, or a flake
// registry name such as nixpkgs, which the registry maps to one), the
// same repository at the branch, tag or commit tag.
func (s *Server) nixpkgsFor(tag string) (string, error) {
	if tag == "latest" {
		return s.o.Nixpkgs, nil
	}
	ref := s.o.Nixpkgs
	withTag := func(base, query string) (string, error) {
		q, ok := flakeref.WithRevision(strings.TrimPrefix(query, "?"), nil)
		if !ok {
			return "", fmt.Errorf("tag %s: the nixpkgs reference %s has parameters that are not a query", tag, ref)
		}
		if q != "" {
			q = "?" + q
		}
		return base + "/" + tag + q, nil
	}
	if f, ok := flakeref.ParseForge(ref); ok {
		return withTag(f.Type+":"+f.Repo, f.Query)
	}
	if m := indirectRef.FindStringSubmatch(ref); m != nil {
		return withTag("flake:"+m[1], m[2])
	}
	if strings.HasPrefix(ref, "git+") {
		base, query, _ := strings.Cut(ref, "?")
		pick := url.Values{"ref": {tag}}
		if flakeref.IsCommit(tag) {
			pick = url.Values{"rev": {tag}}
		}
		q, ok := flakeref.WithRevision(query, pick)
		if _, err := url.Parse(base); err != nil || !ok {
			return "", fmt.Errorf("tag %s: the nixpkgs reference %s is not a URL", tag, ref)
		}
		return base + "?" + q, nil
	}
	return "", fmt.Errorf("tag %s: this registry serves only the tag latest (its nixpkgs, %s, is not a git repository whose branches and commits tags could name)", tag, ref)
}

// lockEntry is what locking a reference gave, and when.
type lockEntry struct {
	locked nix.Locked
	err    error
	at     time.Time
}

// lock locks ref, or gives its lock of less than Refresh ago (a failure:
// of less than failedFor ago). One lock runs per reference at a time,
// for every request that wants it, and as many locks as builds may wait
// (tags are the client's to choose; each new one runs Nix). When a
// reference that locked before cannot be locked again (the forge is
// down), or not within relockWait (the forge hangs), its last lock
// stands.
func (s *Server) lock(ctx context.Context, ref string) (nix.Locked, error) {
	s.mu.Lock()
	e, ok := s.locks[ref]
	s.mu.Unlock()
	if ok && e.err == nil && time.Since(e.at) < s.o.Refresh {
		return e.locked, nil
	}
	if ok && e.err != nil && time.Since(e.at) < failedFor {
		return nix.Locked{}, e.err
	}
	ch := s.flight.DoChan("lock "+ref, func() (any, error) {
		defer s.locking.Add(-1)
		if s.locking.Add(1) > int64(s.o.Builds*(1+queuedPerBuild)) {
			return nil, errBusy
		}
		s.mu.Lock()
		s.relocking[ref] = time.Now()
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.relocking, ref)
			s.mu.Unlock()
		}()
		lctx, cancel := context.WithTimeout(s.life, s.o.Timeout)
		defer cancel()
		l, err := s.o.Lock(lctx, ref)
		return s.locked(ref, l, err)
	})
	// A reference locked before is not waited for long: a forge that
	// hangs (or a branch's new revision that takes a while to fetch)
	// must not hold the pulls of images already built. Past relockWait
	// from the lock's start, the last lock stands for this pull; the lock
	// goes on, for the pulls after it.
	var late <-chan time.Time
	if ok && e.err == nil {
		s.mu.Lock()
		began, running := s.relocking[ref]
		s.mu.Unlock()
		if !running {
			began = time.Now()
		}
		t := time.NewTimer(max(0, s.relockWait-time.Since(began)))
		defer t.Stop()
		late = t.C
	}
	select {
	case <-ctx.Done():
		return nix.Locked{}, ctx.Err()
	case <-s.life.Done():
		return nix.Locked{}, errStopping
	case <-late:
		return e.locked, nil
	case res := <-ch:
		if errors.Is(res.Err, errBusy) && ok && e.err == nil {
			return e.locked, nil // too many locks at once: the last one stands
		}
		if res.Err != nil {
			return nix.Locked{}, res.Err
		}
		return res.Val.(nix.Locked), nil
	}
}

// Check tells, before the server serves, whether it can build at all:
// Nix runs, and a nixpkgs on this machine can be locked (that lock then
// serves the first pulls, and its Nix run is the check that Nix runs).
// Its error is one line saying what is wrong and what to do. A nixpkgs of
// a forge is locked in the background, its outcome logged, as a pull
// would lock it: a forge down while the server restarts must not stop it
// serving the images it keeps; `nix --version` checks Nix meanwhile.
func (s *Server) Check(ctx context.Context) error {
	if !flakeref.IsLocal(s.o.Nixpkgs) {
		if s.o.Build.Realiser == nil {
			b := &nix.Builder{Nix: s.o.Build.Nix, Env: s.o.Build.NixEnv}
			if _, err := b.Version(ctx); err != nil {
				return nixBroken(err)
			}
		}
		go s.lock(s.life, s.o.Nixpkgs)
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	l, err := s.o.Lock(lctx, s.o.Nixpkgs)
	switch {
	case errors.As(err, new(*exec.Error)):
		return err // no Nix: run says so, and what to do
	case err != nil:
		return fmt.Errorf("%s; check --nixpkgs", s.scrub(headline(err)))
	}
	s.locked(s.o.Nixpkgs, l, nil)
	return nil
}

// nixBroken is the error of `nix --version` failing.
func nixBroken(err error) error {
	var ce *nix.CommandError
	if errors.As(err, &ce) {
		return fmt.Errorf("%s: check that Nix works for the server's user", ce.Short())
	}
	return err
}

// headline is err in one line: a Nix command's failure without the
// lines of Nix's output it quotes.
func headline(err error) string {
	var ce *nix.CommandError
	if errors.As(err, &ce) {
		return ce.Short()
	}
	return firstLine(err.Error())
}

// relockWait is how long a pull waits for a reference it has a lock of
// to be locked again. Nix answers from its own cache within its
// tarball-ttl, and a forge's API in under a second; a new revision of
// nixpkgs is a tarball of some 40 MB to fetch.
const relockWait = 3 * time.Second

// keepLocksFor is how long a lock is kept past Refresh, to stand in
// when its reference cannot be locked again.
const keepLocksFor = 24 * time.Hour

// locked records how locking ref went, and forgets the locks that stand
// no more.
func (s *Server) locked(ref string, l nix.Locked, err error) (nix.Locked, error) {
	if err != nil && s.life.Err() != nil {
		return nix.Locked{}, errStopping // cut off, not failed: not remembered
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for r, e := range s.locks {
		if (e.err != nil && now.Sub(e.at) > failedFor) || now.Sub(e.at) > s.o.Refresh+keepLocksFor {
			delete(s.locks, r)
		}
	}
	prev, had := s.locks[ref]
	had = had && prev.err == nil
	switch {
	case err == nil:
		result := "ok"
		if !had {
			s.o.Log.Info("nixpkgs locked", "nixpkgs", ref, "locked", l.URL)
		}
		if had && prev.locked.URL != l.URL {
			result = "moved"
			s.o.Log.Info("nixpkgs moved", "nixpkgs", ref, "from", prev.locked.URL, "to", l.URL)
		}
		s.metrics.locks.WithLabelValues(result).Inc()
		s.locks[ref] = lockEntry{locked: l, at: now}
		return l, nil
	case had:
		s.metrics.locks.WithLabelValues("stale").Inc()
		s.o.Log.Warn("nixpkgs could not be locked again: its last lock stands", "nixpkgs", ref, "locked", prev.locked.URL, "error", err.Error())
		s.locks[ref] = lockEntry{locked: prev.locked, at: now}
		return prev.locked, nil
	default:
		s.metrics.locks.WithLabelValues("failed").Inc()
		s.o.Log.Error("nixpkgs could not be locked", "nixpkgs", ref, "error", err.Error())
		why := firstLine(err.Error())
		var ce *nix.CommandError
		if errors.As(err, &ce) && ce.Headline != "" {
			why = ce.Headline
		}
		if ours(err) {
			err = &infraError{fmt.Errorf("nixpkgs %s cannot be locked: %w", ref, err)}
		} else {
			err = fmt.Errorf("nixpkgs %s cannot be locked: %s", ref, why)
		}
		s.locks[ref] = lockEntry{err: err, at: now}
		return nix.Locked{}, err
	}
}

// revisionKey is what identifies a locked reference's revision: its URL
// without ref, which a rev makes redundant (Nix writes a branch's lock
// as ?ref=B&rev=R and the commit's as ?rev=R).
func revisionKey(locked string) string {
	base, query, ok := strings.Cut(locked, "?")
	if !ok {
		return locked
	}
	v, err := url.ParseQuery(query)
	if err != nil || v.Get("rev") == "" {
		return locked
	}
	v.Del("ref")
	return base + "?" + v.Encode()
}

// nixLock locks ref with Nix, with the build's Nix settings.
func nixLock(o Options) func(ctx context.Context, ref string) (nix.Locked, error) {
	return func(ctx context.Context, ref string) (nix.Locked, error) {
		b := &nix.Builder{Flake: ref, Nix: o.Build.Nix, Env: o.Build.NixEnv}
		return b.Lock(ctx)
	}
}
