//go:build linux

package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/pkg/image"
)

// mountTmpfs mounts a tmpfs on a new temporary directory: another file
// system than the tests' temporary directories. It fails where it cannot
// (not root), rather than skip the test.
func mountTmpfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	assert.NilError(t, syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64m"), "mount a tmpfs on %s (the test runs as root)", dir)
	t.Cleanup(func() { syscall.Unmount(dir, 0) }) // before TempDir's removal
	return dir
}

// A layer's blob file on the layout's file system is linked into the
// layout, one on another (a tmpfs) copied; either way the layout's blobs
// hold their digests' bytes, with mode 0644 as every blob the layout
// writes, and no temporary file is left in it.
func TestWriteLayoutLinksOrCopies(t *testing.T) {
	for name, src := range map[string]string{"linked": t.TempDir(), "copied": mountTmpfs(t)} {
		t.Run(name, func(t *testing.T) {
			var blobs []image.Blob
			for _, content := range []string{"one " + name, "two " + name} {
				b := realLayer(t, src, map[string]string{"nix/store/x/" + content: content})
				assert.NilError(t, os.Chmod(b.Path, 0o600)) // as a build's temporary files are
				blobs = append(blobs, b)
			}
			img, err := image.NewImage(amd64, blobs, image.Options{})
			assert.NilError(t, err)
			idx, err := image.NewIndex([]*image.Image{img}, nil)
			assert.NilError(t, err)
			dir := filepath.Join(t.TempDir(), "oci")
			_, err = Write(context.Background(), Output{Kind: OCILayout, Path: dir}, idx, WriteOptions{Tags: []string{"v1"}})
			assert.NilError(t, err)

			for _, b := range blobs {
				file := blobPath(dir, b.Digest.String())
				assert.Equal(t, fileDigest(t, file), b.Digest)
				info, err := os.Stat(file)
				assert.NilError(t, err)
				assert.Equal(t, info.Mode(), os.FileMode(0o644))
				srcInfo, err := os.Stat(b.Path)
				assert.NilError(t, err)
				assert.Equal(t, os.SameFile(info, srcInfo), name == "linked")
			}
			entries, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
			assert.NilError(t, err)
			for _, e := range entries {
				assert.Check(t, !strings.HasPrefix(e.Name(), "."), "left in the layout: %s", e.Name())
			}
		})
	}
}

func fileDigest(t *testing.T, path string) v1.Hash {
	t.Helper()
	data, err := os.ReadFile(path)
	assert.NilError(t, err)
	sum := sha256.Sum256(data)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// commit fsyncs what is not on disk already, once: a layer linked from a
// build's file the build synced, or copied (synced as copied), is not
// synced again; one linked from a file not known synced is, and so is
// every small blob (config, manifest, index) and the blobs directory.
func TestWriteLayoutSyncsOnce(t *testing.T) {
	for _, tc := range []struct {
		name       string
		src        string
		synced     bool
		layerSyncs int // commit's fsyncs of each layer blob
	}{
		{name: "linked-synced", src: t.TempDir(), synced: true, layerSyncs: 0},
		{name: "linked-unsynced", src: t.TempDir(), synced: false, layerSyncs: 1},
		{name: "copied", src: mountTmpfs(t), synced: false, layerSyncs: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			syncs := map[string]int{}
			orig := syncFile
			syncFile = func(path string) error { syncs[path]++; return orig(path) }
			t.Cleanup(func() { syncFile = orig })

			var blobs []image.Blob
			layers := map[string]bool{}
			for _, content := range []string{"one " + tc.name, "two " + tc.name} {
				b := realLayer(t, tc.src, map[string]string{"nix/store/x/" + content: content})
				b.Synced = tc.synced
				blobs = append(blobs, b)
				layers[b.Digest.Hex] = true
			}
			img, err := image.NewImage(amd64, blobs, image.Options{})
			assert.NilError(t, err)
			idx, err := image.NewIndex([]*image.Image{img}, nil)
			assert.NilError(t, err)
			dir := filepath.Join(t.TempDir(), "oci")
			_, err = Write(context.Background(), Output{Kind: OCILayout, Path: dir}, idx, WriteOptions{Tags: []string{"v1"}})
			assert.NilError(t, err)

			entries, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
			assert.NilError(t, err)
			assert.Equal(t, len(entries), 5) // 2 layers, config, manifest, index
			for _, e := range entries {
				want := 1
				if layers[e.Name()] {
					want = tc.layerSyncs
				}
				assert.Check(t, syncs[filepath.Join(dir, "blobs", "sha256", e.Name())] == want, "%s synced %d times, want %d", e.Name(), syncs[filepath.Join(dir, "blobs", "sha256", e.Name())], want)
			}
			assert.Equal(t, syncs[filepath.Join(dir, "blobs", "sha256")], 1)
		})
	}
}
