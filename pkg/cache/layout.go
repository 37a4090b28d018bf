package cache

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/nixery-action/nixery-action/pkg/image"
)

// ReadLayout is the cache an OCI layout holds: the cache-keyed layers of
// every image its index.json names, each a blob file of the layout (the
// Blob's Path; its Repo is empty). A missing layout is an empty cache;
// images that are unreadable or inconsistent are left out, as in Read.
// It is for a layout this program writes, such as nixery serve's
// storage, not for one of unknown origin: its files are read whole.
func ReadLayout(dir string) (Cache, error) {
	c := Cache{}
	lp, err := layout.FromPath(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	top, err := lp.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := top.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		if !d.MediaType.IsIndex() {
			continue
		}
		idx, err := top.ImageIndex(d.Digest)
		if err != nil {
			continue
		}
		entries, err := indexEntries(idx)
		if err != nil {
			continue
		}
		for _, e := range entries {
			key := e.desc.Annotations[image.AnnotationLayerCache]
			path := filepath.Join(dir, "blobs", e.desc.Digest.Algorithm, e.desc.Digest.Hex)
			if _, ok := c[key]; ok || !sized(path, e.desc.Size) {
				continue
			}
			c[key] = Blob{Blob: image.Blob{
				Digest: e.desc.Digest, DiffID: e.diffID, Size: e.desc.Size,
				MediaType: e.desc.MediaType, Path: path,
			}}
		}
	}
	return c, nil
}

// sized tells a regular file of size bytes.
func sized(path string, size int64) bool {
	info, err := os.Lstat(path)
	return err == nil && info.Mode().IsRegular() && info.Size() == size
}
