package image

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
)

// Annotations set on each layer descriptor of a manifest, so that a reader
// of the image (or of a push result) can tell which packages a layer holds.
const (
	// AnnotationLayerKey is the layer's key in the layer plan.
	AnnotationLayerKey = "org.nixery-action.layer.key"
	// AnnotationLayerPackages lists the packages of the layer's store
	// paths, sorted and separated by commas.
	AnnotationLayerPackages = "org.nixery-action.layer.packages"
	// AnnotationLayerCache is the layer's cache key: the same key means
	// the same blob, so a later build can reuse it without packing.
	AnnotationLayerCache = "org.nixery-action.layer.cache"
)

// LayerMediaType is the media type of gzip layers, the default.
const LayerMediaType = types.OCILayer

// LayerMediaTypeZstd is the media type of zstd layers (--compression zstd).
const LayerMediaTypeZstd = types.OCILayerZStd

// IsLayerMediaType tells whether mt is the media type of a layer this
// package describes: gzip or zstd.
func IsLayerMediaType(mt types.MediaType) bool {
	return mt == LayerMediaType || mt == LayerMediaTypeZstd
}

// Blob describes a compressed layer blob that was packed and hashed
// elsewhere. The hashes are trusted: the blob is only read when a writer
// copies it.
type Blob struct {
	Digest v1.Hash // sha256 of the compressed blob
	DiffID v1.Hash // sha256 of the uncompressed tar
	Size   int64   // bytes of the compressed blob
	// MediaType is LayerMediaType (gzip, also for "") or
	// LayerMediaTypeZstd.
	MediaType types.MediaType

	// Path is the blob file; Open, when set, is used instead.
	Path string
	Open func() (io.ReadCloser, error)
	// Synced tells that Path's bytes are on disk already (fsynced where
	// the file was made): a layout linking the file need not sync it.
	Synced bool

	Key      string   // the layer plan's key, "" for none
	CacheKey string   // the key a later build finds the blob by, "" for none
	Packages []string // package names of the layer's store paths
}

// Layer is b as a v1.Layer that reads the blob file (or Open) only when
// its bytes are copied.
func (b Blob) Layer() v1.Layer { return blobLayer{b} }

// check reports what is missing from b.
func (b Blob) check() error {
	switch {
	case b.Digest.Algorithm != "sha256" || len(b.Digest.Hex) != 64:
		return fmt.Errorf("layer digest %q is not a sha256 digest", b.Digest)
	case b.DiffID.Algorithm != "sha256" || len(b.DiffID.Hex) != 64:
		return fmt.Errorf("layer %s: diffID %q is not a sha256 digest", b.Digest, b.DiffID)
	case b.Size <= 0:
		return fmt.Errorf("layer %s: size %d is not positive", b.Digest, b.Size)
	case b.Path == "" && b.Open == nil:
		return fmt.Errorf("layer %s: no blob file to read it from", b.Digest)
	case !IsLayerMediaType(b.mediaType()):
		return fmt.Errorf("layer %s: media type %q is neither gzip's nor zstd's", b.Digest, b.MediaType)
	}
	return nil
}

// mediaType is b's media type, gzip's when unset.
func (b Blob) mediaType() types.MediaType {
	if b.MediaType == "" {
		return LayerMediaType
	}
	return b.MediaType
}

// annotations returns the descriptor annotations of b, or nil for none.
func (b Blob) annotations() map[string]string {
	a := map[string]string{}
	if b.Key != "" {
		a[AnnotationLayerKey] = b.Key
	}
	if b.CacheKey != "" {
		a[AnnotationLayerCache] = b.CacheKey
	}
	if pkgs := sortedUnique(b.Packages); len(pkgs) > 0 {
		a[AnnotationLayerPackages] = strings.Join(pkgs, ",")
	}
	if len(a) == 0 {
		return nil
	}
	return a
}

// LayerPackages reads the package list back from a layer descriptor's
// annotations; nil when it has none.
func LayerPackages(annotations map[string]string) []string {
	s := annotations[AnnotationLayerPackages]
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func sortedUnique(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s != "" {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	uniq := out[:0]
	for i, s := range out {
		if i == 0 || s != out[i-1] {
			uniq = append(uniq, s)
		}
	}
	return uniq
}

// blobLayer is a v1.Layer over a Layer. Its hashes come from the Layer, so
// building manifests and checking a registry for the blob never read it.
type blobLayer struct{ l Blob }

var _ v1.Layer = blobLayer{}

func (b blobLayer) Digest() (v1.Hash, error)            { return b.l.Digest, nil }
func (b blobLayer) DiffID() (v1.Hash, error)            { return b.l.DiffID, nil }
func (b blobLayer) Size() (int64, error)                { return b.l.Size, nil }
func (b blobLayer) MediaType() (types.MediaType, error) { return b.l.mediaType(), nil }

// File is the blob file, "" when the blob is read through Open: a
// writer on the same file system may link it rather than copy it.
func (b blobLayer) File() string {
	if b.l.Open != nil {
		return ""
	}
	return b.l.Path
}

// Synced tells that File's bytes are on disk already (Blob.Synced).
func (b blobLayer) Synced() bool { return b.l.Open == nil && b.l.Synced }

// Compressed opens the blob. Reading it checks its length against Size,
// which costs nothing and catches a blob file that changed after packing;
// the registry checks the digest.
func (b blobLayer) Compressed() (io.ReadCloser, error) {
	var rc io.ReadCloser
	var err error
	if b.l.Open != nil {
		rc, err = b.l.Open()
	} else {
		rc, err = os.Open(b.l.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("open layer %s: %w", b.l.Digest, err)
	}
	return &sizeChecker{rc: rc, want: b.l.Size, digest: b.l.Digest}, nil
}

// Uncompressed decompresses the blob; only validators and tools that
// unpack images call it.
func (b blobLayer) Uncompressed() (io.ReadCloser, error) {
	rc, err := b.Compressed()
	if err != nil {
		return nil, err
	}
	zr, err := Decompress(b.l.mediaType(), rc)
	if err != nil {
		rc.Close()
		return nil, fmt.Errorf("decompress layer %s: %w", b.l.Digest, err)
	}
	return &decompressReader{ReadCloser: zr, compressed: rc}, nil
}

// MaxZstdWindow is the largest zstd window Decompress accepts: twice the
// window this project's packer uses.
const MaxZstdWindow = 8 << 20

// Decompress reads the tar of a layer blob of media type mt (gzip or
// zstd) from r. Closing it does not close r.
func Decompress(mt types.MediaType, r io.Reader) (io.ReadCloser, error) {
	switch mt {
	case LayerMediaType, "":
		return gzip.NewReader(r)
	case LayerMediaTypeZstd:
		// One goroutine: a check reads at the pace of its hash. The
		// blob may come from a registry: a window larger than any this
		// project writes (4 MiB) is refused rather than allocated.
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(MaxZstdWindow))
		if err != nil {
			return nil, err
		}
		return zstdReader{zr}, nil
	}
	return nil, fmt.Errorf("media type %q is neither gzip's nor zstd's", mt)
}

// zstdReader is a zstd.Decoder as an io.ReadCloser.
type zstdReader struct{ *zstd.Decoder }

func (z zstdReader) Close() error {
	z.Decoder.Close()
	return nil
}

type decompressReader struct {
	io.ReadCloser
	compressed io.Closer
}

func (g *decompressReader) Close() error {
	return errors.Join(g.ReadCloser.Close(), g.compressed.Close())
}

// errSize reports a blob whose length differs from the Size it was
// described with.
var errSize = errors.New("layer blob size differs from its description")

type sizeChecker struct {
	rc     io.ReadCloser
	want   int64
	n      int64
	digest v1.Hash
}

func (s *sizeChecker) Read(p []byte) (int, error) {
	n, err := s.rc.Read(p)
	s.n += int64(n)
	if s.n > s.want || (err == io.EOF && s.n != s.want) {
		return n, fmt.Errorf("layer %s: read %d bytes, want %d: %w", s.digest, s.n, s.want, errSize)
	}
	return n, err
}

func (s *sizeChecker) Close() error { return s.rc.Close() }
