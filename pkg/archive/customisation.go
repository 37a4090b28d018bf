package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
)

// Customisation describes the layer that makes the requested packages
// usable from the image's root, the way nixpkgs' buildEnv joins packages
// into one profile.
type Customisation struct {
	// Packages are the store paths of the requested packages. Earlier
	// packages win when two provide the same file.
	Packages []string
	// CACert is cacert's store path, or "": its bundle becomes
	// /etc/ssl/certs/ca-certificates.crt.
	CACert string
	// OnCollision, when set, hears of each file two packages provide:
	// the path in the image, the target kept and the one left out.
	OnCollision func(name, kept, dropped string)
	// StoreDir is the Nix store the packages are in; "" means the
	// directory holding the first package. Symlinks are followed only
	// while they stay inside it: a package's link to a host directory
	// must not put the host's file names into the image.
	StoreDir string
	// Files are regular files to put in the image's root (/etc/passwd
	// and /etc/group), replacing what packages put there unless
	// IfMissing.
	Files []File
	// Dirs are directories to make, with their owners (a user's home,
	// its working directory).
	Dirs []Dir
}

// File is a regular file of the customisation layer.
type File struct {
	Path string // slash-separated, relative to the image root: etc/passwd
	Data []byte
	Mode int64
	// IfMissing makes it only where the layer has nothing at Path yet: a
	// package's own file (a fake NSS's /etc/passwd) stays.
	IfMissing bool
}

// Dir is a directory of the customisation layer, owned by UID:GID.
type Dir struct {
	Path     string // slash-separated, relative to the image root
	Mode     int64
	UID, GID int
	// IfMissing makes it only where the layer has nothing at Path yet
	// (a working directory): what packages, /tmp or an earlier Dir
	// provide stays as it is, and no file on the way is replaced.
	IfMissing bool
}

// caBundle is where cacert keeps its bundle in nixpkgs.
const caBundle = "etc/ssl/certs/ca-bundle.crt"

// CACertFile is the image path of the certificate bundle.
const CACertFile = "etc/ssl/certs/ca-certificates.crt"

// farmNode is one entry of the symlink farm: a symlink into the store, or
// a real directory that joins several packages' directories.
type farmNode struct {
	target   string               // symlink target; "" for a real directory or file
	children map[string]*farmNode // real directories only
	mode     int64                // real directories and files
	data     []byte               // regular files only
	file     bool
	uid, gid int
}

func newDir(mode int64) *farmNode { return &farmNode{children: map[string]*farmNode{}, mode: mode} }

// PackCustomisation packs the customisation layer: every top-level entry
// of each package (bin, sbin, lib, share, etc, ...; not nix-support) at
// the image root, /tmp with mode 1777, and the CA bundle.
//
// The rule is buildEnv's: a directory only one package provides is a
// symlink to that package's directory; when a second package provides it
// too, it becomes a real directory holding both packages' entries,
// recursively. When two packages provide the same file, the first in
// Packages wins and OnCollision is told. A name starting with .wh. is an
// error: in the image's top layer, readers would take it for a whiteout
// hiding what is below (.wh.nix, the whole store).
func PackCustomisation(w io.Writer, c Customisation, o Options) (Blob, error) {
	root := newDir(0o755)
	if c.StoreDir == "" && len(c.Packages) > 0 {
		c.StoreDir = path.Dir(c.Packages[0])
	}
	j := &joiner{Customisation: c, ctx: o.Context, onPath: map[string]bool{}}
	if j.ctx == nil {
		j.ctx = context.Background()
	}
	seen := map[string]bool{}
	for _, pkg := range c.Packages {
		if seen[pkg] {
			continue // two names of one package (an alias and its target)
		}
		seen[pkg] = true
		if info, err := os.Stat(pkg); err == nil && !info.IsDir() {
			// buildEnv refuses these too: there is no directory to join.
			return Blob{}, fmt.Errorf("package %s is a single file, not a directory: it cannot be linked into the image root", pkg)
		}
		if _, err := os.Lstat(pkg); err == nil && !c.isDir(pkg) {
			return Blob{}, fmt.Errorf("package %s leads out of the Nix store %s: it cannot be linked into the image root", pkg, c.StoreDir)
		}
		entries, err := c.readDir(pkg)
		if err != nil {
			return Blob{}, fmt.Errorf("read package %s: %w", pkg, err)
		}
		for _, e := range entries {
			switch e.Name() {
			case "nix-support":
				continue
			case "nix":
				// The image's /nix holds the store itself: a package's
				// own nix/ must not replace it.
				if c.OnCollision != nil {
					c.OnCollision("nix", "(the Nix store)", path.Join(pkg, e.Name()))
				}
				continue
			}
			if err := j.join(root, "", e.Name(), path.Join(pkg, e.Name())); err != nil {
				return Blob{}, err
			}
		}
	}
	if err := c.force(root, "tmp", newDir(0o1777)); err != nil {
		return Blob{}, err
	}
	if c.CACert != "" {
		if err := c.force(root, CACertFile, &farmNode{target: path.Join(c.CACert, caBundle)}); err != nil {
			return Blob{}, err
		}
	}
	for _, f := range c.Files {
		if f.IfMissing && !c.missing(root, f.Path) {
			continue
		}
		if err := c.force(root, f.Path, &farmNode{file: true, data: f.Data, mode: f.Mode}); err != nil {
			return Blob{}, err
		}
	}
	for _, d := range c.Dirs {
		if d.IfMissing && !c.missing(root, d.Path) {
			continue
		}
		n := newDir(d.Mode)
		n.uid, n.gid = d.UID, d.GID
		if err := c.force(root, d.Path, n); err != nil {
			return Blob{}, err
		}
	}

	p, err := newPacker(w, o)
	if err != nil {
		return Blob{}, err
	}
	defer p.abort()
	if err := p.writeFarm(root, ""); err != nil {
		return Blob{}, err
	}
	return p.close()
}

// maxFarmEntries bounds the entries joining packages may make: symlinks
// that fan out to the same directories many times over would otherwise
// make an exponential tree.
const maxFarmEntries = 1 << 20

// joiner joins packages into the farm. onPath holds the real directories
// being joined on the way to the current one: a symlink back to one of
// them (share/d/x -> .) would unfold for ever, so it stays a symlink.
type joiner struct {
	Customisation
	ctx     context.Context
	onPath  map[string]bool
	entries int
}

// join adds src under dir (at image path prefix) as name, unfolding
// symlinked directories into real ones where two packages meet.
func (j *joiner) join(dir *farmNode, prefix, name, src string) error {
	if err := j.ctx.Err(); err != nil {
		return err
	}
	if j.entries++; j.entries > maxFarmEntries {
		return fmt.Errorf("joining the packages into the image root makes more than %d entries (symlinks to directories fan out, at %s): give fewer packages", maxFarmEntries, prefix+name)
	}
	if isWhiteout(name) {
		return whiteoutError(j.storePath(src), src)
	}
	existing, ok := dir.children[name]
	if !ok {
		dir.children[name] = &farmNode{target: src}
		return nil
	}
	// Each side resolved once: where it leads in the store, and the
	// directory that is ("" when it is not a directory there).
	srcReal, srcIn := resolveInStore(j.StoreDir, src)
	srcDir, oldDir := dirAt(srcReal, srcIn), ""
	if existing.target != "" {
		oldReal, oldIn := resolveInStore(j.StoreDir, existing.target)
		if sameTarget(src, srcReal, srcIn, existing.target, oldReal, oldIn) {
			return nil // both lead to one file or directory: joined already
		}
		oldDir = dirAt(oldReal, oldIn)
	}
	if srcDir == "" || (existing.target != "" && oldDir == "") || j.onPath[srcDir] || j.onPath[oldDir] {
		kept := existing.target
		if kept == "" {
			kept = "(a directory)"
		}
		if j.OnCollision != nil {
			j.OnCollision(prefix+name, kept, src)
		}
		return nil
	}
	if existing.target != "" {
		if err := j.unfold(existing); err != nil {
			return err
		}
		j.onPath[oldDir] = true
		defer delete(j.onPath, oldDir)
	}
	j.onPath[srcDir] = true
	defer delete(j.onPath, srcDir)
	entries, err := os.ReadDir(srcDir)
	if err != nil {
		return fmt.Errorf("read %s: %w", src, err)
	}
	for _, e := range entries {
		if err := j.join(existing, prefix+name+"/", e.Name(), path.Join(src, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// dir is the directory p leads to inside the store, or "" when it leads
// to none (a file, nothing, or out of the store).
func (c Customisation) dir(p string) string {
	return dirAt(resolveInStore(c.StoreDir, p))
}

// dirAt is real when it is a directory (in the store: in), else "".
func dirAt(real string, in bool) string {
	if !in {
		return ""
	}
	if info, err := os.Lstat(real); err != nil || !info.IsDir() {
		return ""
	}
	return real
}

// unfold turns a symlink to a directory into a real directory of symlinks
// to that directory's entries.
func (c Customisation) unfold(n *farmNode) error {
	src := n.target
	entries, err := c.readDir(src)
	if err != nil {
		return fmt.Errorf("read %s: %w", src, err)
	}
	n.target, n.children, n.mode = "", map[string]*farmNode{}, 0o755
	for _, e := range entries {
		if isWhiteout(e.Name()) {
			return whiteoutError(c.storePath(src), path.Join(src, e.Name()))
		}
		n.children[e.Name()] = &farmNode{target: path.Join(src, e.Name())}
	}
	return nil
}

// force puts node at the slash-separated name, making real directories
// on the way and replacing what was there.
func (c Customisation) force(root *farmNode, name string, node *farmNode) error {
	parts := strings.Split(name, "/")
	for _, part := range parts {
		if isWhiteout(part) {
			return fmt.Errorf("image path /%s: OCI layers cannot hold names starting with %s (readers take them for whiteouts)", name, whiteoutPrefix)
		}
	}
	dir := root
	for _, part := range parts[:len(parts)-1] {
		next, ok := dir.children[part]
		switch {
		case !ok:
			next = newDir(0o755)
			dir.children[part] = next
		case next.target != "" && c.isDir(next.target):
			if err := c.unfold(next); err != nil {
				return err
			}
		case next.target != "" || next.file:
			// A file where a directory must go: the forced entry wins.
			next = newDir(0o755)
			dir.children[part] = next
		}
		dir = next
	}
	dir.children[parts[len(parts)-1]] = node
	return nil
}

// missing reports whether the slash-separated name can be made a new
// directory: nothing is there yet, and every entry on the way is a
// directory, of the farm or, through a symlink, of a package.
func (c Customisation) missing(root *farmNode, name string) bool {
	parts := strings.Split(name, "/")
	dir := root
	for i, part := range parts {
		next, ok := dir.children[part]
		switch {
		case !ok:
			return true
		case next.file || i == len(parts)-1:
			return false
		case next.target != "":
			return c.missingInStore(next.target, parts[i+1:])
		}
		dir = next
	}
	return false
}

// missingInStore is missing below a farm symlink to target: the rest of
// the name is looked up in the package it leads into.
func (c Customisation) missingInStore(target string, rest []string) bool {
	for _, part := range rest {
		if !c.isDir(target) {
			return false // a file, or a link out of the store
		}
		target = path.Join(target, part)
		if _, err := os.Lstat(target); err != nil {
			return errors.Is(err, fs.ErrNotExist)
		}
	}
	return false
}

// writeFarm writes the farm's entries in lexical order.
func (p *packer) writeFarm(dir *farmNode, prefix string) error {
	names := make([]string, 0, len(dir.children))
	for n := range dir.children {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := p.ctx.Err(); err != nil {
			return err
		}
		child := dir.children[n]
		name := prefix + n
		if child.target != "" {
			h := p.header(name, tar.TypeSymlink, symlinkMode)
			h.Linkname = child.target
			if err := p.writeHeader(h); err != nil {
				return err
			}
			continue
		}
		if child.file {
			h := p.header(name, tar.TypeReg, child.mode)
			h.Size = int64(len(child.data))
			if err := p.writeHeader(h); err != nil {
				return err
			}
			if _, err := p.tw.Write(child.data); err != nil {
				return err
			}
			continue
		}
		h := p.header(name+"/", tar.TypeDir, child.mode)
		h.Uid, h.Gid = child.uid, child.gid
		if err := p.writeHeader(h); err != nil {
			return err
		}
		if err := p.writeFarm(child, name+"/"); err != nil {
			return err
		}
	}
	return nil
}

// storePath is the top-level store path p is in: the package a farm
// entry comes from.
func (c Customisation) storePath(p string) string {
	store := path.Clean(c.StoreDir)
	top, _, _ := strings.Cut(strings.TrimPrefix(p, store+"/"), "/")
	return path.Join(store, top)
}

// isDir reports whether p is a directory, following symlinks as buildEnv
// does, but only inside the store.
func (c Customisation) isDir(p string) bool { return c.dir(p) != "" }

// sameTarget tells whether a and b (resolved in the store to aReal and
// bReal, where aIn and bIn) lead to one path inside the store, or are
// links to one absolute path out of it (/run/wrappers/bin/sudo), as
// buildEnv takes two links to one file for one.
func sameTarget(a, aReal string, aIn bool, b, bReal string, bIn bool) bool {
	if aIn && bIn {
		return aReal == bReal
	}
	ta, errA := os.Readlink(a)
	tb, errB := os.Readlink(b)
	return errA == nil && errB == nil && path.IsAbs(ta) && ta == tb
}

// readDir lists the directory p leads to inside the store.
func (c Customisation) readDir(p string) ([]os.DirEntry, error) {
	real, ok := resolveInStore(c.StoreDir, p)
	if !ok {
		if _, err := os.Lstat(p); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s leads out of the Nix store %s", p, c.StoreDir)
	}
	return os.ReadDir(real)
}

// maxLinks bounds the symlinks followed to resolve one path, as the
// kernel's 40 does.
const maxLinks = 40

// resolveInStore resolves p's symlinks one at a time, as the kernel
// would, but gives up (ok false) as soon as a link or ".." leads out of
// store, or p does not exist. The result has no symlinks in it.
func resolveInStore(store, p string) (string, bool) {
	store = path.Clean(store)
	p = path.Clean(p)
	if !within(store, p) {
		return "", false
	}
	cur := store
	rest := strings.Split(strings.TrimPrefix(p, store), "/")
	for links := 0; len(rest) > 0; {
		part := rest[0]
		rest = rest[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			if cur = path.Dir(cur); !within(store, cur) {
				return "", false
			}
			continue
		}
		next := path.Join(cur, part)
		info, err := os.Lstat(next)
		if err != nil {
			return "", false
		}
		if info.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		if links++; links > maxLinks {
			return "", false
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", false
		}
		if !path.IsAbs(target) {
			target = path.Join(cur, target)
		}
		if target = path.Clean(target); !within(store, target) {
			return "", false
		}
		// Start again from the store with the target's parts first.
		cur = store
		rest = append(strings.Split(strings.TrimPrefix(target, store), "/"), rest...)
	}
	return cur, cur != store
}

// within reports whether p is store or under it.
func within(store, p string) bool {
	return store == "/" || p == store || strings.HasPrefix(p, store+"/")
}
