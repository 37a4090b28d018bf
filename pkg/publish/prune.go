package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nixery-action/nixery-action/internal/limit"
	"github.com/nixery-action/nixery-action/pkg/cache"
)

// hexName is a blob file's name: a sha256 digest's hex.
var hexName = regexp.MustCompile(`^[0-9a-f]{64}$`)

// PruneLayout drops from the OCI layout dir's index.json every entry
// whose name (org.opencontainers.image.ref.name) keep refuses (entries
// without a name stay), then removes every blob that no remaining entry
// reaches, and the temporary files of killed writers, and says how many
// it removed. It holds the layout's lock, so
// it waits for writers and they for it; index.json is replaced whole
// before any blob goes, so a failure never leaves an entry without its
// blobs.
func PruneLayout(dir string, keep func(name string) bool) (int, error) {
	w, err := openLayoutWriter(context.Background(), dir, nil)
	if err != nil {
		return 0, err
	}
	defer w.close()
	im, err := w.index()
	if err != nil {
		return 0, err
	}
	var kept []v1.Descriptor
	for _, d := range im.Manifests {
		if name := d.Annotations[refNameAnnotation]; name == "" || keep(name) {
			kept = append(kept, d)
		}
	}
	reached := map[string]bool{}
	for _, d := range kept {
		if err := reach(dir, d, reached); err != nil {
			return 0, err
		}
	}
	if len(kept) != len(im.Manifests) {
		im.Manifests = kept
		if err := w.commit(im); err != nil {
			return 0, err
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, e := range entries {
		// Under the lock no writer is at work: a temporary file is what
		// a killed one left.
		stale := strings.HasPrefix(e.Name(), ".tmp-")
		if stale || hexName.MatchString(e.Name()) && !reached[e.Name()] {
			if err := os.Remove(filepath.Join(dir, "blobs", "sha256", e.Name())); err != nil {
				return removed, err
			}
			removed++
		}
	}
	return removed, nil
}

// reach marks d's blob and every blob it names: an index's manifests, a
// manifest's config and layers.
func reach(dir string, d v1.Descriptor, reached map[string]bool) error {
	if d.Digest.Algorithm != "sha256" || reached[d.Digest.Hex] {
		return nil
	}
	reached[d.Digest.Hex] = true
	if !d.MediaType.IsIndex() && !d.MediaType.IsImage() && d.MediaType != "" {
		return nil // a blob: it names nothing
	}
	f, err := os.Open(blobPath(dir, d.Digest.String()))
	if err != nil {
		return fmt.Errorf("prune %s: %w", dir, err)
	}
	defer f.Close()
	raw, err := limit.ReadAll(f, cache.MaxLayoutIndex)
	if err != nil {
		return fmt.Errorf("prune %s: read %s: %w", dir, d.Digest, err)
	}
	mt := d.MediaType
	if mt == "" {
		// A descriptor without a media type (other tools write them):
		// the manifest's own says what it is; what it cannot say, it
		// must not lose its blobs over.
		var probe struct {
			MediaType types.MediaType `json:"mediaType"`
			Manifests json.RawMessage `json:"manifests"`
			Layers    json.RawMessage `json:"layers"`
		}
		if err := json.Unmarshal(raw, &probe); err != nil {
			return fmt.Errorf("prune %s: %s is neither blob nor manifest it can tell: %w", dir, d.Digest, err)
		}
		switch {
		case probe.MediaType.IsIndex() || probe.Manifests != nil:
			mt = types.OCIImageIndex
		case probe.MediaType.IsImage() || probe.Layers != nil:
			mt = types.OCIManifestSchema1
		default:
			return fmt.Errorf("prune %s: cannot tell what %s is; nothing pruned", dir, d.Digest)
		}
	}
	if mt.IsIndex() {
		im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("prune %s: %s: %w", dir, d.Digest, err)
		}
		for _, m := range im.Manifests {
			if err := reach(dir, m, reached); err != nil {
				return err
			}
		}
		return nil
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("prune %s: %s: %w", dir, d.Digest, err)
	}
	for _, l := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		reached[l.Digest.Hex] = true
	}
	return nil
}
