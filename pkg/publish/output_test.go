package publish

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestWriteLayout(t *testing.T) {
	idx := testIndex(t, "layout", arm64, amd64)
	digest, _ := idx.Digest()
	dir := filepath.Join(t.TempDir(), "image")
	res, err := Write(context.Background(), Output{Kind: OCILayout, Path: dir}, idx, WriteOptions{Tags: []string{"v1", "latest"}})
	assert.NilError(t, err)
	assert.Equal(t, res.Image, "oci:"+dir)
	assert.Equal(t, res.Digest, digest.String())
	assert.DeepEqual(t, res.Tags, []string{"v1", "latest"})
	for _, m := range res.Manifests {
		for _, l := range m.Layers {
			assert.Check(t, l.Uploaded)
		}
	}

	// index.json names the index once per tag; it reads back whole.
	lp, err := layout.FromPath(dir)
	assert.NilError(t, err)
	top, err := lp.ImageIndex()
	assert.NilError(t, err)
	im, err := top.IndexManifest()
	assert.NilError(t, err)
	assert.Equal(t, len(im.Manifests), 2)
	var names []string
	for _, d := range im.Manifests {
		assert.Equal(t, d.Digest, digest)
		names = append(names, d.Annotations[refNameAnnotation])
	}
	assert.DeepEqual(t, names, []string{"v1", "latest"})
	child, err := top.ImageIndex(digest)
	assert.NilError(t, err)
	assert.NilError(t, validate.Index(child))

	// The same inputs in a new directory give the same files.
	other := filepath.Join(t.TempDir(), "image")
	_, err = Write(context.Background(), Output{Kind: OCILayout, Path: other}, testIndex(t, "layout", amd64, arm64), WriteOptions{Tags: []string{"v1", "latest"}})
	assert.NilError(t, err)
	assert.DeepEqual(t, snapshot(t, other), snapshot(t, dir))

	// Writing again into the same layout replaces the tag, adds no blob.
	before := snapshot(t, dir)
	again, err := Write(context.Background(), Output{Kind: OCILayout, Path: dir}, idx, WriteOptions{Tags: []string{"v1"}})
	assert.NilError(t, err)
	for _, m := range again.Manifests {
		for _, l := range m.Layers {
			assert.Check(t, !l.Uploaded, "layer %s written again", l.Digest)
		}
	}
	assert.DeepEqual(t, snapshot(t, dir), before)

	// Without tags the index is listed once, however often it is written.
	untagged := filepath.Join(t.TempDir(), "untagged")
	for i := 0; i < 2; i++ {
		_, err = Write(context.Background(), Output{Kind: OCILayout, Path: untagged}, idx, WriteOptions{})
		assert.NilError(t, err)
	}
	lp, err = layout.FromPath(untagged)
	assert.NilError(t, err)
	top, _ = lp.ImageIndex()
	im, _ = top.IndexManifest()
	assert.Equal(t, len(im.Manifests), 1)
}

func TestWriteLayoutRefusesOtherDirectory(t *testing.T) {
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644))
	before := snapshot(t, dir)
	_, err := Write(context.Background(), Output{Kind: OCILayout, Path: dir}, testIndex(t, "x", amd64), WriteOptions{})
	assert.ErrorContains(t, err, "is a directory with files but no OCI layout")
	assert.DeepEqual(t, snapshot(t, dir), before)
}

func TestWriteDockerArchive(t *testing.T) {
	idx := testIndex(t, "archive", amd64)
	file := filepath.Join(t.TempDir(), "img.tar")
	res, err := Write(context.Background(), Output{Kind: DockerArchive, Path: file}, idx,
		WriteOptions{Repository: "example.com/hello", Tags: []string{"v1", "latest"}})
	assert.NilError(t, err)
	assert.Equal(t, res.Image, "docker:"+file)
	assert.Equal(t, len(res.Manifests), 1)
	assert.Equal(t, res.Digest, res.Manifests[0].Digest)

	// go-containerregistry's reader finds the image under each tag.
	for _, tag := range []string{"v1", "latest"} {
		ref, err := name.NewTag("example.com/hello:" + tag)
		assert.NilError(t, err)
		img, err := tarball.ImageFromPath(file, &ref)
		assert.NilError(t, err)
		assert.NilError(t, validate.Image(img))
		cf, err := img.ConfigFile()
		assert.NilError(t, err)
		assert.Equal(t, cf.Architecture, "amd64")
		m, _ := img.Manifest()
		assert.Equal(t, len(m.Layers), 3)
	}

	// Byte for byte the same a second time, tags and all.
	first, err := os.ReadFile(file)
	assert.NilError(t, err)
	_, err = Write(context.Background(), Output{Kind: DockerArchive, Path: file}, testIndex(t, "archive", amd64),
		WriteOptions{Repository: "example.com/hello", Tags: []string{"v1", "latest"}})
	assert.NilError(t, err)
	second, err := os.ReadFile(file)
	assert.NilError(t, err)
	assert.Assert(t, string(first) == string(second), "archives differ")

	// No temporary file is left beside it.
	entries, err := os.ReadDir(filepath.Dir(file))
	assert.NilError(t, err)
	assert.Equal(t, len(entries), 1)
}

func TestWriteDockerArchiveErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Write(context.Background(), Output{Kind: DockerArchive, Path: filepath.Join(dir, "two.tar")},
		testIndex(t, "two", amd64, arm64), WriteOptions{})
	assert.ErrorContains(t, err, "a docker archive holds one platform, but 2 were built (linux/amd64, linux/arm64): build one of them")
	assert.Assert(t, is.Contains(err.Error(), "write an OCI layout for all"))

	_, err = Write(context.Background(), Output{Kind: DockerArchive, Path: filepath.Join(dir, "bad.tar")},
		testIndex(t, "one", amd64), WriteOptions{Repository: "Bad Name"})
	assert.ErrorContains(t, err, `bad image name "Bad Name:latest"`)

	_, err = Write(context.Background(), Output{Kind: DockerArchive, Path: filepath.Join(dir, "tag.tar")},
		testIndex(t, "one", amd64), WriteOptions{Tags: []string{"no good"}})
	assert.ErrorContains(t, err, `bad tag "no good"`)

	_, err = Write(context.Background(), Output{Kind: DockerArchive, Path: filepath.Join(dir, "missing", "x.tar")},
		testIndex(t, "one", amd64), WriteOptions{})
	assert.ErrorContains(t, err, "write docker:"+filepath.Join(dir, "missing", "x.tar"))

	entries, _ := os.ReadDir(dir)
	assert.Equal(t, len(entries), 0, "files left behind: %v", entries)
	assert.Assert(t, !strings.Contains(err.Error(), "\n"))
}

// WriteOptions are checked before the build: a repository names a docker
// archive's image and is refused for an OCI layout, which cannot use it.
func TestWriteOptionsValidate(t *testing.T) {
	assert.NilError(t, WriteOptions{Tags: []string{"v1"}}.Validate(OCILayout))
	assert.NilError(t, WriteOptions{Tags: []string{"v1"}, Repository: "ghcr.io/me/tools"}.Validate(DockerArchive))
	assert.NilError(t, WriteOptions{}.Validate(DockerArchive))
	assert.ErrorContains(t, WriteOptions{Repository: "ghcr.io/me/tools"}.Validate(OCILayout), "would go unused")
	assert.ErrorContains(t, WriteOptions{Repository: "Not Valid"}.Validate(DockerArchive), `bad image name "Not Valid:latest"`)
	assert.ErrorContains(t, WriteOptions{Tags: []string{".bad"}}.Validate(DockerArchive), `bad tag ".bad"`)
	// podman load refuses the name of such an archive.
	assert.Error(t, WriteOptions{Repository: "https://ghcr.io/me/tools"}.Validate(DockerArchive), `--image "https://ghcr.io/me/tools": give REGISTRY/NAME, not a URL: drop "https://"`)
}

// An OCI layout's files are 0644 and its directories 0755, as other tools
// write them, also after writing into it again.
func TestWriteLayoutModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "image")
	for _, tags := range [][]string{{"v1"}, {"v2"}} {
		_, err := Write(context.Background(), Output{Kind: OCILayout, Path: dir}, testIndex(t, "modes", amd64), WriteOptions{Tags: tags})
		assert.NilError(t, err)
		seen := map[string]bool{}
		assert.NilError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			assert.NilError(t, err)
			rel, _ := filepath.Rel(dir, p)
			want := fs.FileMode(0o644)
			if d.IsDir() {
				want = 0o755 | fs.ModeDir
			}
			assert.Check(t, is.Equal(info.Mode(), want), rel)
			seen[filepath.Base(rel)] = true
			return nil
		}))
		for _, f := range []string{"index.json", "oci-layout", "blobs", "sha256"} {
			assert.Check(t, seen[f], "no %s", f)
		}
	}
}

// A layout or archive whose directory is missing is found before any
// work, as the build would only find it when writing: the layout's own
// directory is made, never its parents.
func TestLayoutCheckMissingDirectory(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	for _, out := range []Output{
		{OCILayout, filepath.Join(missing, "image")},
		{DockerArchive, filepath.Join(missing, "image.tar")},
	} {
		err := NewLayout(out, WriteOptions{}).Check(context.Background())
		assert.Error(t, err, out.String()+": the directory "+missing+" does not exist: create it first")
	}
	_, err := os.Stat(missing)
	assert.Assert(t, os.IsNotExist(err), "the check made %s", missing)
}
