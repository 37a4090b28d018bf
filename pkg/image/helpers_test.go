package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"gotest.tools/v3/assert"
)

// blobLayerFile packs one file into a real gzip'd tar in dir and describes
// it as a Layer, hashes computed here.
func blobLayerFile(t testing.TB, dir, file, content string, pkgs ...string) Blob {
	t.Helper()
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	assert.NilError(t, tw.WriteHeader(&tar.Header{
		Name: file, Mode: 0o644, Size: int64(len(content)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg,
	}))
	_, err := tw.Write([]byte(content))
	assert.NilError(t, err)
	assert.NilError(t, tw.Close())

	var gzBuf bytes.Buffer
	zw := gzip.NewWriter(&gzBuf)
	_, err = zw.Write(tarBuf.Bytes())
	assert.NilError(t, err)
	assert.NilError(t, zw.Close())

	diffID := sha256.Sum256(tarBuf.Bytes())
	digest := sha256.Sum256(gzBuf.Bytes())
	path := filepath.Join(dir, hex.EncodeToString(digest[:]))
	assert.NilError(t, os.WriteFile(path, gzBuf.Bytes(), 0o644))
	return Blob{
		Digest:   v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(digest[:])},
		DiffID:   v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(diffID[:])},
		Size:     int64(gzBuf.Len()),
		Path:     path,
		Key:      "sha256:" + hex.EncodeToString(diffID[:]),
		Packages: pkgs,
	}
}

// fakeHash is a well-formed digest of s, for tests that never read blobs.
func fakeHash(s string) v1.Hash {
	sum := sha256.Sum256([]byte(s))
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// fakeLayer describes a blob that does not exist; building manifests must
// not need it.
func fakeLayer(name string, pkgs ...string) Blob {
	return Blob{
		Digest:   fakeHash("blob " + name),
		DiffID:   fakeHash("tar " + name),
		Size:     int64(100 + len(name)),
		Path:     "/nonexistent/" + name,
		Key:      fakeHash("key " + name).String(),
		Packages: pkgs,
	}
}

var (
	amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = v1.Platform{OS: "linux", Architecture: "arm64"}
)
