package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/fs"
)

// packDir packs a directory as if it were the store path nix/store/<name>.
func packDir(t testing.TB, dir string, o Options) ([]byte, Blob, error) {
	t.Helper()
	var buf bytes.Buffer
	p, err := newPacker(&buf, o)
	assert.NilError(t, err)
	assert.NilError(t, p.dirs("nix/", "nix/store/"))
	if err := p.addTree(dir, "nix/store/"+filepath.Base(dir)); err != nil {
		return nil, Blob{}, err
	}
	blob, err := p.close()
	return buf.Bytes(), blob, err
}

type entry struct {
	Name, Link string
	Type       byte
	Mode       int64
	Size       int64
}

// readBack checks the gzip header and returns the tar's entries.
func readBack(t testing.TB, blob []byte) []entry {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	assert.NilError(t, err)
	assert.Equal(t, zr.Name, "")
	assert.Assert(t, zr.ModTime.Unix() <= 0, "gzip header has a time: %v", zr.ModTime)
	tr := tar.NewReader(zr)
	var out []entry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		assert.NilError(t, err)
		assert.Equal(t, h.Uid, 0)
		assert.Equal(t, h.Gid, 0)
		assert.Equal(t, h.Uname, "")
		assert.Equal(t, h.Gname, "")
		out = append(out, entry{Name: h.Name, Link: h.Linkname, Type: h.Typeflag, Mode: h.Mode, Size: h.Size})
	}
	return out
}

// sampleTree is a store path with the kinds of entries Nix stores.
func sampleTree(t *testing.T) string {
	long := strings.Repeat("long-name-", 20) // over tar's 100-byte name field
	dir := fs.NewDir(t, "abc123-sample",
		fs.WithDir("bin", fs.WithFile("tool", "#!/bin/sh\n", fs.WithMode(0o755))),
		fs.WithDir("share",
			fs.WithFile("data", "some data\n", fs.WithMode(0o644)),
			fs.WithFile("naïve-ünïcode", "x", fs.WithMode(0o600)),
			fs.WithFile(long, "y"),
		),
	)
	// Symlinks are kept as they are, never followed, even out of the store.
	assert.NilError(t, os.Symlink("/nix/store/other-glibc/lib", filepath.Join(dir.Path(), "lib")))
	assert.NilError(t, os.Symlink("/etc/passwd", filepath.Join(dir.Path(), "outside")))
	// A hard link is packed as a second regular file.
	assert.NilError(t, os.Link(filepath.Join(dir.Path(), "share", "data"), filepath.Join(dir.Path(), "share", "data-link")))
	return dir.Path()
}

func TestPackLayout(t *testing.T) {
	dir := sampleTree(t)
	blob, res, err := packDir(t, dir, Options{})
	assert.NilError(t, err)
	assert.Equal(t, res.Size, int64(len(blob)))

	base := "nix/store/" + filepath.Base(dir)
	long := strings.Repeat("long-name-", 20)
	assert.DeepEqual(t, readBack(t, blob), []entry{
		{Name: "nix/", Type: tar.TypeDir, Mode: 0o555},
		{Name: "nix/store/", Type: tar.TypeDir, Mode: 0o555},
		{Name: base + "/", Type: tar.TypeDir, Mode: 0o555},
		{Name: base + "/bin/", Type: tar.TypeDir, Mode: 0o555},
		{Name: base + "/bin/tool", Type: tar.TypeReg, Mode: 0o555, Size: 10},
		{Name: base + "/lib", Type: tar.TypeSymlink, Mode: 0o777, Link: "/nix/store/other-glibc/lib"},
		{Name: base + "/outside", Type: tar.TypeSymlink, Mode: 0o777, Link: "/etc/passwd"},
		{Name: base + "/share/", Type: tar.TypeDir, Mode: 0o555},
		{Name: base + "/share/data", Type: tar.TypeReg, Mode: 0o444, Size: 10},
		{Name: base + "/share/data-link", Type: tar.TypeReg, Mode: 0o444, Size: 10},
		{Name: base + "/share/" + long, Type: tar.TypeReg, Mode: 0o444, Size: 1},
		{Name: base + "/share/naïve-ünïcode", Type: tar.TypeReg, Mode: 0o444, Size: 1},
	})
}

func TestPackHashes(t *testing.T) {
	blob, res, err := packDir(t, sampleTree(t), Options{})
	assert.NilError(t, err)
	assert.Equal(t, res.Digest, sha256Of(blob))
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	assert.NilError(t, err)
	tarBytes, err := io.ReadAll(zr)
	assert.NilError(t, err)
	assert.Equal(t, res.DiffID, sha256Of(tarBytes))
}

func TestPackTimes(t *testing.T) {
	dir := sampleTree(t)
	read := func() time.Time {
		blob, _, err := packDir(t, dir, Options{})
		assert.NilError(t, err)
		zr, err := gzip.NewReader(bytes.NewReader(blob))
		assert.NilError(t, err)
		h, err := tar.NewReader(zr).Next()
		assert.NilError(t, err)
		return h.ModTime.UTC()
	}
	assert.Equal(t, read(), time.Unix(1, 0).UTC())
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	assert.Equal(t, read(), time.Unix(1700000000, 0).UTC())
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	_, err := newPacker(io.Discard, Options{})
	assert.ErrorContains(t, err, "SOURCE_DATE_EPOCH")
}

// TestPackReproducible: the bytes depend on the input alone, not on the
// concurrency or GOMAXPROCS, across several pgzip blocks.
func TestPackReproducible(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	data := make([]byte, 5<<20)
	for i := range data {
		data[i] = byte(rng.Intn(16)) // compressible, but not trivially
	}
	dir := fs.NewDir(t, "xyz-big", fs.WithFile("blob", string(data)), fs.WithFile("small", "s"))

	first, _, err := packDir(t, dir.Path(), Options{})
	assert.NilError(t, err)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2, 4} {
		runtime.GOMAXPROCS(procs)
		for _, c := range []int{0, 1, 3, 8} {
			got, _, err := packDir(t, dir.Path(), Options{Concurrency: c})
			assert.NilError(t, err)
			assert.Assert(t, bytes.Equal(got, first), "GOMAXPROCS=%d concurrency=%d changed the bytes", procs, c)
		}
	}
	other, _, err := packDir(t, dir.Path(), Options{Level: 6})
	assert.NilError(t, err)
	assert.Assert(t, !bytes.Equal(other, first), "the level does not change the output")
}

func TestPackRejectsSpecialFiles(t *testing.T) {
	dir := fs.NewDir(t, "abc-special", fs.WithFile("ok", "x"))
	fifo := filepath.Join(dir.Path(), "pipe")
	assert.NilError(t, syscall.Mkfifo(fifo, 0o644))
	_, _, err := packDir(t, dir.Path(), Options{})
	assert.ErrorContains(t, err, fifo+" is a fifo")
}

// A file that vanishes between the directory listing and its reading is
// an error naming it, never silently left out.
func TestPackVanishingFile(t *testing.T) {
	dir := fs.NewDir(t, "abc-vanish", fs.WithFile("a", "x"), fs.WithFile("b", "y"))
	victim := filepath.Join(dir.Path(), "b")
	defer func(open func(string) (*os.File, error)) { openFile = open }(openFile)
	openFile = func(name string) (*os.File, error) {
		if name == victim {
			os.Remove(name)
		}
		return os.Open(name)
	}
	_, _, err := packDir(t, dir.Path(), Options{})
	assert.ErrorContains(t, err, "read "+victim)
}

func TestPackPathsErrors(t *testing.T) {
	for _, tc := range []struct {
		paths []string
		want  string
	}{
		{[]string{"/etc"}, `"/etc" is not a top-level store path`},
		{[]string{"/nix/store/abc-x/bin"}, "not a top-level store path"},
		{[]string{"/nix/store/00000000000000000000000000000000-missing"}, "read /nix/store/00000000000000000000000000000000-missing"},
	} {
		_, err := PackPaths(io.Discard, tc.paths, Options{})
		assert.ErrorContains(t, err, tc.want)
	}
	_, err := PackPaths(io.Discard, nil, Options{Level: 12})
	assert.ErrorContains(t, err, "gzip level 12 is out of range")
}

func TestCustomisation(t *testing.T) {
	a := fs.NewDir(t, "aaa-pkg-a",
		fs.WithDir("bin", fs.WithFile("a", ""), fs.WithFile("shared", "")),
		fs.WithDir("share", fs.WithDir("man", fs.WithFile("a.1", ""))),
		fs.WithDir("nix-support", fs.WithFile("setup-hook", "")),
	)
	b := fs.NewDir(t, "bbb-pkg-b",
		fs.WithDir("bin", fs.WithFile("b", ""), fs.WithFile("shared", "")),
		fs.WithDir("lib", fs.WithFile("libb.so", "")),
		fs.WithDir("share", fs.WithDir("man", fs.WithFile("b.1", ""))),
	)
	ca := fs.NewDir(t, "ccc-nss-cacert", fs.WithDir("etc", fs.WithDir("ssl", fs.WithDir("certs", fs.WithFile("ca-bundle.crt", "PEM")))))
	var collisions []string
	c := Customisation{
		Packages: []string{a.Path(), b.Path(), ca.Path()},
		CACert:   ca.Path(),
		OnCollision: func(name, kept, dropped string) {
			collisions = append(collisions, name+": "+kept+" over "+dropped)
		},
	}
	var buf bytes.Buffer
	res, err := PackCustomisation(&buf, c, Options{})
	assert.NilError(t, err)
	assert.Equal(t, res.Digest, sha256Of(buf.Bytes()))

	A, B, CA := a.Path(), b.Path(), ca.Path()
	assert.DeepEqual(t, readBack(t, buf.Bytes()), []entry{
		{Name: "bin/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "bin/a", Type: tar.TypeSymlink, Mode: 0o777, Link: A + "/bin/a"},
		{Name: "bin/b", Type: tar.TypeSymlink, Mode: 0o777, Link: B + "/bin/b"},
		{Name: "bin/shared", Type: tar.TypeSymlink, Mode: 0o777, Link: A + "/bin/shared"},
		{Name: "etc/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "etc/ssl/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "etc/ssl/certs/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "etc/ssl/certs/ca-bundle.crt", Type: tar.TypeSymlink, Mode: 0o777, Link: CA + "/etc/ssl/certs/ca-bundle.crt"},
		{Name: "etc/ssl/certs/ca-certificates.crt", Type: tar.TypeSymlink, Mode: 0o777, Link: CA + "/etc/ssl/certs/ca-bundle.crt"},
		{Name: "lib", Type: tar.TypeSymlink, Mode: 0o777, Link: B + "/lib"},
		{Name: "share/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "share/man/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "share/man/a.1", Type: tar.TypeSymlink, Mode: 0o777, Link: A + "/share/man/a.1"},
		{Name: "share/man/b.1", Type: tar.TypeSymlink, Mode: 0o777, Link: B + "/share/man/b.1"},
		{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
	})
	assert.DeepEqual(t, collisions, []string{"bin/shared: " + A + "/bin/shared over " + B + "/bin/shared"})
}

func TestCustomisationMissingPackage(t *testing.T) {
	_, err := PackCustomisation(io.Discard, Customisation{Packages: []string{"/nix/store/nope-missing"}}, Options{})
	assert.Assert(t, is.ErrorContains(err, "read package /nix/store/nope-missing"))
}

// FuzzPackNames: any file name a store path can hold comes back out of the
// tar unchanged (long and non-ASCII names go through PAX).
func FuzzPackNames(f *testing.F) {
	for _, seed := range []string{"a", "naïve", strings.Repeat("x", 200), "日本語のファイル", "sp ace", "tab\tname", "new\nline", "-dash", ".hidden"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if name == "" || name == "." || name == ".." || len(name) > 255 || strings.ContainsAny(name, "/\x00") {
			return
		}
		dir := t.TempDir()
		root := filepath.Join(dir, "abc-fuzz")
		assert.NilError(t, os.Mkdir(root, 0o755))
		assert.NilError(t, os.WriteFile(filepath.Join(root, name), []byte("x"), 0o644))
		blob, _, err := packDir(t, root, Options{})
		assert.NilError(t, err)
		entries := readBack(t, blob)
		assert.Equal(t, len(entries), 4)
		assert.Equal(t, entries[3].Name, "nix/store/abc-fuzz/"+name)
	})
}
