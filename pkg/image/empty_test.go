package image

import (
	"bytes"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// The empty descriptor describes its content, "{}", as the OCI 1.1
// specification gives it, and the blob uploaded is that content.
func TestEmptyConfig(t *testing.T) {
	d := EmptyDescriptor()
	assert.Check(t, is.Equal(string(EmptyJSON()), "{}"))
	assert.Check(t, is.Equal(d.MediaType, types.OCIEmptyJSON))
	assert.Check(t, is.Equal(d.Digest.String(), "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"))
	sum, n, err := v1.SHA256(bytes.NewReader(EmptyJSON()))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(d.Digest, sum))
	assert.Check(t, is.Equal(d.Size, n))
	blob, err := partial.Descriptor(EmptyBlob())
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(*blob, d))
}
