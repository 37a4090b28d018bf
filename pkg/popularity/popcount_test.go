package popularity

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ulikunitz/xz"
	"gotest.tools/v3/assert"
)

func TestReadStorePaths(t *testing.T) {
	text := "/nix/store/aaa-x\n\n/nix/store/bbb-y\n"
	plain, err := ReadStorePaths(strings.NewReader(text))
	assert.NilError(t, err)
	assert.DeepEqual(t, plain, []string{"/nix/store/aaa-x", "/nix/store/bbb-y"})
	var buf bytes.Buffer
	w, err := xz.NewWriter(&buf)
	assert.NilError(t, err)
	w.Write([]byte(text))
	assert.NilError(t, w.Close())
	compressed, err := ReadStorePaths(&buf)
	assert.NilError(t, err)
	assert.DeepEqual(t, compressed, plain)
}
