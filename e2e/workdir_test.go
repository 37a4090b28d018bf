//go:build integration

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// TestWorkdirOwnedByUser is --user with a --workdir the image does not
// have: the user can write there when plain runc starts the image (as
// Docker, containerd and Kubernetes do; podman would chown a missing
// working directory itself and hide the defect), and the directory is
// the user's in the image itself.
func TestWorkdirOwnedByUser(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo", "umoci", "runc")
	dir := appCheckout(t)
	host := testenv.StartRegistry(t)
	repo := host + "/team/wd"
	r := runIn(t, dir, nil, "build", "--nixpkgs", standIn(), "--platforms", "linux/amd64",
		"--image", repo, "--tags", "v1", "--user", "app", "--workdir", "/srv/work", ".#greet", "busybox")
	assert.Equal(t, r.code, 0, r.stderr)

	bundle := unpackImage(t, repo+":v1")
	out := runcRun(t, bundle, "/bin/busybox", "sh", "-c",
		`/bin/busybox touch x && /bin/busybox stat -c '%n %u:%g %a' "$PWD" x /srv`)
	assert.Equal(t, out, "/srv/work 1000:1000 755\nx 1000:1000 644\n/srv 0:0 755\n")
}

// unpackImage copies image out of the registry and unpacks it as root,
// so the bundle's files keep the owners the layers give them.
func unpackImage(t *testing.T, image string) string {
	t.Helper()
	layout := filepath.Join(t.TempDir(), "oci")
	testenv.Run(t, "skopeo", "copy", "--src-tls-verify=false", "docker://"+image, "oci:"+layout+":img")
	bundle := filepath.Join(t.TempDir(), "bundle")
	testenv.Run(t, "umoci", "unpack", "--image", layout+":img", bundle)
	return bundle
}

// runcRun runs args in bundle with runc, as the image's user in its
// working directory (umoci wrote both into config.json), and returns
// what it printed.
func runcRun(t *testing.T, bundle string, args ...string) string {
	t.Helper()
	file := filepath.Join(bundle, "config.json")
	raw, err := os.ReadFile(file)
	assert.NilError(t, err)
	var spec map[string]any
	assert.NilError(t, json.Unmarshal(raw, &spec))
	process := spec["process"].(map[string]any)
	process["args"], process["terminal"] = args, false
	raw, err = json.Marshal(spec)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(file, raw, 0o644))
	state := t.TempDir() // runc's state: nothing left in /run/runc
	id := fmt.Sprintf("nixery-e2e-%d", os.Getpid())
	out, err := runOutput("runc", "--root", state, "run", "--bundle", bundle, id)
	assert.NilError(t, err, "runc run %s: %s", strings.Join(args, " "), out)
	return out
}
