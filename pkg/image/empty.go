package image

import (
	"crypto/sha256"
	"encoding/hex"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// EmptyJSON is the content of the OCI 1.1 empty descriptor, "{}": the
// config of an artifact (a referrer, the cache record), which has no
// image configuration. A new slice each time, so no caller changes it.
func EmptyJSON() []byte { return []byte("{}") }

// EmptyDescriptor is the OCI 1.1 empty descriptor, without its data.
func EmptyDescriptor() v1.Descriptor {
	sum := sha256.Sum256(EmptyJSON())
	return v1.Descriptor{
		MediaType: types.OCIEmptyJSON,
		Size:      int64(len(EmptyJSON())),
		Digest:    v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])},
	}
}

// EmptyBlob is the empty descriptor's content as a blob to upload.
func EmptyBlob() v1.Layer { return static.NewLayer(EmptyJSON(), types.OCIEmptyJSON) }
