package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/klauspost/compress/zstd"
	"gotest.tools/v3/assert"
)

// zstdLayerFile is blobLayerFile's layer recompressed with zstd.
func zstdLayerFile(t testing.TB, dir, file, content string) Blob {
	t.Helper()
	gz := blobLayerFile(t, dir, file, content)
	rc, err := gz.Layer().Uncompressed()
	assert.NilError(t, err)
	tarBytes, err := io.ReadAll(rc)
	assert.NilError(t, err)
	assert.NilError(t, rc.Close())
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	assert.NilError(t, err)
	_, err = zw.Write(tarBytes)
	assert.NilError(t, err)
	assert.NilError(t, zw.Close())
	digest := sha256.Sum256(buf.Bytes())
	path := filepath.Join(dir, hex.EncodeToString(digest[:]))
	assert.NilError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	l := gz
	l.Digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(digest[:])}
	l.Size, l.Path, l.MediaType = int64(buf.Len()), path, LayerMediaTypeZstd
	return l
}

// A zstd layer is described as one, beside a gzip one, and decompresses
// to the tar its diffID names (go-containerregistry's validate only reads
// gzip layers, so this test does it).
func TestZstdLayer(t *testing.T) {
	dir := t.TempDir()
	zl := zstdLayerFile(t, dir, "etc/zstd", "zstd content")
	gl := blobLayerFile(t, dir, "etc/gzip", "gzip content")
	img, err := NewImage(amd64, []Blob{gl, zl}, Options{})
	assert.NilError(t, err)
	gzipOnly, err := NewImage(amd64, []Blob{gl}, Options{})
	assert.NilError(t, err)
	assert.NilError(t, validate.Image(gzipOnly))
	cfg, err := img.ConfigFile()
	assert.NilError(t, err)
	assert.DeepEqual(t, cfg.RootFS.DiffIDs, []v1.Hash{gl.DiffID, zl.DiffID})
	for _, l := range []Blob{gl, zl} {
		layer, err := img.LayerByDigest(l.Digest)
		assert.NilError(t, err)
		rc, err := layer.Uncompressed()
		assert.NilError(t, err)
		h := sha256.New()
		_, err = io.Copy(h, rc)
		assert.NilError(t, err)
		assert.NilError(t, rc.Close())
		assert.Equal(t, hex.EncodeToString(h.Sum(nil)), l.DiffID.Hex)
	}
	m, err := img.Manifest()
	assert.NilError(t, err)
	assert.Equal(t, m.Layers[0].MediaType, types.OCILayer)
	assert.Equal(t, m.Layers[1].MediaType, types.OCILayerZStd)
	layer, err := img.LayerByDigest(zl.Digest)
	assert.NilError(t, err)
	mt, err := layer.MediaType()
	assert.NilError(t, err)
	assert.Equal(t, mt, types.OCILayerZStd)

	assert.Assert(t, IsLayerMediaType(types.OCILayer))
	assert.Assert(t, IsLayerMediaType(types.OCILayerZStd))
	assert.Assert(t, !IsLayerMediaType(types.DockerLayer))

	bad := zl
	bad.MediaType = types.OCIUncompressedLayer
	_, err = NewImage(amd64, []Blob{bad}, Options{})
	assert.ErrorContains(t, err, `media type "application/vnd.oci.image.layer.v1.tar" is neither gzip's nor zstd's`)
	_, err = Decompress(types.DockerLayer, bytes.NewReader(nil))
	assert.ErrorContains(t, err, "neither gzip's nor zstd's")
}

// A zstd blob that asks for a window larger than MaxZstdWindow (a
// registry's, which could ask for gigabytes) is refused, not allocated.
func TestDecompressRefusesHugeWindow(t *testing.T) {
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, zstd.WithWindowSize(64<<20), zstd.WithSingleSegment(false))
	assert.NilError(t, err)
	_, err = zw.Write(bytes.Repeat([]byte("layer "), 1<<20))
	assert.NilError(t, err)
	assert.NilError(t, zw.Close())
	zr, err := Decompress(LayerMediaTypeZstd, &buf)
	if err == nil {
		_, err = io.Copy(io.Discard, zr)
		zr.Close()
	}
	assert.ErrorContains(t, err, "window")
}
