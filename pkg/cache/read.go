// Package cache reads the layer cache that earlier pushes left in
// registries: the layers of cache images and of a repository's cache
// record (record.go), by cache key, and fetches a cached blob with every
// hash checked (fetch.go). A cache can make a build faster, never
// different: whatever is missing, slow or inconsistent is left out.
package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nixery-action/nixery-action/internal/parallel"
	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// MaxManifests is how many platform manifests of one cached index are
// read; real indexes have a handful.
const MaxManifests = 64

// Cache is what earlier pushes left in registries: layers by cache key
// (image.AnnotationLayerCache), with the hashes a manifest needs and a way
// to read the blob if it has to be copied elsewhere.
type Cache map[string]Blob

// Blob is a layer blob a registry holds, and the repository it is
// in. Its hashes are the registry's word: check them before use.
type Blob struct {
	image.Blob
	Repo name.Repository
}

// Where names where the blob is, for messages: its repository, or the
// file of a layout's (ReadLayout's, which have no repository).
func (b Blob) Where() string {
	if r := b.Repo.String(); r != "" {
		return r
	}
	return b.Path
}

// Read reads the images at refs (tags or digests, indexes or single
// images) and returns the annotated layers whose blobs are still there,
// and how reading each image went. Anything missing, unreadable or
// inconsistent is left out, and said in a *Warning; a cache can only
// make a build faster, never different, since a layer's cache key covers
// everything its bytes depend on.
func Read(ctx context.Context, refs []name.Reference, o registry.Options) (Cache, []Report) {
	o = o.WithDefaults()
	c := Cache{}
	reads := make([]Report, 0, len(refs))
	// The whole read is bounded: a cache can only make a build faster,
	// so a slow registry is given up on and its layers packed.
	outer := ctx // the cached layers' blobs are read later, under it
	ctx, cancel := context.WithTimeoutCause(ctx, o.RegistryTimeout, errNotInTime)
	defer cancel()
	for _, ref := range refs {
		n, err := c.read(ctx, outer, ref, o)
		read := Report{Ref: ref, Layers: n}
		if err != nil {
			read.Err = cacheWarning(ctx, ref, err, o)
		}
		reads = append(reads, read)
	}
	return c, reads
}

// Report is how reading one cache image went: the layers it gave, or
// Err, a *Warning, when it gave none.
type Report struct {
	Ref    name.Reference
	Layers int
	Err    error
}

// String is the line a build logs about the read.
func (r Report) String() string {
	if r.Err != nil {
		return r.Err.Error()
	}
	return fmt.Sprintf("cache %s: %d layers", r.Ref, r.Layers)
}

// Warning is why a cache image gave no layers: the build goes on
// and packs them. Its text is one line; Unwrap gives the cause.
type Warning struct {
	Ref   name.Reference
	msg   string
	cause error
}

func (w *Warning) Error() string { return w.msg }
func (w *Warning) Unwrap() error { return w.cause }

// errNotInTime is why Read's context ends when RegistryTimeout passes,
// which its caller's cancelling (another failure, a signal) is not.
var errNotInTime = errors.New("cache not read in time")

// cacheWarning says in one line why reading ref failed with err; ctx is
// the whole read's, whose cause tells whether the read ran out of time or
// the build stopped it.
func cacheWarning(ctx context.Context, ref name.Reference, err error, o registry.Options) *Warning {
	var msg string
	switch {
	case registry.IsNotFound(err):
		msg = fmt.Sprintf("cache %s: nothing there yet", ref)
	case registry.IsTimeout(err) && ctx.Err() == nil:
		msg = fmt.Sprintf("cache %s: the registry did not answer within %s; its layers will be packed", ref, o.RequestTimeout)
	case errors.Is(context.Cause(ctx), errNotInTime):
		msg = fmt.Sprintf("cache %s: not read within %s; its layers will be packed", ref, o.RegistryTimeout)
	case ctx.Err() != nil:
		msg = fmt.Sprintf("cache %s: not read, the build stopped first", ref)
	default:
		msg = fmt.Sprintf("cache %s: %s; its layers will be packed", ref, registry.OneLine(err))
	}
	return &Warning{Ref: ref, msg: msg, cause: err}
}

func (c Cache) read(ctx, outer context.Context, ref name.Reference, o registry.Options) (_ int, err error) {
	l, err := o.Credentials.Login(ctx, ref.Context(), false)
	if err != nil {
		return 0, err
	}
	// A registry may echo what it was sent: the warning made of an error
	// never shows the login.
	defer func() { err = l.Redact(err) }()
	// One authenticated client for every request: each new one would
	// first ping the registry again.
	r, err := registry.NewReader(ctx, ref.Context(), l, o)
	if err != nil {
		return 0, err
	}
	raw, mt, err := r.Manifest(ctx, ref)
	if err != nil {
		return 0, err
	}
	var children []v1.Descriptor // platform manifests still to read
	var manifests []*v1.Manifest
	switch {
	case mt.IsIndex():
		im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return 0, fmt.Errorf("read index: %w", err)
		}
		// One pass over the list; only image entries, and only so many.
		for _, m := range im.Manifests {
			if m.MediaType.IsImage() && len(children) < MaxManifests {
				children = append(children, m)
			}
		}
	case mt.IsImage():
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil {
			return 0, fmt.Errorf("read manifest: %w", err)
		}
		manifests = append(manifests, m)
	default:
		return 0, fmt.Errorf("%q is neither an image nor an index", mt)
	}
	if len(children) > 0 {
		manifests = make([]*v1.Manifest, len(children))
		err = parallel.Do(ctx, registry.ReadJobs, len(children), func(ctx context.Context, i int) error {
			raw, _, err := r.Manifest(ctx, ref.Context().Digest(children[i].Digest.String()))
			if err != nil {
				return err
			}
			manifests[i], err = v1.ParseManifest(bytes.NewReader(raw))
			return err
		})
		if err != nil {
			return 0, err
		}
	}
	// Each image's diffIDs are in its config; a cache record's are on
	// its layers.
	diffIDs := make([][]v1.Hash, len(manifests))
	err = parallel.Do(ctx, registry.ReadJobs, len(manifests), func(ctx context.Context, i int) error {
		if ids, ok := recordDiffIDs(manifests[i]); ok {
			diffIDs[i] = ids
			return nil
		}
		cfg, err := r.Config(ctx, manifests[i].Config)
		if err == nil {
			diffIDs[i] = cfg.RootFS.DiffIDs
		}
		return err
	})
	if err != nil {
		return 0, err
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
	for n, m := range manifests {
		ids := diffIDs[n]
		if len(ids) != len(m.Layers) {
			continue // inconsistent: trust none of it
		}
		for i, d := range m.Layers {
			key := d.Annotations[image.AnnotationLayerCache]
			if key == "" || !image.IsLayerMediaType(d.MediaType) || d.Size <= 0 || ids[i] == (v1.Hash{}) || seen[key] || c[key].Size > 0 {
				continue
			}
			seen[key] = true
			cands = append(cands, candidate{key, d, ids[i]})
		}
	}
	present := make([]bool, len(cands))
	err = parallel.Do(ctx, registry.ReadJobs, len(cands), func(ctx context.Context, i int) error {
		// A blob the registry gave no clear answer about is packed
		// again, like a missing one: the cache only saves work.
		present[i], _ = r.BlobHeld(ctx, cands[i].desc)
		return nil
	})
	if err != nil {
		return 0, err
	}
	ropts := o.Remote(outer, l, 1)
	found := 0
	for i, cd := range cands {
		if !present[i] {
			continue
		}
		blobRef := ref.Context().Digest(cd.desc.Digest.String())
		c[cd.key] = Blob{Repo: ref.Context(), Blob: image.Blob{
			Digest: cd.desc.Digest, DiffID: cd.diffID, Size: cd.desc.Size, MediaType: cd.desc.MediaType,
			Open: func() (io.ReadCloser, error) {
				layer, err := remote.Layer(blobRef, ropts...)
				if err != nil {
					return nil, l.Redact(err)
				}
				rc, err := layer.Compressed()
				return rc, l.Redact(err)
			},
		}}
		found++
	}
	return found, nil
}

// ParseRef checks a --cache-from reference: a tag or digest of an
// image or index in a registry.
func ParseRef(s string, insecure bool) (name.Reference, error) {
	if err := registry.CheckRefForm("--cache-from", s); err != nil {
		return nil, err
	}
	ref, err := name.ParseReference(s, registry.NameOptions(s, insecure)...)
	if err != nil {
		return nil, fmt.Errorf("cache image %q is not an image reference (REGISTRY/NAME:TAG or @DIGEST): %v", s, err)
	}
	return ref, nil
}
