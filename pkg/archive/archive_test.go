package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/fs"
)

// packDir packs a directory (or file) as if it were the store path
// nix/store/<its name>.
func packDir(t testing.TB, dir string, o Options) ([]byte, Blob, error) {
	t.Helper()
	return packTree(dir, o)
}

// packTree is packDir for goroutines other than the test's.
func packTree(dir string, o Options) ([]byte, Blob, error) {
	var buf bytes.Buffer
	p, err := newPacker(&buf, o)
	if err != nil {
		return nil, Blob{}, err
	}
	if err := p.dirs("nix/", "nix/store/"); err != nil {
		return nil, Blob{}, err
	}
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

// readHeaders checks the gzip header and what every tar header must hold
// (owners, one time for all, no PAX records but names), and returns them.
func readHeaders(t testing.TB, blob []byte) []*tar.Header {
	t.Helper()
	// RFC 1952: FLG at byte 3 (0x08 is FNAME), MTIME in bytes 4 to 7.
	assert.Assert(t, len(blob) > 10)
	assert.Equal(t, blob[3]&0x08, byte(0), "gzip header has a name")
	assert.DeepEqual(t, blob[4:8], []byte{0, 0, 0, 0})
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	assert.NilError(t, err)
	tr := tar.NewReader(zr)
	var out []*tar.Header
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
		assert.Assert(t, h.AccessTime.IsZero() && h.ChangeTime.IsZero(), "%s has an atime or ctime", h.Name)
		// hdrcharset=BINARY marks exactly the headers with non-UTF-8 names.
		binary := !utf8.ValidString(h.Name) || !utf8.ValidString(h.Linkname)
		for k, v := range h.PAXRecords {
			switch k {
			case "path", "linkpath":
			case "hdrcharset":
				assert.Assert(t, binary && v == "BINARY", "%q (link %q) has hdrcharset=%s", h.Name, h.Linkname, v)
			default:
				t.Fatalf("%q has the PAX record %q", h.Name, k)
			}
		}
		assert.Assert(t, !binary || h.PAXRecords["hdrcharset"] == "BINARY", "%q (link %q) has no hdrcharset=BINARY", h.Name, h.Linkname)
		if len(out) > 0 {
			assert.Assert(t, h.ModTime.Equal(out[0].ModTime), "%s: time %v, not %v", h.Name, h.ModTime, out[0].ModTime)
		}
		out = append(out, h)
	}
	return out
}

// readBack returns the tar's entries, checked by readHeaders.
func readBack(t testing.TB, blob []byte) []entry {
	t.Helper()
	var out []entry
	for _, h := range readHeaders(t, blob) {
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

// binaryTree is a store path whose names are not all UTF-8, as a Nix
// store path may hold: a Latin-1 file name, a directory with such a name
// and a file in it, and a symlink to such a name; beside them a UTF-8
// non-ASCII name and a long one, which stay without hdrcharset.
func binaryTree(t *testing.T) string {
	long := strings.Repeat("long-name-", 20)
	dir := fs.NewDir(t, "abc123-binary",
		fs.WithFile("caf\xe9", "latin-1"),
		fs.WithDir("d\xff", fs.WithFile("inner", "x")),
		fs.WithFile("naïve", "utf-8"),
		fs.WithFile(long, "y"),
	)
	assert.NilError(t, os.Symlink("/nix/store/t-\xff\xfe/bin", filepath.Join(dir.Path(), "link")))
	return dir.Path()
}

// TestPackBinaryNames: names that are not UTF-8 come back byte for byte,
// and only their headers carry hdrcharset=BINARY (readHeaders checks
// that of every test's headers), in bytes that do not change between runs.
func TestPackBinaryNames(t *testing.T) {
	dir := binaryTree(t)
	blob, _, err := packDir(t, dir, Options{})
	assert.NilError(t, err)
	base := "nix/store/" + filepath.Base(dir) + "/"
	var marked []string
	links := map[string]string{}
	for _, h := range readHeaders(t, blob) {
		if h.PAXRecords["hdrcharset"] != "" {
			marked = append(marked, h.Name)
		}
		links[h.Name] = h.Linkname
	}
	assert.DeepEqual(t, marked, []string{base + "caf\xe9", base + "d\xff/", base + "d\xff/inner", base + "link"})
	assert.Equal(t, links[base+"link"], "/nix/store/t-\xff\xfe/bin")
	_, hasUTF8 := links[base+"naïve"]
	assert.Assert(t, hasUTF8)

	again, _, err := packDir(t, dir, Options{})
	assert.NilError(t, err)
	assert.Assert(t, bytes.Equal(again, blob), "packing twice gave different bytes")
	tarBytes, _, err := packDir(t, dir, Options{Uncompressed: true})
	assert.NilError(t, err)
	assert.Equal(t, bytes.Count(tarBytes, []byte(" hdrcharset=BINARY\n")), 4)

	// The customisation layer's links to such names are marked too
	// (readHeaders fails on one that is not).
	a := fs.NewDir(t, "aaa-pkg", fs.WithDir("bin", fs.WithFile("x\xff", "")))
	b := fs.NewDir(t, "bbb-pkg", fs.WithDir("bin", fs.WithFile("y", "")))
	var buf bytes.Buffer
	_, err = PackCustomisation(&buf, Customisation{Packages: []string{a.Path(), b.Path()}}, Options{})
	assert.NilError(t, err)
	assert.DeepEqual(t, readBack(t, buf.Bytes()), []entry{
		{Name: "bin/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "bin/x\xff", Type: tar.TypeSymlink, Mode: 0o777, Link: a.Path() + "/bin/x\xff"},
		{Name: "bin/y", Type: tar.TypeSymlink, Mode: 0o777, Link: b.Path() + "/bin/y"},
		{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
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

// TestPackUncompressedHashes: the plain tar a cached layer is verified
// with is the compressed layer's tar, and its one hash is both digest and
// diffID.
func TestPackUncompressedHashes(t *testing.T) {
	dir := sampleTree(t)
	_, packed, err := packDir(t, dir, Options{})
	assert.NilError(t, err)
	tarBytes, plain, err := packDir(t, dir, Options{Uncompressed: true})
	assert.NilError(t, err)
	assert.Equal(t, plain.Digest, sha256Of(tarBytes))
	assert.Equal(t, plain.DiffID, plain.Digest)
	assert.Equal(t, plain.DiffID, packed.DiffID)
	assert.Equal(t, plain.Size, int64(len(tarBytes)))
}

// TestPackTimes: every entry is dated one second after the epoch, with
// any options, and SOURCE_DATE_EPOCH changes nothing (the image's
// creation time never reaches its layers).
func TestPackTimes(t *testing.T) {
	dir := sampleTree(t)
	// readHeaders checks that every entry has the first one's time.
	read := func(o Options) time.Time {
		blob, _, err := packDir(t, dir, o)
		assert.NilError(t, err)
		return readHeaders(t, blob)[0].ModTime.UTC()
	}
	assert.Equal(t, read(Options{}), time.Unix(1, 0).UTC())
	assert.Equal(t, read(Options{Level: 9, Concurrency: 1}), time.Unix(1, 0).UTC())
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	assert.Equal(t, read(Options{}), time.Unix(1, 0).UTC())
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

// Single-file and symlink store paths (writeText, a symlink to another
// path) are packed as they are.
func TestPackFileAndSymlinkPaths(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "abc-script.sh")
	assert.NilError(t, os.WriteFile(file, []byte("#!/bin/sh\n"), 0o755))
	link := filepath.Join(dir, "def-link")
	assert.NilError(t, os.Symlink("/nix/store/abc-script.sh", link))
	for _, tc := range []struct {
		path string
		want entry
	}{
		{file, entry{Name: "nix/store/abc-script.sh", Type: tar.TypeReg, Mode: 0o555, Size: 10}},
		{link, entry{Name: "nix/store/def-link", Type: tar.TypeSymlink, Mode: 0o777, Link: "/nix/store/abc-script.sh"}},
	} {
		blob, _, err := packDir(t, tc.path, Options{})
		assert.NilError(t, err)
		assert.DeepEqual(t, readBack(t, blob)[2:], []entry{tc.want})
	}
}

func TestPackRejectsSpecialFiles(t *testing.T) {
	for _, tc := range []struct {
		kind string
		make func(path string) error
	}{
		{"fifo", func(p string) error { return syscall.Mkfifo(p, 0o644) }},
		{"socket", func(p string) error {
			l, err := net.Listen("unix", p)
			if err == nil {
				t.Cleanup(func() { l.Close() })
			}
			return err
		}},
	} {
		dir := fs.NewDir(t, "abc-special", fs.WithFile("ok", "x"), fs.WithDir("sub"))
		special := filepath.Join(dir.Path(), "sub", "s")
		assert.NilError(t, tc.make(special))
		_, _, err := packDir(t, dir.Path(), Options{})
		assert.ErrorContains(t, err, special+" is a "+tc.kind+": store paths may hold only")
	}
	// Devices need root to make; their names come from the same switch.
	assert.Equal(t, kind(os.ModeDevice|os.ModeCharDevice), "character device")
	assert.Equal(t, kind(os.ModeDevice), "device")
}

// A file that vanishes between the directory listing and its reading is
// an error naming it, never silently left out.
func TestPackVanishingFile(t *testing.T) {
	dir := fs.NewDir(t, "abc-vanish", fs.WithFile("a", "x"), fs.WithFile("b", "y"))
	victim := filepath.Join(dir.Path(), "b")
	defer func(open func(*os.File, string) (*os.File, error)) { openFile = open }(openFile)
	openFile = func(dir *os.File, name string) (*os.File, error) {
		if filepath.Join(dir.Name(), name) == victim {
			os.Remove(victim)
		}
		return openAt(dir, name, 0)
	}
	_, _, err := packDir(t, dir.Path(), Options{})
	assert.ErrorContains(t, err, "read "+victim)
}

// A directory swapped for a symlink while the store path is packed is
// never read through: the link may lead to any directory of the host.
// Here a directory becomes a link to one holding a secret while a file
// listed before it is opened.
func TestPackNeverFollowsSwappedDirectories(t *testing.T) {
	for _, tc := range []struct{ swap, when string }{{"b", "a/file"}, {"b/c", "b/a"}} {
		host := fs.NewDir(t, "host", fs.WithFile("secret", "SECRET", fs.WithMode(0o600)))
		dir := fs.NewDir(t, "abc-x", fs.WithDir("a", fs.WithFile("file", "x")),
			fs.WithDir("b", fs.WithFile("a", "y"), fs.WithDir("c", fs.WithFile("inner", "z"))))
		victim := filepath.Join(dir.Path(), tc.swap)
		defer func(open func(*os.File, string) (*os.File, error)) { openFile = open }(openFile)
		openFile = func(d *os.File, name string) (*os.File, error) {
			if filepath.Join(d.Name(), name) == filepath.Join(dir.Path(), tc.when) {
				assert.NilError(t, os.Rename(victim, filepath.Join(t.TempDir(), "moved")))
				assert.NilError(t, os.Symlink(host.Path(), victim))
			}
			return openAt(d, name, 0)
		}
		_, _, err := packDir(t, dir.Path(), Options{})
		assert.Error(t, err, victim+" changed while it was packed (it is no directory now)", tc.swap)
	}
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
	for _, p := range []string{"/nix/store/", "/nix/store/.", "/nix/store/..", "nix/store/abc-x", "/nix/store//abc-x"} {
		_, err := PackPaths(io.Discard, []string{p}, Options{})
		assert.ErrorContains(t, err, "is not a top-level store path", p)
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

func TestCustomisationErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "abc-file")
	assert.NilError(t, os.WriteFile(file, nil, 0o644))
	for _, tc := range []struct {
		pkg, want string
	}{
		{"/nix/store/nope-missing", "read package /nix/store/nope-missing"},
		{file, "package " + file + " is a single file, not a directory"},
	} {
		_, err := PackCustomisation(io.Discard, Customisation{Packages: []string{tc.pkg}}, Options{})
		assert.Assert(t, is.ErrorContains(err, tc.want))
	}
}

// Nothing requested still gives /tmp; a package's own tmp or CA file
// gives way to the layer's.
func TestCustomisationForcedEntries(t *testing.T) {
	a := fs.NewDir(t, "aaa-pkg",
		fs.WithFile("tmp", "not a directory"),
		fs.WithDir("etc", fs.WithDir("ssl", fs.WithDir("certs", fs.WithFile("ca-certificates.crt", "stale")))),
	)
	var buf bytes.Buffer
	_, err := PackCustomisation(&buf, Customisation{}, Options{})
	assert.NilError(t, err)
	assert.DeepEqual(t, readBack(t, buf.Bytes()), []entry{{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777}})

	buf.Reset()
	_, err = PackCustomisation(&buf, Customisation{Packages: []string{a.Path()}, CACert: "/nix/store/xyz-nss-cacert"}, Options{})
	assert.NilError(t, err)
	assert.DeepEqual(t, readBack(t, buf.Bytes()), []entry{
		{Name: "etc/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "etc/ssl/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "etc/ssl/certs/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "etc/ssl/certs/ca-certificates.crt", Type: tar.TypeSymlink, Mode: 0o777, Link: "/nix/store/xyz-nss-cacert/etc/ssl/certs/ca-bundle.crt"},
		{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
	})
}

// FuzzPackNames: any path a store path can hold comes back out of the tar
// unchanged, with its parent directories: long names and paths (split
// into USTAR's prefix or put in PAX records) and non-ASCII ones. The
// fuzzed string is a relative path; its last element is a file.
func FuzzPackNames(f *testing.F) {
	for _, seed := range []string{
		"a", "naïve", strings.Repeat("x", 200), "日本語のファイル", "sp ace", "tab\tname", "new\nline", "-dash", ".hidden",
		strings.Repeat("d/", 60) + "f", strings.Repeat("é", 100) + "/" + strings.Repeat("ü", 100), "\xff\xfe-not-utf8",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, rel string) {
		parts := strings.Split(rel, "/")
		for _, p := range parts {
			if p == "" || p == "." || p == ".." || len(p) > 255 || strings.Contains(p, "\x00") {
				return // not a name a file system takes
			}
			if strings.HasPrefix(p, ".wh.") {
				return // a whiteout's name, refused
			}
		}
		root := filepath.Join(t.TempDir(), "abc-fuzz")
		file := filepath.Join(root, rel)
		if len(file) >= 4096 {
			return
		}
		assert.NilError(t, os.MkdirAll(filepath.Dir(file), 0o755))
		assert.NilError(t, os.WriteFile(file, []byte("x"), 0o644))

		want := []string{"nix/", "nix/store/", "nix/store/abc-fuzz/"}
		for i := range parts[:len(parts)-1] {
			want = append(want, "nix/store/abc-fuzz/"+strings.Join(parts[:i+1], "/")+"/")
		}
		want = append(want, "nix/store/abc-fuzz/"+rel)
		blob, _, err := packDir(t, root, Options{})
		assert.NilError(t, err)
		var got []string
		for _, e := range readBack(t, blob) {
			got = append(got, e.Name)
		}
		assert.DeepEqual(t, got, want)
	})
}

// Names starting with .wh. are whiteouts to every OCI reader: unpacked,
// .wh.NAME deletes NAME and .wh..wh..opq empties its directory. A store
// path holding one is refused, naming it, never packed to vanish.
func TestPackRefusesWhiteoutNames(t *testing.T) {
	for _, rel := range []string{"share/.wh.gone", ".wh..wh..opq", ".wh.nix", "lib/.wh.d/x"} {
		dir := fs.NewDir(t, "abc-whiteout", fs.WithFile("ok", "x"))
		file := filepath.Join(dir.Path(), rel)
		assert.NilError(t, os.MkdirAll(filepath.Dir(file), 0o755))
		assert.NilError(t, os.WriteFile(file, nil, 0o644))
		_, _, err := packDir(t, dir.Path(), Options{})
		// The first .wh. name on the way is the one named.
		i := strings.Index(rel, ".wh.")
		entry := filepath.Join(dir.Path(), rel[:i]+strings.SplitN(rel[i:], "/", 2)[0])
		assert.Error(t, err, "store path "+dir.Path()+" holds "+entry+": OCI layers cannot hold names starting with .wh. (readers take them for whiteouts)", rel)
	}
}

// The customisation layer is the image's top layer: a package's top-level
// .wh..wh..opq or .wh.nix there would hide the whole store below it.
func TestCustomisationRefusesWhiteoutNames(t *testing.T) {
	for _, tc := range []struct {
		a, b []fs.PathOp
		bad  string // relative to the package named
		pkg  string // "a" or "b"
	}{
		{a: []fs.PathOp{fs.WithFile(".wh..wh..opq", "")}, bad: ".wh..wh..opq", pkg: "a"},
		{a: []fs.PathOp{fs.WithDir(".wh.nix")}, bad: ".wh.nix", pkg: "a"},
		// Joined directories: the entries of each package's share/.
		{
			a:   []fs.PathOp{fs.WithDir("share", fs.WithFile("a", ""))},
			b:   []fs.PathOp{fs.WithDir("share", fs.WithFile(".wh.a", ""))},
			bad: "share/.wh.a", pkg: "b",
		},
		{
			a:   []fs.PathOp{fs.WithDir("share", fs.WithFile(".wh.b", ""))},
			b:   []fs.PathOp{fs.WithDir("share", fs.WithFile("b", ""))},
			bad: "share/.wh.b", pkg: "a",
		},
	} {
		store := t.TempDir()
		pa, pb := filepath.Join(store, "aaa-a"), filepath.Join(store, "bbb-b")
		for p, ops := range map[string][]fs.PathOp{pa: tc.a, pb: tc.b} {
			assert.NilError(t, os.Mkdir(p, 0o755))
			fs.Apply(t, fs.DirFromPath(t, p), ops...)
		}
		pkg := map[string]string{"a": pa, "b": pb}[tc.pkg]
		_, err := PackCustomisation(io.Discard, Customisation{Packages: []string{pa, pb}}, Options{})
		assert.Error(t, err, "store path "+pkg+" holds "+pkg+"/"+tc.bad+": OCI layers cannot hold names starting with .wh. (readers take them for whiteouts)", tc.bad)
	}
	_, err := PackCustomisation(io.Discard, Customisation{Dirs: []Dir{{Path: "home/.wh..wh..opq", Mode: 0o755}}}, Options{})
	assert.Error(t, err, "image path /home/.wh..wh..opq: OCI layers cannot hold names starting with .wh. (readers take them for whiteouts)")
}
