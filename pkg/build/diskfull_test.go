package build

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/pkg/archive"
	"github.com/nixery-action/nixery-action/pkg/outfile"
	"github.com/nixery-action/nixery-action/pkg/publish"
)

// fullDisk fails every write as a full disk's file does.
type fullDisk struct{ name string }

func (d fullDisk) Write([]byte) (int, error) {
	return 0, &os.PathError{Op: "write", Path: d.name, Err: syscall.ENOSPC}
}

// A layer file that fills its disk names the disk (TMPDIR's, or the
// option's) and what to do, not the store path being packed.
func TestPackDiskFullNamesTempDir(t *testing.T) {
	full := content{pack: func(w io.Writer, o archive.Options) (archive.Blob, error) {
		_, err := fullDisk{w.(*os.File).Name()}.Write([]byte("x"))
		return archive.Blob{}, fmt.Errorf("write the layer (at /nix/store/abc-big/a.bin): %w", err)
	}}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	b := &builder{dir: t.TempDir()}
	_, err := b.pack(context.Background(), full, nil)
	assert.Error(t, err, "no space left on the disk holding "+tmp+": free space or point TMPDIR elsewhere")
	assert.ErrorIs(t, err, syscall.ENOSPC)

	opt := t.TempDir()
	b = &builder{dir: t.TempDir(), opts: Options{TempDir: opt}}
	_, err = b.pack(context.Background(), full, nil)
	assert.Error(t, err, "no space left on the disk holding "+opt+": free space or name another directory for layer blobs")
}

// A TMPDIR that is missing, or no directory, is named with what to do.
func TestTempDirUnusable(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nonexist")
	file := filepath.Join(t.TempDir(), "file")
	assert.NilError(t, os.WriteFile(file, nil, 0o644))
	for dir, why := range map[string]string{missing: "no such file or directory", file: "not a directory"} {
		t.Setenv("TMPDIR", dir)
		_, err := Build(context.Background(), fakeRequest(t, filepath.Join(t.TempDir(), "layout")), Options{Realiser: &fakeNix{}})
		assert.Error(t, err, "TMPDIR ("+dir+") is not a writable directory ("+why+"): set TMPDIR to one")
	}
	_, err := Build(context.Background(), fakeRequest(t, filepath.Join(t.TempDir(), "layout")), Options{Realiser: &fakeNix{}, TempDir: missing})
	assert.Error(t, err, "the directory for layer blobs ("+missing+") is not a writable directory (no such file or directory): name one")
}

// Referrers that cannot be written for a full disk say to free space; "run
// again to finish the push" is for registries, where it may help.
func TestAttachErrorAdvice(t *testing.T) {
	subject := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}
	dir := filepath.Join(t.TempDir(), "layout")
	layout := publish.NewLayout(publish.Output{Kind: publish.OCILayout, Path: dir}, publish.WriteOptions{})
	full := &publish.AttachError{Subject: subject, Err: &os.PathError{Op: "write", Path: dir + "/referrers/blobs/sha256/x", Err: syscall.ENOSPC}}
	// As publish.Write returns it.
	err := (&builder{req: Request{Destination: layout}}).attachError(fmt.Errorf("write oci:%s: %w", dir, outfile.NoSpace(full, dir, "write the image elsewhere")))
	assert.Check(t, is.Contains(err.Error(), "failed, so no tag was written: write oci:"+dir+": no space left on the disk holding "+dir+": free space or write the image elsewhere"))
	assert.Check(t, !strings.Contains(err.Error(), "finish the push"), err.Error())

	other := &publish.AttachError{Subject: subject, Err: &os.PathError{Op: "write", Path: dir, Err: syscall.EIO}}
	err = (&builder{req: Request{Destination: layout}}).attachError(other)
	assert.Check(t, !strings.Contains(err.Error(), "finish the push"), err.Error())
}
