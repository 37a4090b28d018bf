package nix

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// Resolve locks the flake reference (with `nix flake metadata`) and returns
// the locked reference, e.g. github:NixOS/nixpkgs/<rev> or
// path:/dir?narHash=...; later calls return the same one. Build calls it
// first, so callers only need it to report the revision they built from.
// A reference Nix cannot lock, such as a git checkout with uncommitted
// changes, is replaced by its copy in the store, locked by content.
func (b *Builder) Resolve(ctx context.Context) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.locked != "" {
		return b.locked, nil
	}
	if err := checkFlakeRef(b.Flake); err != nil {
		return "", err
	}
	meta, err := b.metadata(ctx, b.Flake)
	if err != nil {
		return "", err
	}
	if !meta.Locked.isLocked() {
		copyRef := "path:" + meta.Path
		if meta.Locked.Dir != "" {
			copyRef += "/" + meta.Locked.Dir
		}
		b.logf("[nix] ", "%s cannot be locked (uncommitted changes?): building from its copy %s", b.Flake, copyRef)
		if meta, err = b.metadata(ctx, copyRef); err != nil {
			return "", err
		}
	}
	b.locked = meta.URL
	return b.locked, nil
}

// flakeMetadata is the part of `nix flake metadata --json` used here.
type flakeMetadata struct {
	URL       string      `json:"url"`       // the locked reference
	LockedURL string      `json:"lockedUrl"` // its name in some Nix versions
	Path      string      `json:"path"`      // the source's copy in the store
	Locked    lockedInput `json:"locked"`
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

func (b *Builder) metadata(ctx context.Context, ref string) (*flakeMetadata, error) {
	what := fmt.Sprintf("reading the nixpkgs flake %q", ref)
	out, err := b.run(ctx, what, "[nix] ", "flake", "metadata", "--json", "--no-write-lock-file", "--", ref)
	if err != nil {
		return nil, err
	}
	var meta flakeMetadata
	if err := json.Unmarshal(out, &meta); err != nil {
		return nil, fmt.Errorf("%s: unexpected output of nix flake metadata: %w", what, err)
	}
	if meta.URL == "" {
		meta.URL = meta.LockedURL
	}
	if meta.URL == "" || strings.Contains(meta.URL, "#") || !strings.HasPrefix(meta.Path, "/") {
		return nil, fmt.Errorf("%s: nix flake metadata gave no usable locked reference", what)
	}
	return &meta, nil
}

// checkFlakeRef rejects references Nix would read as something else: an
// option, or one with a fragment (packages are named separately).
func checkFlakeRef(ref string) error {
	switch {
	case ref == "":
		return fmt.Errorf("no nixpkgs flake reference given (e.g. github:NixOS/nixpkgs/nixos-25.11)")
	case strings.HasPrefix(ref, "-"):
		return fmt.Errorf("nixpkgs flake reference %q starts with '-'", ref)
	case strings.Contains(ref, "#"):
		return fmt.Errorf("nixpkgs flake reference %q has a #fragment: give the flake alone and name packages separately", ref)
	case strings.IndexFunc(ref, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
		return fmt.Errorf("nixpkgs flake reference %q contains spaces or control characters", ref)
	}
	return nil
}
