package image

import (
	"slices"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
)

// runtimeDefaultPath is the PATH Docker, podman and buildah give an image
// that sets none (Nixery's images set none).
const runtimeDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// The image's PATH has every directory of the runtimes' default, so a
// derived image's programs in /usr/local/bin are found; /usr/local comes
// first, as there; the packages' /bin and /sbin keep their order.
func TestDefaultPathKeepsRuntimeDirectories(t *testing.T) {
	img, err := NewImage(amd64, []Blob{fakeLayer("a")}, Options{NoCACert: true})
	assert.NilError(t, err)
	cf, err := img.ConfigFile()
	assert.NilError(t, err)
	assert.Equal(t, len(cf.Config.Env), 1)
	value, ok := strings.CutPrefix(cf.Config.Env[0], "PATH=")
	assert.Assert(t, ok, cf.Config.Env)
	dirs := strings.Split(value, ":")
	for _, d := range strings.Split(runtimeDefaultPath, ":") {
		assert.Check(t, slices.Contains(dirs, d), "PATH %s lacks %s", value, d)
	}
	assert.DeepEqual(t, dirs[:2], []string{"/usr/local/sbin", "/usr/local/bin"})
	pos := func(d string) int { return slices.Index(dirs, d) }
	assert.Check(t, pos("/bin") < pos("/usr/bin") && pos("/usr/bin") < pos("/sbin") && pos("/sbin") < pos("/usr/sbin"), value)
	assert.Equal(t, len(dirs), 6, value)
}
