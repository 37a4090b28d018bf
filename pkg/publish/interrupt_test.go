package publish

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/pkg/image"
)

// cancellingReader cancels a context on its first read, as a signal in
// the middle of copying a layer would.
type cancellingReader struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (r cancellingReader) Read(p []byte) (int, error) {
	r.cancel()
	return r.ReadCloser.Read(p)
}

// interruptedIndex is an index of one image whose layer cancels the
// returned context while it is being read.
func interruptedIndex(t *testing.T, salt string) (*image.Index, context.Context) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l := realLayer(t, t.TempDir(), map[string]string{"nix/store/ccc-big/data": "big " + salt}, "big")
	path := l.Path
	l.Path, l.Open = "", func() (io.ReadCloser, error) {
		f, err := os.Open(path)
		return cancellingReader{f, cancel}, err
	}
	img, err := image.NewImage(amd64, []image.Blob{l}, image.Options{Cmd: []string{"big"}})
	assert.NilError(t, err)
	idx, err := image.NewIndex([]*image.Image{img}, nil)
	assert.NilError(t, err)
	return idx, ctx
}

// An interrupted write into an existing layout leaves every file of it
// as it was, and adds none.
func TestWriteLayoutInterruptedLeavesItAsItWas(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "image")
	_, err := Write(context.Background(), Output{Kind: OCILayout, Path: dir}, testIndex(t, "before", amd64), WriteOptions{Tags: []string{"v1"}})
	assert.NilError(t, err)
	before := snapshot(t, dir)

	idx, ctx := interruptedIndex(t, "layout")
	_, err = Write(ctx, Output{Kind: OCILayout, Path: dir}, idx, WriteOptions{Tags: []string{"v1"}})
	assert.ErrorIs(t, err, context.Canceled)
	assert.DeepEqual(t, snapshot(t, dir), before)

	// The same through the destination.
	idx, ctx = interruptedIndex(t, "layout2")
	_, err = NewLayout(Output{Kind: OCILayout, Path: dir}, WriteOptions{Tags: []string{"v1"}}).Write(ctx, idx, nil)
	assert.ErrorIs(t, err, context.Canceled)
	assert.DeepEqual(t, snapshot(t, dir), before)
}

// An interrupted write of a new layout leaves no directory behind.
func TestWriteNewLayoutInterrupted(t *testing.T) {
	parent := t.TempDir()
	idx, ctx := interruptedIndex(t, "new")
	_, err := Write(ctx, Output{Kind: OCILayout, Path: filepath.Join(parent, "image")}, idx, WriteOptions{})
	assert.ErrorIs(t, err, context.Canceled)
	entries, err := os.ReadDir(parent)
	assert.NilError(t, err)
	assert.Equal(t, len(entries), 0, "left behind: %v", entries)
}

// An interrupted docker archive leaves no file, whole or partial.
func TestWriteDockerArchiveInterrupted(t *testing.T) {
	dir := t.TempDir()
	idx, ctx := interruptedIndex(t, "archive")
	_, err := Write(ctx, Output{Kind: DockerArchive, Path: filepath.Join(dir, "img.tar")}, idx, WriteOptions{})
	assert.ErrorIs(t, err, context.Canceled)
	entries, err := os.ReadDir(dir)
	assert.NilError(t, err)
	assert.Equal(t, len(entries), 0, "left behind: %v", entries)
}

// cancellingImage cancels a context once its manifest is read, as a
// signal while a referrer is written would.
type cancellingImage struct {
	v1.Image
	cancel context.CancelFunc
}

func (c cancellingImage) RawManifest() ([]byte, error) {
	c.cancel()
	return c.Image.RawManifest()
}

// A layout whose referrers are interrupted, after its index was written,
// is put back as it was too: no image without its documents.
func TestLayoutReferrersInterrupted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "image")
	_, err := Write(context.Background(), Output{Kind: OCILayout, Path: dir}, testIndex(t, "before", amd64), WriteOptions{Tags: []string{"v1"}})
	assert.NilError(t, err)
	before := snapshot(t, dir)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	idx := testIndex(t, "after", amd64)
	subject, imgs, _ := referrers(t, idx)
	refs := Attachments{subject.Digest: {cancellingImage{imgs[0], cancel}, imgs[1]}}
	_, err = NewLayout(Output{Kind: OCILayout, Path: dir}, WriteOptions{Tags: []string{"v1"}}).Write(ctx, idx, refs)
	assert.ErrorIs(t, err, context.Canceled)
	var aerr *AttachError
	assert.Assert(t, errors.As(err, &aerr), "%v", err)
	assert.DeepEqual(t, snapshot(t, dir), before)
}

// When DIR's own index.json cannot be written after the referrers layout
// was (here: an index.json that is no index), the referrers layout goes
// back to what it was: no referrers of an image DIR does not name.
func TestLayoutReferrersRevertedWhenIndexFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "image")
	_, err := Write(context.Background(), Output{Kind: OCILayout, Path: dir}, testIndex(t, "before", amd64), WriteOptions{Tags: []string{"v1"}})
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "index.json"), []byte("not an index"), 0o644))
	before := snapshot(t, dir)

	idx := testIndex(t, "after", amd64)
	subject, imgs, _ := referrers(t, idx)
	_, err = NewLayout(Output{Kind: OCILayout, Path: dir}, WriteOptions{Tags: []string{"v1"}}).Write(context.Background(), idx, Attachments{subject.Digest: imgs})
	assert.ErrorContains(t, err, "is not an OCI index")
	assert.DeepEqual(t, snapshot(t, dir), before)
}
