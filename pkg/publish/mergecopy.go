package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nixery-action/nixery-action/internal/httpstatus"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// copyMerged puts the merged index (raw, im) into each of others, the
// repositories the tags name besides src, where the per-platform images
// are, in turn: first every platform manifest with its config and layers
// (mounted from the first repository of its registry that holds them, else
// read from src and uploaded: see NewRegistries) and the referrers of
// each, then the index under the target's tags. A failure stops at the
// repository it happened in, and says which tags moved: src's, and those
// of the repositories done before it. idx and refs are readSource's.
func copyMerged(ctx context.Context, src Target, idx *mergedIndex, refs Attachments, others []*Registry) ([]RepositoryResult, error) {
	results, err := writeEach(ctx, others, []Target{src}, idx, refs, "run the merge again")
	if err != nil {
		return nil, err
	}
	var out []RepositoryResult
	for _, res := range results {
		out = append(out, repositoryOf(res))
	}
	return out, nil
}

// readSource reads from src, bounded and checked against their digests,
// the platform manifests im lists and the referrers of each (found as a
// build finds them: the referrers API, or its fallback tag); their blobs
// are read only if a target needs them uploaded.
func readSource(ctx context.Context, src Target, l registry.Login, read *mergeRead, raw []byte, im *v1.IndexManifest, o Options) (*mergedIndex, Attachments, error) {
	rctx, cancel := context.WithTimeout(ctx, o.WithDefaults().RegistryTimeout)
	defer cancel()
	// The merge's reader (its token refreshed under each request's own
	// context); the blobs are read while the targets are written, after
	// rctx.
	rd := read.reader
	failed := func(what string, err error) error {
		e := l.ExplainDoing(err, src.Repo, "read "+what+" from "+src.Repo.String()+" to copy it")
		return &explained{e.Error(), e}
	}
	idx := &mergedIndex{raw: raw, im: im, images: map[v1.Hash]v1.Image{}}
	refs := Attachments{}
	for _, m := range im.Manifests {
		// Read by the merge already, checked against its digest.
		got := read.images[m.Digest]
		img, err := sourceImageOf(ctx, rd, src, got.raw, got.mt)
		if err != nil {
			return nil, nil, failed(fmt.Sprintf("the %s image %s", PlatformName(*m.Platform), m.Digest), err)
		}
		idx.images[m.Digest] = img
		listed, _, err := rd.Referrers(rctx, m.Digest)
		if err != nil {
			return nil, nil, failed(fmt.Sprintf("the referrers of the %s image %s", PlatformName(*m.Platform), m.Digest), err)
		}
		for _, r := range listed.Manifests {
			if !r.MediaType.IsImage() {
				if o.OnWarning != nil {
					o.OnWarning(fmt.Sprintf("warning: the referrer %s of %s in %s is a %q, which merge does not copy", r.Digest, m.Digest, src.Repo, r.MediaType))
				}
				continue
			}
			img, err := sourceManifest(rctx, ctx, rd, src, r.Digest)
			if err != nil {
				return nil, nil, failed(fmt.Sprintf("the referrer %s of the %s image %s", r.Digest, PlatformName(*m.Platform), m.Digest), err)
			}
			// A referrers list is no digest's: only a manifest whose own
			// subject is this image is copied as its referrer.
			if rm, err := img.Manifest(); err != nil || rm.Subject == nil || rm.Subject.Digest != m.Digest {
				if o.OnWarning != nil {
					o.OnWarning(fmt.Sprintf("warning: %s, listed in %s as a referrer of %s, does not name that image as its subject: not copied", r.Digest, src.Repo, m.Digest))
				}
				continue
			}
			refs[m.Digest] = append(refs[m.Digest], img)
		}
	}
	return idx, refs, nil
}

// sourceManifest reads the image manifest d from src within rctx; its
// blobs are read within ctx.
func sourceManifest(rctx, ctx context.Context, rd *registry.Reader, src Target, d v1.Hash) (v1.Image, error) {
	raw, mt, err := rd.Manifest(rctx, src.Repo.Digest(d.String()))
	if err != nil {
		return nil, err
	}
	return sourceImageOf(ctx, rd, src, raw, mt)
}

// sourceImageOf is the image manifest raw (of media type mt) of src; its
// blobs are read within ctx.
func sourceImageOf(ctx context.Context, rd *registry.Reader, src Target, raw []byte, mt types.MediaType) (v1.Image, error) {
	if err := sameKind(raw, mt); err != nil {
		return nil, err
	}
	if !mt.IsImage() {
		return nil, fmt.Errorf("a %q, not an image manifest", mt)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&sourceImage{ctx: ctx, rd: rd, repo: src.Repo, raw: raw, mt: mt, m: m})
}

// fullTags names tags[from:to] in full (REGISTRY/NAME:TAG).
func fullTags[T fmt.Stringer](tags []T, from, to int) []string {
	var out []string
	for _, t := range tags[from:to] {
		out = append(out, t.String())
	}
	return out
}

// mergedIndex is the merged index, its platform images read from the
// source repository.
type mergedIndex struct {
	raw    []byte
	im     *v1.IndexManifest
	images map[v1.Hash]v1.Image
}

func (x *mergedIndex) MediaType() (types.MediaType, error) { return types.OCIImageIndex, nil }
func (x *mergedIndex) Digest() (v1.Hash, error) {
	d, _, err := v1.SHA256(bytes.NewReader(x.raw))
	return d, err
}
func (x *mergedIndex) Size() (int64, error)                      { return int64(len(x.raw)), nil }
func (x *mergedIndex) IndexManifest() (*v1.IndexManifest, error) { return x.im.DeepCopy(), nil }
func (x *mergedIndex) RawManifest() ([]byte, error)              { return x.raw, nil }
func (x *mergedIndex) Image(d v1.Hash) (v1.Image, error) {
	if img, ok := x.images[d]; ok {
		return img, nil
	}
	return nil, fmt.Errorf("the merged index lists no image %s", d)
}
func (x *mergedIndex) ImageIndex(d v1.Hash) (v1.ImageIndex, error) {
	return nil, fmt.Errorf("the merged index lists no index %s", d)
}

// sourceImage is an image manifest of the source repository (as read,
// byte for byte), whose blobs are read from there when asked for.
type sourceImage struct {
	ctx  context.Context
	rd   *registry.Reader
	repo name.Repository
	raw  []byte
	mt   types.MediaType
	m    *v1.Manifest
}

func (s *sourceImage) RawConfigFile() ([]byte, error)      { return s.rd.RawConfig(s.ctx, s.m.Config) }
func (s *sourceImage) MediaType() (types.MediaType, error) { return s.mt, nil }
func (s *sourceImage) RawManifest() ([]byte, error)        { return s.raw, nil }
func (s *sourceImage) ConfigLayer() (v1.Layer, error) {
	return partial.CompressedToLayer(&sourceBlob{s.ctx, s.rd, s.repo, s.m.Config})
}
func (s *sourceImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == s.m.Config.Digest {
		return &sourceBlob{s.ctx, s.rd, s.repo, s.m.Config}, nil
	}
	for _, l := range s.m.Layers {
		if l.Digest == h {
			return &sourceBlob{s.ctx, s.rd, s.repo, l}, nil
		}
	}
	return nil, fmt.Errorf("image manifest lists no blob %s", h)
}

// sourceBlob is a config or layer blob of the source repository, read
// only when a target on another registry needs it uploaded: at most the
// size its descriptor gives, checked against its digest.
type sourceBlob struct {
	ctx  context.Context
	rd   *registry.Reader
	repo name.Repository
	desc v1.Descriptor
}

func (b *sourceBlob) Digest() (v1.Hash, error)            { return b.desc.Digest, nil }
func (b *sourceBlob) Size() (int64, error)                { return b.desc.Size, nil }
func (b *sourceBlob) MediaType() (types.MediaType, error) { return b.desc.MediaType, nil }
func (b *sourceBlob) Compressed() (io.ReadCloser, error) {
	fail := &sourceError{what: fmt.Sprintf("read the blob %s from %s", b.desc.Digest, b.repo)}
	resp, err := b.rd.Blob(b.ctx, http.MethodGet, b.desc.Digest, "")
	if err != nil {
		fail.err = err
		return nil, fail
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		fail.err = fmt.Errorf("the registry answered %s", httpstatus.Text(resp.StatusCode))
		return nil, fail
	}
	return &checkedBlob{rc: resp.Body, desc: b.desc, hash: sha256.New(), fail: fail}, nil
}

// sourceError is a failure to read a blob from the merge's source.
type sourceError struct {
	what string // "read the blob D from REPO"
	err  error
}

func (e *sourceError) Error() string { return e.what + ": " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// checkedBlob reads a blob's body, failing once it goes past the
// blob's size, and at its end unless it is the size and digest its
// descriptor gives: a target must not get other bytes than src holds.
type checkedBlob struct {
	rc   io.ReadCloser
	desc v1.Descriptor
	hash hash.Hash
	n    int64
	fail *sourceError // what was being read
}

func (c *checkedBlob) Read(p []byte) (int, error) {
	if left := c.desc.Size - c.n + 1; int64(len(p)) > left {
		p = p[:left] // one byte past the size tells "more"
	}
	n, err := c.rc.Read(p)
	c.n += int64(n)
	c.hash.Write(p[:n])
	switch {
	case c.n > c.desc.Size:
		return 0, c.failed(fmt.Errorf("the registry sent more than its %d bytes", c.desc.Size))
	case err == io.EOF && c.n != c.desc.Size:
		return n, c.failed(fmt.Errorf("the registry sent %d bytes, not %d", c.n, c.desc.Size))
	case err == io.EOF:
		if got := hex.EncodeToString(c.hash.Sum(nil)); c.desc.Digest.Algorithm != "sha256" || got != c.desc.Digest.Hex {
			return n, c.failed(fmt.Errorf("the registry sent content whose digest is sha256:%s", got))
		}
	case err != nil:
		return n, c.failed(err)
	}
	return n, err
}

func (c *checkedBlob) failed(err error) error {
	return &sourceError{what: c.fail.what, err: err}
}

func (c *checkedBlob) Close() error { return c.rc.Close() }
