package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// A package's symlinks are followed only inside the store: a link to a
// host directory stays a link, and the host's file names never reach the
// image, even where two packages' directories are joined.
func TestCustomisationStaysInTheStore(t *testing.T) {
	host := t.TempDir()
	doc := filepath.Join(host, "usr", "share", "doc", "apt")
	assert.NilError(t, os.MkdirAll(filepath.Join(doc, "host-only-file-name"), 0o755))
	store := filepath.Join(t.TempDir(), "store")
	mk := func(p string) string {
		p = filepath.Join(store, p)
		assert.NilError(t, os.MkdirAll(p, 0o755))
		return p
	}
	a := mk("aaa-a")
	assert.NilError(t, os.Symlink(doc, filepath.Join(a, "share")))                                // absolute, out
	assert.NilError(t, os.Symlink("../../../../usr/share/doc", filepath.Join(a, "doc")))          // relative, out
	assert.NilError(t, os.Symlink(filepath.Join(store, "ccc-c", "lib"), filepath.Join(a, "lib"))) // in the store
	b := mk("bbb-b")
	mk("bbb-b/share/man")
	mk("bbb-b/doc/b")
	mk("bbb-b/lib/b.so")
	mk("ccc-c/lib/c.so")

	var buf bytes.Buffer
	_, err := PackCustomisation(&buf, Customisation{Packages: []string{a, b}}, Options{})
	assert.NilError(t, err)
	var names []string
	for _, e := range readBack(t, buf.Bytes()) {
		names = append(names, e.Name)
		assert.Assert(t, !strings.Contains(e.Name, "host-only") && !strings.Contains(e.Link, "host-only"), "%+v", e)
	}
	// lib, a link into the store, was unfolded and joined with b's.
	assert.Assert(t, is.Contains(names, "lib/c.so"))
	assert.Assert(t, is.Contains(names, "lib/b.so"))
	// share and doc lead out: a's links win as files; nothing is read.
	assert.Assert(t, is.Contains(names, "share"))
	assert.Assert(t, is.Contains(names, "doc"))

	// A package that is itself a link out of the store is refused.
	out := filepath.Join(store, "ddd-out")
	assert.NilError(t, os.Symlink(doc, out))
	_, err = PackCustomisation(&buf, Customisation{Packages: []string{b, out}}, Options{})
	assert.ErrorContains(t, err, "package "+out+" leads out of the Nix store "+store)
}

func TestResolveInStore(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store")
	assert.NilError(t, os.MkdirAll(filepath.Join(store, "aaa-a", "bin"), 0o755))
	assert.NilError(t, os.Symlink("aaa-a", filepath.Join(store, "bbb-b")))
	assert.NilError(t, os.Symlink("loop", filepath.Join(store, "loop")))
	assert.NilError(t, os.Symlink("/", filepath.Join(store, "root")))
	for _, tc := range []struct {
		p, want string
	}{
		{store + "/aaa-a/bin", store + "/aaa-a/bin"},
		{store + "/bbb-b/bin", store + "/aaa-a/bin"},
		{store + "/aaa-a/../bbb-b", store + "/aaa-a"},
		{store + "/loop", ""},
		{store + "/root/etc", ""},
		{store + "/aaa-a/../../x", ""},
		{store + "/missing", ""},
		{"/etc", ""},
	} {
		got, ok := resolveInStore(store, tc.p)
		assert.Equal(t, ok, tc.want != "", tc.p)
		assert.Equal(t, got, tc.want, tc.p)
	}
}

// A user's files and home directory join the packages' /etc (a symlinked
// directory is unfolded to hold them), their owner is in the tar
// headers, /tmp stays 1777, and they change the layer's key.
func TestCustomisationFilesAndDirs(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store")
	etc := filepath.Join(store, "aaa-iana-etc", "etc")
	assert.NilError(t, os.MkdirAll(etc, 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(etc, "services"), []byte("http 80/tcp\n"), 0o644))
	assert.NilError(t, os.WriteFile(filepath.Join(etc, "passwd"), []byte("a package's\n"), 0o644))
	c := Customisation{Packages: []string{filepath.Dir(etc)},
		Files: []File{{Path: "etc/passwd", Data: []byte("root:x:0:0:root:/root:/bin/sh\n"), Mode: 0o644}},
		Dirs:  []Dir{{Path: "home/app", Mode: 0o755, UID: 1000, GID: 1001}},
	}
	var buf bytes.Buffer
	_, err := PackCustomisation(&buf, c, Options{})
	assert.NilError(t, err)
	// (readHeaders holds every owner to root: this layer has one more.)
	byName := map[string]*tar.Header{}
	zr, err := gzip.NewReader(&buf)
	assert.NilError(t, err)
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		assert.NilError(t, err)
		byName[h.Name] = h
	}
	assert.Equal(t, byName["etc/"].Typeflag, byte('5'), "etc is a real directory")
	assert.Equal(t, byName["etc/services"].Linkname, filepath.Join(etc, "services"))
	assert.Equal(t, byName["etc/passwd"].Typeflag, byte('0'))
	assert.Equal(t, byName["etc/passwd"].Size, int64(len("root:x:0:0:root:/root:/bin/sh\n")))
	assert.Equal(t, byName["home/app/"].Uid, 1000)
	assert.Equal(t, byName["home/app/"].Gid, 1001)
	assert.Equal(t, byName["home/"].Uid, 0)
	assert.Equal(t, byName["tmp/"].Mode, int64(0o1777))

	without := c
	without.Files, without.Dirs = nil, nil
	assert.Assert(t, CustomisationKey(c) != CustomisationKey(without))
	other := c
	other.Dirs = []Dir{{Path: "home/app", Mode: 0o755, UID: 1000, GID: 1000}}
	assert.Assert(t, CustomisationKey(c) != CustomisationKey(other))
}

// A file made IfMissing yields to a package's own (a fake NSS's
// /etc/passwd) and is made where no package has one, through a package's
// symlinked directory; IfMissing is in the key.
func TestCustomisationFileIfMissing(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store")
	nss := filepath.Join(store, "aaa-fake-nss")
	assert.NilError(t, os.MkdirAll(filepath.Join(nss, "etc"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(nss, "etc", "passwd"), []byte("a package's\n"), 0o644))
	c := Customisation{Packages: []string{nss}, Files: []File{
		{Path: "etc/passwd", Data: []byte("root:x:0:0:root:/root:/bin/sh\n"), Mode: 0o644, IfMissing: true},
		{Path: "etc/group", Data: []byte("root:x:0:\n"), Mode: 0o644, IfMissing: true},
	}}
	var buf bytes.Buffer
	_, err := PackCustomisation(&buf, c, Options{})
	assert.NilError(t, err)
	byName := map[string]entry{}
	for _, e := range readBack(t, buf.Bytes()) {
		byName[e.Name] = e
	}
	assert.Check(t, is.Equal(byName["etc/passwd"].Link, filepath.Join(nss, "etc", "passwd")), "%+v", byName)
	assert.Check(t, is.Equal(byName["etc/group"].Type, byte(tar.TypeReg)), "%+v", byName)
	assert.Check(t, is.Equal(byName["etc/group"].Size, int64(len("root:x:0:\n"))))

	forced := c
	forced.Files = []File{c.Files[0], c.Files[1]}
	forced.Files[0].IfMissing = false
	assert.Check(t, CustomisationKey(c) != CustomisationKey(forced))
}

// A package's own top-level nix/ never replaces the image's /nix (the
// store): it is left out, and the caller hears of it.
func TestCustomisationKeepsNix(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store")
	app := filepath.Join(store, "aaa-app")
	assert.NilError(t, os.MkdirAll(filepath.Join(app, "nix", "var"), 0o755))
	assert.NilError(t, os.MkdirAll(filepath.Join(app, "bin"), 0o755))
	var dropped []string
	var buf bytes.Buffer
	_, err := PackCustomisation(&buf, Customisation{Packages: []string{app}, OnCollision: func(name, _, drop string) {
		dropped = append(dropped, name+" "+drop)
	}}, Options{})
	assert.NilError(t, err)
	for _, e := range readBack(t, buf.Bytes()) {
		assert.Check(t, e.Name != "nix" && !strings.HasPrefix(e.Name, "nix/"), "%+v", e)
	}
	assert.DeepEqual(t, dropped, []string{"nix " + filepath.Join(app, "nix")})
}

// Directory symlinks that loop (share/d/x -> .) in two packages joined
// stay links: the join ends at once, with the same layer every time,
// rather than unfolding 2^40 levels.
func TestCustomisationLoopingLinks(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store")
	var pkgs []string
	for _, name := range []string{"aaa-a", "bbb-b"} {
		d := filepath.Join(store, name, "share", "d")
		assert.NilError(t, os.MkdirAll(d, 0o755))
		assert.NilError(t, os.Symlink(".", filepath.Join(d, "x")))
		assert.NilError(t, os.Symlink(".", filepath.Join(d, "y")))
		assert.NilError(t, os.WriteFile(filepath.Join(d, name+".txt"), []byte(name), 0o644))
		pkgs = append(pkgs, filepath.Join(store, name))
	}
	var first []byte
	for range 2 {
		var buf bytes.Buffer
		_, err := PackCustomisation(&buf, Customisation{Packages: pkgs}, Options{})
		assert.NilError(t, err)
		var names []string
		for _, e := range readBack(t, buf.Bytes()) {
			names = append(names, e.Name)
		}
		assert.Check(t, is.Contains(names, "share/d/aaa-a.txt"))
		assert.Check(t, is.Contains(names, "share/d/bbb-b.txt"))
		assert.Check(t, is.Contains(names, "share/d/x"))
		assert.Check(t, len(names) < 20, "%d entries: %v", len(names), names)
		if first == nil {
			first = buf.Bytes()
		} else {
			assert.Check(t, bytes.Equal(first, buf.Bytes()), "not reproducible")
		}
	}
}

// A file that is a symlink by the time it is opened (swapped while the
// store path was walked) is never read through: its target may be any
// file of the host.
func TestAddFileNeverFollowsLinks(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	assert.NilError(t, os.WriteFile(secret, []byte("SECRET"), 0o644))
	link := filepath.Join(dir, "f")
	assert.NilError(t, os.Symlink(secret, link))
	p, err := newPacker(io.Discard, Options{})
	assert.NilError(t, err)
	defer p.abort()
	d, err := os.Open(dir)
	assert.NilError(t, err)
	defer d.Close()
	err = p.addFile(d, link, "nix/store/x/f") // as if walked as a regular file
	assert.ErrorContains(t, err, link+" changed while it was packed (it is a symlink now)")
}

// A working directory the image lacks (IfMissing) is made the user's,
// with root-owned parents; one the image has already (/tmp, the home, a
// real /etc, a package's directory, or a name below a package's file)
// leaves the layer byte for byte as it is without it.
func TestCustomisationWorkdir(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store")
	pkg := filepath.Join(store, "aaa-app")
	for _, d := range []string{"bin", "share/greet", "etc/ssl"} {
		assert.NilError(t, os.MkdirAll(filepath.Join(pkg, d), 0o755))
	}
	assert.NilError(t, os.WriteFile(filepath.Join(pkg, "bin", "app"), []byte("#!/bin/sh\n"), 0o755))
	base := Customisation{Packages: []string{pkg},
		Files: []File{{Path: "etc/passwd", Data: []byte("root:x:0:0:root:/root:/bin/sh\n"), Mode: 0o644}},
		Dirs:  []Dir{{Path: "home/app", Mode: 0o755, UID: 1000, GID: 1001}},
	}
	pack := func(workdir string) []byte {
		t.Helper()
		c := base
		if workdir != "" {
			c.Dirs = append(c.Dirs[:1:1], Dir{Path: workdir, Mode: 0o755, UID: 1000, GID: 1001, IfMissing: true})
		}
		var buf bytes.Buffer
		_, err := PackCustomisation(&buf, c, Options{})
		assert.NilError(t, err)
		return buf.Bytes()
	}
	without := pack("")
	for _, dir := range []string{"tmp", "home/app", "etc", "share", "share/greet", "etc/ssl", "bin/app", "bin/app/x"} {
		assert.Check(t, bytes.Equal(pack(dir), without), "workdir /%s changed the layer", dir)
	}

	for _, tc := range []struct {
		dir  string
		want map[string]string // directory → uid:gid mode
	}{
		{"srv/app/work", map[string]string{"srv/": "0:0 755", "srv/app/": "0:0 755", "srv/app/work/": "1000:1001 755"}},
		{"home/app/src", map[string]string{"home/": "0:0 755", "home/app/": "1000:1001 755", "home/app/src/": "1000:1001 755"}},
		{"tmp/work", map[string]string{"tmp/": "0:0 1777", "tmp/work/": "1000:1001 755"}},
		// A new name in a package's directory: the link becomes a real
		// directory holding the package's entries and the new one.
		{"share/work", map[string]string{"share/": "0:0 755", "share/work/": "1000:1001 755"}},
	} {
		got := map[string]string{}
		var links []string
		zr, err := gzip.NewReader(bytes.NewReader(pack(tc.dir)))
		assert.NilError(t, err)
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			assert.NilError(t, err)
			if _, ok := tc.want[h.Name]; ok {
				got[h.Name] = fmt.Sprintf("%d:%d %o", h.Uid, h.Gid, h.Mode)
			}
			if h.Typeflag == tar.TypeSymlink {
				links = append(links, h.Name)
			}
		}
		assert.Check(t, is.DeepEqual(got, tc.want), tc.dir)
		if tc.dir == "share/work" {
			assert.Check(t, is.Contains(links, "share/greet"))
		}
	}

	c := base
	c.Dirs = append(c.Dirs[:1:1], Dir{Path: "srv/work", Mode: 0o755, UID: 1000, GID: 1001, IfMissing: true})
	always := base
	always.Dirs = append(always.Dirs[:1:1], Dir{Path: "srv/work", Mode: 0o755, UID: 1000, GID: 1001})
	assert.Check(t, CustomisationKey(c) != CustomisationKey(always))
	assert.Check(t, CustomisationKey(c) != CustomisationKey(base))
}

// One package given twice (an alias beside its target: python3 and
// python312), or a package whose directory leads where another's does,
// joins as once: no collision of a file with itself, no directory
// unfolded into a link per file, the same layer.
func TestCustomisationSamePackageTwice(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store")
	mk := func(p string) string {
		p = filepath.Join(store, p)
		assert.NilError(t, os.MkdirAll(p, 0o755))
		return p
	}
	py := mk("aaa-python")
	mk("aaa-python/bin")
	for _, f := range []string{"bin/python3", "bin/pip"} {
		assert.NilError(t, os.WriteFile(filepath.Join(py, f), []byte(f), 0o755))
	}
	wrap := mk("bbb-wrapper")
	assert.NilError(t, os.Symlink(filepath.Join(py, "bin"), filepath.Join(wrap, "bin")))
	// A third whose bin is joined with the first's, and links to the
	// first's python3: the same file, no collision.
	tool := mk("ccc-tool")
	mk("ccc-tool/bin")
	assert.NilError(t, os.WriteFile(filepath.Join(tool, "bin", "tool"), nil, 0o755))
	assert.NilError(t, os.Symlink(filepath.Join(py, "bin", "python3"), filepath.Join(tool, "bin", "python3")))

	pack := func(pkgs ...string) ([]string, []byte) {
		var collisions []string
		var buf bytes.Buffer
		_, err := PackCustomisation(&buf, Customisation{Packages: pkgs, OnCollision: func(name, _, _ string) {
			collisions = append(collisions, name)
		}}, Options{})
		assert.NilError(t, err)
		return collisions, buf.Bytes()
	}
	collisions, _ := pack(py, tool, wrap)
	assert.Check(t, is.Len(collisions, 0), "%v", collisions)
	// Two packages' links to one file out of the store are one file too;
	// two different files at one path still collide.
	s1, s2 := mk("ddd-sudo-a/bin"), mk("eee-sudo-b/bin")
	for _, d := range []string{s1, s2} {
		assert.NilError(t, os.Symlink("/run/wrappers/bin/sudo", filepath.Join(d, "sudo")))
	}
	assert.NilError(t, os.WriteFile(filepath.Join(s2, "tool"), []byte("other"), 0o755))
	collisions, _ = pack(filepath.Dir(s1), filepath.Dir(s2), tool)
	assert.Check(t, is.DeepEqual(collisions, []string{"bin/tool"}))
	_, once := pack(py)
	for _, pkgs := range [][]string{{py, py}, {py, wrap}} {
		collisions, got := pack(pkgs...)
		assert.Check(t, is.Len(collisions, 0), "%v: %v", pkgs, collisions)
		var names []string
		for _, e := range readBack(t, got) {
			names = append(names, e.Name)
		}
		assert.Check(t, !slices.Contains(names, "bin/python3"), "%v: bin unfolded: %v", pkgs, names)
		if pkgs[1] == py {
			assert.Check(t, bytes.Equal(got, once), "%v: not the layer of one", pkgs)
		}
	}
}
