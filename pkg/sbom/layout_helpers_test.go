package sbom

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
)

func emptyIndex(t *testing.T) v1.ImageIndex {
	t.Helper()
	return empty.Index
}
