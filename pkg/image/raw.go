package image

import "github.com/google/go-containerregistry/pkg/v1/types"

// RawManifest is a manifest or an index whose bytes are already made, to
// put as they are (a remote.Taggable): a merged index, a cache record, a
// referrers fallback index.
type RawManifest struct {
	Bytes []byte
	Type  types.MediaType
}

func (m RawManifest) RawManifest() ([]byte, error)        { return m.Bytes, nil }
func (m RawManifest) MediaType() (types.MediaType, error) { return m.Type, nil }
