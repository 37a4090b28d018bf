package archive

import (
	"bytes"
	"os"
	"path/filepath"
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
