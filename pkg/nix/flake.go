package nix

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/nixery-action/nixery-action/pkg/flakeref"

	"github.com/nixery-action/nixery-action/pkg/storepath"
)

// Locked is a nixpkgs flake reference locked to one version of its
// source: what a build records to say what it built from.
type Locked struct {
	// URL is the locked reference, e.g.
	// github:NixOS/nixpkgs/<rev>?narHash=... or path:/dir?narHash=...
	URL string
	// Rev is the source's commit, when it has one (git, github, ...).
	Rev string
	// NarHash is the hash of the source tree, when Nix reports it.
	NarHash string
	// LastModified is the source's time in Unix seconds, or zero.
	LastModified int64
	// Source, when set, is where Nix reads the source from instead of
	// URL: a path: reference to a store path holding the same tree (see
	// pinned). Nothing records it.
	Source string
}

// nixRef is the reference Nix is given for the source: Source when set.
func (l Locked) nixRef() string {
	if l.Source != "" {
		return l.Source
	}
	return l.URL
}

// Lock locks the flake reference and returns the locked reference; later
// calls return the same one, so every system built by b builds the same
// revision. Build calls it first; calling it before building several
// systems at once makes it the only Nix command running, which a store
// that was never used needs (its first commands create the database, and
// concurrent ones corrupt it).
//
// Only the locked URL of `nix flake metadata` is used, which every Nix
// prints: newer ones leave out the source's store path (lazy trees) or
// name one that does not exist. A reference Nix cannot lock, such as a
// git checkout with uncommitted changes, is copied to the store with `nix
// flake prefetch` and locked by content.
func (b *Builder) Lock(ctx context.Context) (Locked, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.locked.URL != "" {
		return b.locked, nil
	}
	if b.Locked != nil {
		b.locked = *b.Locked
		return b.locked, nil
	}
	b.askVersionSoon()
	l, err := b.lock(ctx, b.Flake, "nixpkgs flake")
	if err != nil {
		return Locked{}, err
	}
	b.locked = l
	return l, nil
}

// LockFlake locks another flake, whose packages are installables (the
// team's own software), the way Lock locks nixpkgs: once per reference,
// later calls return the same lock. Relative references (., ../x,
// path:./x) are read from the working directory.
func (b *Builder) LockFlake(ctx context.Context, ref string) (Locked, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if l, ok := b.flakes[ref]; ok {
		return l, nil
	}
	l, err := b.lock(ctx, ref, "flake")
	if err != nil {
		return Locked{}, err
	}
	if b.flakes == nil {
		b.flakes = map[string]Locked{}
	}
	b.flakes[ref] = l
	return l, nil
}

// lock locks ref (what names it for people: "nixpkgs flake", "flake").
func (b *Builder) lock(ctx context.Context, ref, what string) (Locked, error) {
	if err := checkFlakeRef(ref, what); err != nil {
		return Locked{}, err
	}
	parent := ctx
	if b.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.Timeout)
		defer cancel()
	}
	if p, ok := parsePinned(ref); ok {
		l, err := b.lockPinned(ctx, p, what)
		if err != nil {
			return Locked{}, lockError(parent, b, ref, what, err)
		}
		return l, nil
	}
	meta, err := b.metadata(ctx, ref, what)
	if err != nil {
		return Locked{}, lockError(parent, b, ref, what, withUntrackedHint(ref, err))
	}
	if !meta.Locked.isLocked() {
		copyRef, err := b.prefetch(ctx, meta.URL, meta.Locked.Dir, what)
		if err != nil {
			return Locked{}, lockError(parent, b, ref, what, err)
		}
		b.logf("[nix] ", "%s cannot be locked (uncommitted changes?): building from its copy %s", flakeref.Redacted(ref), copyRef)
		if meta, err = b.metadata(ctx, copyRef, what); err != nil {
			return Locked{}, lockError(parent, b, ref, what, err)
		}
		if !meta.Locked.isLocked() {
			return Locked{}, fmt.Errorf("reading the %s %q: Nix cannot lock its copy %s", what, flakeref.Redacted(ref), copyRef)
		}
	}
	ref = meta.URL
	if meta.Locked.Type == "path" {
		ref = withoutLastModified(ref)
	}
	return Locked{URL: flakeref.Canonical(ref), Rev: meta.Locked.Rev, NarHash: meta.Locked.NarHash, LastModified: meta.LastModified}, nil
}

// pinned is a reference that locks itself: a forge's commit with the NAR
// hash of its tree, github:OWNER/REPO/REV?narHash=HASH, as nixery's default
// nixpkgs is (flake.lock's pin, baked in the same way whether nixery was
// built by scripts/build-release.sh or by the flake). It is recorded as it
// is, whichever Nix locks it and however that Nix prints it, and its
// source is read from the store when the store holds it: Nix itself
// downloads such a reference again, even offline with the tree at hand
// (2.8 and 2.26 alike), while a flake-built nixery keeps that tree in its
// closure.
type pinned struct {
	url, rev, narHash string
	source            string // the store path of its tree (storepath.Source)
}

// parsePinned reads ref as a pinned reference: a forge, OWNER/REPO/REV
// with a full commit hash, and narHash as its only parameter.
func parsePinned(ref string) (pinned, bool) {
	// A forge's source is stored by its NAR hash alone.
	f, ok := flakeref.ParseForge(ref)
	if !ok || !flakeref.IsCommit(f.Ref) {
		return pinned{}, false
	}
	key, value, _ := strings.Cut(f.Query, "=")
	narHash, err := url.PathUnescape(value)
	if key != "narHash" || err != nil || strings.Contains(value, "&") {
		return pinned{}, false
	}
	source, ok := storepath.Source(narHash)
	if !ok {
		return pinned{}, false
	}
	return pinned{url: flakeref.Canonical(ref), rev: f.Ref, narHash: narHash, source: source}, true
}

// lockPinned locks a pinned reference: Nix locks the store's copy of its
// tree when there is one (checking the copy's hash), else fetches it.
func (b *Builder) lockPinned(ctx context.Context, p pinned, what string) (Locked, error) {
	ref := p.url
	if exists(p.source) {
		ref = "path:" + p.source + "?" + url.Values{"narHash": {p.narHash}}.Encode()
	}
	meta, err := b.metadata(ctx, ref, what)
	if err != nil {
		return Locked{}, err
	}
	if meta.Locked.NarHash != "" && meta.Locked.NarHash != p.narHash {
		return Locked{}, fmt.Errorf("the %s %q has the NAR hash %s, not the %s its reference names", what, flakeref.Redacted(p.url), meta.Locked.NarHash, p.narHash)
	}
	l := Locked{URL: p.url, Rev: p.rev, NarHash: p.narHash, LastModified: meta.LastModified}
	if ref != p.url {
		l.Source = flakeref.Canonical(withoutLastModified(meta.URL))
	}
	return l, nil
}

// exists tells whether a file or directory is at path.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// withoutLastModified drops lastModified from a locked path: reference.
// For a path Nix takes it from the files' mtimes, which a fresh checkout
// or a touch changes while the content (narHash) stays: kept, it would
// change the image's annotations, provenance and SBOM, and a server's
// key, for the same sources. Nix locks a path by its narHash alone.
func withoutLastModified(ref string) string {
	base, query, ok := strings.Cut(ref, "?")
	if !ok {
		return ref
	}
	var kept []string
	for _, kv := range strings.Split(query, "&") {
		if !strings.HasPrefix(kv, "lastModified=") {
			kept = append(kept, kv)
		}
	}
	if len(kept) == 0 {
		return base
	}
	return base + "?" + strings.Join(kept, "&")
}

// lockError says that locking ran out of time when it did (err is then
// the bare context error): a *TimeoutError.
func lockError(parent context.Context, b *Builder, ref, what string, err error) error {
	if parent.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return &TimeoutError{What: fmt.Sprintf("locking the %s %q", what, flakeref.Redacted(ref)), After: b.Timeout}
	}
	return err
}

// Resolve is Lock's URL alone.
func (b *Builder) Resolve(ctx context.Context) (string, error) {
	l, err := b.Lock(ctx)
	return l.URL, err
}

// flakeMetadata is the part of `nix flake metadata --json` used here. Its
// "path" is not: Nix 2.35 names a store path it has not written, and
// Determinate Nix with lazy trees leaves it out.
type flakeMetadata struct {
	URL          string      `json:"url"`       // the locked reference
	LockedURL    string      `json:"lockedUrl"` // its name in some Nix versions
	LastModified int64       `json:"lastModified"`
	Locked       lockedInput `json:"locked"`
}

type lockedInput struct {
	Type    string `json:"type"`
	Rev     string `json:"rev"`
	NarHash string `json:"narHash"`
	Dir     string `json:"dir"`
}

// isLocked tells whether builtins.getFlake accepts the input in pure
// evaluation: a revision, or a content hash for inputs without one.
func (l lockedInput) isLocked() bool {
	switch {
	case l.Rev != "":
		return true
	case l.Type == "path" || l.Type == "tarball" || l.Type == "file":
		return l.NarHash != ""
	}
	return false
}

func (b *Builder) metadata(ctx context.Context, ref, kind string) (*flakeMetadata, error) {
	what := fmt.Sprintf("reading the %s %q", kind, flakeref.Redacted(ref))
	out, err := b.run(ctx, b.Log, what, "[nix] ", "flake", "metadata", "--json", "--no-write-lock-file", "--", ref)
	if err != nil {
		return nil, err
	}
	return parseMetadata(what, out)
}

func parseMetadata(what string, out []byte) (*flakeMetadata, error) {
	var meta flakeMetadata
	if err := json.Unmarshal(out, &meta); err != nil {
		return nil, fmt.Errorf("%s: unexpected output of nix flake metadata: %w", what, err)
	}
	if meta.URL == "" {
		meta.URL = meta.LockedURL
	}
	if meta.URL == "" || strings.Contains(meta.URL, "#") || strings.HasPrefix(meta.URL, "-") {
		return nil, fmt.Errorf("%s: nix flake metadata gave no usable locked reference", what)
	}
	return &meta, nil
}

// noRegistry names no file: as the global flake registry it is an empty
// one. `nix flake prefetch` looks every reference up in the registries,
// and before Nix 2.19 or so that downloads the global one even for a
// direct reference such as git+file:///dir, which fails offline.
const noRegistry = "/nonexistent/nixery-no-flake-registry.json"

// prefetch copies the source of a resolved (direct) flake reference to
// the store and returns a path: reference to the copy, locked by its
// hash; dir is the flake's directory inside the source, if any.
func (b *Builder) prefetch(ctx context.Context, ref, dir, kind string) (string, error) {
	what := fmt.Sprintf("copying the %s %q to the store", kind, flakeref.Redacted(ref))
	out, err := b.run(ctx, b.Log, what, "[nix] ", "flake", "prefetch", "--json",
		"--option", "flake-registry", noRegistry, "--", ref)
	if err != nil {
		return "", err
	}
	return prefetchRef(what, out, dir)
}

// prefetchRef reads `nix flake prefetch --json`: every Nix since 2.4 prints
// the copy's storePath and its NAR hash.
func prefetchRef(what string, out []byte, dir string) (string, error) {
	var res struct {
		StorePath string `json:"storePath"`
		Hash      string `json:"hash"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return "", fmt.Errorf("%s: unexpected output of nix flake prefetch: %w", what, err)
	}
	if dir, ok := otherStore(res.StorePath); ok {
		return "", otherStoreError(what, dir)
	}
	// A store path, and one a path: reference can hold (no ? or #).
	if !storepath.Exact(res.StorePath) || strings.ContainsAny(res.StorePath, "?#") || res.Hash == "" {
		return "", fmt.Errorf("%s: nix flake prefetch gave no store path and hash", what)
	}
	if dir != "" {
		// path: references take no dir; the hash is the whole
		// source's, so the flake's directory is locked on its own.
		return "path:" + res.StorePath + "/" + strings.Trim(dir, "/"), nil
	}
	return "path:" + res.StorePath + "?" + url.Values{"narHash": {res.Hash}}.Encode(), nil
}

// checkFlakeRef rejects references Nix would read as something else: an
// option, or one with a fragment (packages are named separately).
func checkFlakeRef(ref, what string) error {
	switch {
	case ref == "":
		return fmt.Errorf("no %s reference given (e.g. github:NixOS/nixpkgs/nixos-26.05)", what)
	case strings.HasPrefix(ref, "-"):
		return fmt.Errorf("%s reference starts with '-' (an option where a reference goes?)", what)
	case strings.Contains(ref, "#"):
		return fmt.Errorf("%s reference %q has a #fragment: give the flake alone and name packages separately", what, flakeref.Redacted(ref))
	case strings.IndexFunc(ref, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
		return fmt.Errorf("%s reference %q contains spaces or control characters", what, flakeref.Redacted(ref))
	}
	return nil
}
