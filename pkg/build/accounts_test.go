package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/pkg/account"
	"github.com/nixery-action/nixery-action/pkg/archive"
	"github.com/nixery-action/nixery-action/pkg/nix"
)

// Every image names root and nobody and has root's home, so that `id -un`
// answers as root. A package's own /etc/passwd (a fake NSS) is kept
// without --user; with --user, the user's files replace it.
func TestCustomisationAccounts(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store")
	app := filepath.Join(store, "aaa-app-1.0")
	assert.NilError(t, os.MkdirAll(filepath.Join(app, "bin"), 0o755))
	nss := filepath.Join(store, "bbb-fake-nss")
	assert.NilError(t, os.MkdirAll(filepath.Join(nss, "etc"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(nss, "etc", "passwd"), []byte("root:x:0:0::/:/bin/sh\n"), 0o644))
	appPkg := nix.Package{Attr: "app", Outputs: map[string]string{"out": app}}
	nssPkg := nix.Package{Attr: "fakeNss", Outputs: map[string]string{"out": nss}}
	type got struct {
		header *tar.Header
		data   string
	}
	pack := func(u *account.User, pkgs ...nix.Package) map[string]got {
		t.Helper()
		c := customisationContent(&nix.Result{Packages: pkgs}, u, "", io.Discard, "linux/amd64")
		var buf bytes.Buffer
		_, err := c.pack(&buf, archive.Options{})
		assert.NilError(t, err)
		zr, err := gzip.NewReader(&buf)
		assert.NilError(t, err)
		out := map[string]got{}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return out
			}
			assert.NilError(t, err)
			data, err := io.ReadAll(tr)
			assert.NilError(t, err)
			out[h.Name] = got{h, string(data)}
		}
	}

	root := pack(nil, appPkg)
	assert.Check(t, is.Equal(root["etc/passwd"].data, string(account.Passwd(nil))))
	assert.Check(t, is.Contains(root["etc/passwd"].data, "root:x:0:0:root:/root:"))
	assert.Check(t, is.Contains(root["etc/passwd"].data, "nobody:x:65534:65534:"))
	assert.Check(t, is.Equal(root["etc/group"].data, string(account.GroupFile(nil))))
	assert.Check(t, is.Equal(root["etc/passwd"].header.Mode, int64(0o644)))
	assert.Check(t, is.Equal(root["root/"].header.Typeflag, byte(tar.TypeDir)))
	assert.Check(t, is.Equal(root["root/"].header.Mode, int64(0o700)))
	assert.Check(t, is.Equal(root["root/"].header.Uid, 0))

	withNSS := pack(nil, appPkg, nssPkg)
	assert.Check(t, is.Equal(withNSS["etc/passwd"].header.Linkname, filepath.Join(nss, "etc", "passwd")))
	assert.Check(t, is.Equal(withNSS["etc/group"].data, string(account.GroupFile(nil))))

	u := &account.User{Name: "app", UID: 1000, Group: "app", GID: 1000}
	user := pack(u, appPkg, nssPkg)
	assert.Check(t, is.Equal(user["etc/passwd"].data, string(account.Passwd(u))))
	assert.Check(t, is.Contains(user["etc/passwd"].data, "app:x:1000:1000:app:/home/app:"))
	assert.Check(t, is.Equal(user["root/"].header.Mode, int64(0o700)))
}
