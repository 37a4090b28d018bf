//go:build integration

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// An image built FROM ours finds, by name, a program its Dockerfile
// copies to /usr/local/bin, in a RUN step (buildah bud) and as its CMD
// (podman run): the image's PATH has /usr/local/bin, as the runtimes'
// default PATH does.
func TestDerivedImagePathFindsUsrLocalBin(t *testing.T) {
	testenv.Require(t, "nix", "buildah", "podman", "runc")
	// buildah names an oci: image after its directory, which must be
	// lower case: t.TempDir's is not.
	layout, err := os.MkdirTemp("/tmp", "derived")
	assert.NilError(t, err)
	t.Cleanup(func() { os.RemoveAll(layout) })
	r := run(t, nil, "build", "--nixpkgs", standIn(), "--output", "oci:"+layout, "--tags", "v1", "--sbom=false", "hello")
	assert.Equal(t, r.code, 0, r.stderr)

	// busybox runs the applet its first argument names when called
	// busybox; the image has no busybox of its own.
	context := t.TempDir()
	testenv.Run(t, "cp", "/bin/busybox", filepath.Join(context, "busybox"))
	dockerfile := "FROM oci:" + layout + ":v1\n" +
		"COPY busybox /usr/local/bin/busybox\n" +
		`RUN ["busybox", "echo", "the RUN step found busybox"]` + "\n" +
		`CMD ["busybox", "echo", "the CMD found busybox"]` + "\n"
	assert.NilError(t, os.WriteFile(filepath.Join(context, "Dockerfile"), []byte(dockerfile), 0o644))

	podman := podmanBase(t)
	built := testenv.Run(t, "buildah", append(buildahBase(podman), "bud", "--isolation", "chroot", "-t", "localhost/derived:v1", context)...)
	assert.Check(t, is.Contains(built, "\nthe RUN step found busybox\n"), built)

	out := testenv.Run(t, "podman", append(podman, "run", "--rm", "--network=none",
		"--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1000:1000", "localhost/derived:v1")...)
	assert.Equal(t, strings.TrimSpace(out), "the CMD found busybox")
	// The packages' programs are still found by name.
	out = testenv.Run(t, "podman", append(podman, "run", "--rm", "--network=none",
		"--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1000:1000", "localhost/derived:v1", "hello")...)
	assert.Equal(t, strings.TrimSpace(out), "Hello, world!")
}

// buildahBase gives buildah podman's store (podmanBase's flags), so that
// podman runs what buildah builds and podmanBase's cleanup removes both.
func buildahBase(podman []string) []string {
	var base []string
	for i := 0; i < len(podman); i++ {
		switch f := podman[i]; {
		case f == "--root" || f == "--runroot":
			base = append(base, f, podman[i+1])
			i++
		case strings.HasPrefix(f, "--storage-driver="):
			base = append(base, f)
		}
	}
	return base
}
