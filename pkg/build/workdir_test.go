package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/pkg/account"
	"github.com/nixery-action/nixery-action/pkg/archive"
	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/nix"
)

// userWorkdir asks for the user's working directory, but not for the
// root, the store, the home, or without a working directory.
func TestUserWorkdir(t *testing.T) {
	u := &account.User{Name: "app", UID: 1000, Group: "staff", GID: 50}
	for _, dir := range []string{"", "/", "/home/app", "/nix", "/nix/store", "/nix/store/abc-x/share"} {
		_, ok := userWorkdir(u, dir)
		assert.Check(t, !ok, "workdir %q", dir)
	}
	for dir, want := range map[string]string{"/work": "work", "/srv/app": "srv/app", "/nixos": "nixos", "/tmp": "tmp", "/home/app/src": "home/app/src"} {
		d, ok := userWorkdir(u, dir)
		assert.Check(t, ok, "workdir %q", dir)
		assert.Check(t, is.DeepEqual(d, archive.Dir{Path: want, Mode: 0o755, UID: 1000, GID: 50, IfMissing: true}), "workdir %q", dir)
	}
}

// The customisation layer holds the user's working directory, owned by
// the user; without --user, or with the working directory a package
// provides, the layer is as it is without --workdir.
func TestCustomisationWorkdirOwner(t *testing.T) {
	pkg := filepath.Join(t.TempDir(), "store", "aaa-app-1.0")
	assert.NilError(t, os.MkdirAll(filepath.Join(pkg, "share", "app"), 0o755))
	res := &nix.Result{Packages: []nix.Package{{Attr: "app", Outputs: map[string]string{"out": pkg}}}}
	u := &account.User{Name: "app", UID: 1000, Group: "app", GID: 1000}
	pack := func(u *account.User, workdir string) (string, map[string]string) {
		t.Helper()
		c := customisationContent(res, u, workdir, io.Discard, "linux/amd64")
		var buf bytes.Buffer
		_, err := c.pack(&buf, archive.Options{})
		assert.NilError(t, err)
		zr, err := gzip.NewReader(&buf)
		assert.NilError(t, err)
		dirs := map[string]string{}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			assert.NilError(t, err)
			if h.Typeflag == tar.TypeDir {
				dirs[h.Name] = fmt.Sprintf("%d:%d %o", h.Uid, h.Gid, h.Mode)
			}
		}
		return c.key, dirs
	}

	_, dirs := pack(u, "/srv/work")
	assert.Check(t, is.Equal(dirs["srv/"], "0:0 755"))
	assert.Check(t, is.Equal(dirs["srv/work/"], "1000:1000 755"))
	assert.Check(t, is.Equal(dirs["home/app/"], "1000:1000 755"))

	rootKey, rootDirs := pack(nil, "")
	key, dirs := pack(nil, "/srv/work")
	assert.Check(t, is.Equal(key, rootKey))
	assert.Check(t, is.DeepEqual(dirs, rootDirs))

	_, userDirs := pack(u, "")
	for _, dir := range []string{"/", "/tmp", "/home/app", "/share/app", "/nix/store"} {
		_, dirs := pack(u, dir)
		assert.Check(t, is.DeepEqual(dirs, userDirs), "workdir %s", dir)
	}
}

// Running as a user sets its numeric user, HOME and working directory
// (its home), but not a HOME or working directory given, / included.
func TestAsUser(t *testing.T) {
	u := &account.User{Name: "app", UID: 1000, Group: "app", GID: 1000}
	o := asUser(image.Options{Env: []string{"PATH=/bin"}}, u)
	assert.Check(t, is.Equal(o.User, "1000:1000"))
	assert.Check(t, is.DeepEqual(o.Env, []string{"PATH=/bin", "HOME=/home/app"}))
	assert.Check(t, is.Equal(o.WorkingDir, "/home/app"))

	given := image.Options{Env: []string{"HOME=/data"}, WorkingDir: "/"}
	o = asUser(given, u)
	assert.Check(t, is.DeepEqual(o.Env, []string{"HOME=/data"}))
	assert.Check(t, is.Equal(o.WorkingDir, "/"))
}
