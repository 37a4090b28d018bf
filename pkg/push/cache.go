package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/nixery-action/nixery-action/pkg/image"
)

// Cache is what earlier pushes left in registries: layers by cache key
// (image.AnnotationLayerCache), with the hashes a manifest needs and a way
// to read the blob if it has to be copied elsewhere.
type Cache map[string]CachedLayer

// CachedLayer is a layer blob a registry holds, and the repository it is
// in. Its hashes are the registry's word: check them before use.
type CachedLayer struct {
	image.Layer
	Repo name.Repository
}

// ReadCache reads the images at refs (tags or digests, indexes or single
// images) and returns the annotated layers whose blobs are still there.
// Anything missing, unreadable or inconsistent is left out, and said in
// the returned notes; a cache can only make a build faster, never
// different, since a layer's cache key covers everything its bytes
// depend on.
func ReadCache(ctx context.Context, refs []name.Reference, o Options) (Cache, []string) {
	c := Cache{}
	var notes []string
	for _, ref := range refs {
		n, err := c.read(ctx, ref, o)
		var terr *transport.Error
		if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
			notes = append(notes, fmt.Sprintf("cache %s: nothing there yet", ref))
			continue
		}
		if err != nil {
			notes = append(notes, fmt.Sprintf("cache %s: %v; its layers will be packed", ref, oneLineErr(err)))
			continue
		}
		notes = append(notes, fmt.Sprintf("cache %s: %d layers", ref, n))
	}
	return c, notes
}

func oneLineErr(err error) string {
	if terr, ok := err.(*transport.Error); ok {
		return oneLine(terr)
	}
	return err.Error()
}

func (c Cache) read(ctx context.Context, ref name.Reference, o Options) (int, error) {
	l, err := o.Credentials.resolve(ref.Context())
	if err != nil {
		return 0, err
	}
	// One authenticated transport for every request: each new one would
	// first ping the registry again.
	client, err := blobClient(ctx, ref.Context(), l, o)
	if err != nil {
		return 0, err
	}
	ropts := append(o.remoteOptions(ctx, l), remote.WithTransport(client.Transport))
	desc, err := remote.Get(ref, ropts...)
	if err != nil {
		return 0, err
	}
	var images []v1.Image
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return 0, err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return 0, err
		}
		for _, m := range im.Manifests {
			if !m.MediaType.IsImage() {
				continue
			}
			img, err := idx.Image(m.Digest)
			if err != nil {
				return 0, err
			}
			images = append(images, img)
		}
	case desc.MediaType.IsImage():
		img, err := desc.Image()
		if err != nil {
			return 0, err
		}
		images = append(images, img)
	default:
		return 0, fmt.Errorf("%s is neither an image nor an index", desc.MediaType)
	}

	// Every annotated layer of a consistent image is a candidate; the
	// registry is asked, a few at a time, whether each blob is still there.
	type candidate struct {
		key    string
		desc   v1.Descriptor
		diffID v1.Hash
	}
	var cands []candidate
	seen := map[string]bool{}
	// Each platform's manifest and config, fetched at the same time.
	manifests := make([]*v1.Manifest, len(images))
	configs := make([]*v1.ConfigFile, len(images))
	err = parallel(ctx, len(images)+1, len(images), func(ctx context.Context, i int) error {
		var err error
		if manifests[i], err = images[i].Manifest(); err != nil {
			return err
		}
		configs[i], err = images[i].ConfigFile()
		return err
	})
	if err != nil {
		return 0, err
	}
	for n := range images {
		m, cfg := manifests[n], configs[n]
		if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
			continue // inconsistent: trust none of it
		}
		for i, d := range m.Layers {
			key := d.Annotations[image.AnnotationLayerCache]
			if key == "" || d.MediaType != image.LayerMediaType || d.Size <= 0 || seen[key] || c[key].Size > 0 {
				continue
			}
			seen[key] = true
			cands = append(cands, candidate{key, d, cfg.RootFS.DiffIDs[i]})
		}
	}
	present := make([]bool, len(cands))
	err = parallel(ctx, 16, len(cands), func(ctx context.Context, i int) error {
		present[i] = blobExists(ctx, client, ref.Context(), cands[i].desc)
		return nil
	})
	if err != nil {
		return 0, err
	}
	found := 0
	for i, cd := range cands {
		if !present[i] {
			continue
		}
		blobRef := ref.Context().Digest(cd.desc.Digest.String())
		c[cd.key] = CachedLayer{Repo: ref.Context(), Layer: image.Layer{
			Digest: cd.desc.Digest, DiffID: cd.diffID, Size: cd.desc.Size,
			Open: func() (io.ReadCloser, error) {
				layer, err := remote.Layer(blobRef, ropts...)
				if err != nil {
					return nil, err
				}
				return layer.Compressed()
			},
		}}
		found++
	}
	return found, nil
}

// blobClient is an HTTP client authorised to read repo's blobs.
func blobClient(ctx context.Context, repo name.Repository, l login, o Options) (*http.Client, error) {
	tr := o.Transport
	if tr == nil {
		tr = remote.DefaultTransport
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, l.auth, tr, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: rt}, nil
}

// blobExists asks the registry whether it still has a blob of the
// descriptor's size.
func blobExists(ctx context.Context, client *http.Client, repo name.Repository, d v1.Descriptor) bool {
	u := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", repo.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), d.Digest)
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK && (resp.ContentLength < 0 || resp.ContentLength == d.Size)
}

// Keys lists the cache's keys, sorted.
func (c Cache) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ParseCacheRef checks a --cache-from reference: a tag or digest of an
// image or index in a registry.
func ParseCacheRef(s string, insecure bool) (name.Reference, error) {
	opts := []name.Option{name.StrictValidation}
	if insecure || isLoopback(registryOf(s)) {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(s, opts...)
	if err != nil {
		return nil, fmt.Errorf("--cache-from %q is not an image reference (REGISTRY/NAME:TAG or @DIGEST): %v", s, err)
	}
	return ref, nil
}
