package cache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/nixery-action/nixery-action/internal/limit"
	"github.com/nixery-action/nixery-action/pkg/image"
)

// ReadLayout is the cache an OCI layout holds: the cache-keyed layers of
// every image its index.json names, each a blob file of the layout (the
// Blob's Path; its Repo is empty). A missing layout is an empty cache;
// images that are unreadable or inconsistent are left out, as in Read.
// The layout may be one a user names (the CLI's --output oci:DIR): its
// index.json, indexes, manifests and configs are read up to a bound
// each, and one larger is no cache (an error, or an image left out).
func ReadLayout(dir string) (Cache, error) {
	return new(LayoutReader).Read(dir)
}

// LayoutReader reads layouts as ReadLayout does, and remembers the layers
// of each image index it read: an index's digest fixes them, so reading
// a layout again parses only the indexes added since (nixery serve reads
// its storage before every build). It remembers the indexes of the last
// layout read, no more. It is safe for concurrent use; a nil
// LayoutReader remembers nothing.
type LayoutReader struct {
	mu   sync.Mutex
	seen map[v1.Hash][]recordEntry
}

// Read is ReadLayout, with what r remembers.
func (r *LayoutReader) Read(dir string) (Cache, error) {
	c := Cache{}
	im, err := ReadLayoutIndex(dir)
	if err != nil {
		return nil, err
	}
	lp := layout.Path(dir)
	var known map[v1.Hash][]recordEntry
	if r != nil {
		r.mu.Lock()
		known = r.seen
		r.mu.Unlock()
	}
	seen := map[v1.Hash][]recordEntry{}
	for _, d := range im.Manifests {
		if !d.MediaType.IsIndex() {
			continue
		}
		entries, ok := known[d.Digest]
		if !ok {
			if entries, err = layoutEntries(lp, d.Digest); err != nil {
				continue
			}
		}
		seen[d.Digest] = entries
		for _, e := range entries {
			key := e.desc.Annotations[image.AnnotationLayerCache]
			path := filepath.Join(dir, "blobs", e.desc.Digest.Algorithm, e.desc.Digest.Hex)
			if _, ok := c[key]; ok || !IsBlobFile(path, e.desc.Size) {
				continue
			}
			c[key] = Blob{Blob: image.Blob{
				Digest: e.desc.Digest, DiffID: e.diffID, Size: e.desc.Size,
				MediaType: e.desc.MediaType, Path: path,
			}}
		}
	}
	if r != nil {
		r.mu.Lock()
		r.seen = seen
		r.mu.Unlock()
	}
	return c, nil
}

// layoutEntries lists the cache-keyed layers of the layout's image index
// h. Each index, manifest and config is read from its blob file:
// go-containerregistry's lookup of an index that index.json names parses
// all of index.json again, which made reading a layout quadratic in the
// images it holds (3.7 s for 1,000 images, BenchmarkReadLayout).
func layoutEntries(lp layout.Path, h v1.Hash) ([]recordEntry, error) {
	idx, err := parseBlob(lp, h, v1.ParseIndexManifest)
	if err != nil {
		return nil, err
	}
	return manifestEntries(idx, func(d v1.Descriptor) (*v1.Manifest, []v1.Hash, error) {
		if !d.MediaType.IsImage() {
			return nil, nil, fmt.Errorf("%s is a %s, not an image", d.Digest, d.MediaType)
		}
		m, err := parseBlob(lp, d.Digest, v1.ParseManifest)
		if err != nil {
			return nil, nil, err
		}
		cfg, err := parseBlob(lp, m.Config.Digest, v1.ParseConfigFile)
		if err != nil {
			return nil, nil, err
		}
		return m, cfg.RootFS.DiffIDs, nil
	})
}

// MaxLayoutIndex bounds the index.json read from an existing layout.
const MaxLayoutIndex = 16 << 20

// maxLayoutBlob bounds each index, manifest and config blob ReadLayout
// reads (a descriptor may name a layer, or a link to a device).
const maxLayoutBlob = 4 << 20

// ReadLayoutIndex reads the index.json of the OCI layout dir, at most
// MaxLayoutIndex bytes of it; a layout without one has an empty index.
func ReadLayoutIndex(dir string) (*v1.IndexManifest, error) {
	file := filepath.Join(dir, "index.json")
	info, err := os.Stat(file)
	if errors.Is(err, fs.ErrNotExist) {
		return &v1.IndexManifest{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json"}, nil
	}
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		// A FIFO would block the read for good.
		return nil, fmt.Errorf("index.json of %s is no regular file", dir)
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := limit.ReadAll(f, MaxLayoutIndex)
	if err != nil {
		return nil, fmt.Errorf("index.json of %s: %w", dir, err)
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(raw, &im); err != nil {
		return nil, fmt.Errorf("index.json of %s is not an OCI index: %v", dir, err)
	}
	return &im, nil
}

// parseBlob parses the layout's blob h, at most maxLayoutBlob bytes.
func parseBlob[T any](lp layout.Path, h v1.Hash, parse func(io.Reader) (T, error)) (T, error) {
	var none T
	rc, err := lp.Blob(h)
	if err != nil {
		return none, err
	}
	defer rc.Close()
	raw, err := limit.ReadAll(rc, maxLayoutBlob)
	if err != nil {
		return none, fmt.Errorf("blob %s: %w", h, err)
	}
	return parse(bytes.NewReader(raw))
}

// IsBlobFile tells a regular file of size bytes (no symlink followed).
func IsBlobFile(path string, size int64) bool {
	info, err := os.Lstat(path)
	return err == nil && info.Mode().IsRegular() && info.Size() == size
}
