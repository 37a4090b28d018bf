package registry

import (
	"testing"

	"gotest.tools/v3/assert"
)

// A reference written as a URL or with a transport is refused in one line
// that says what to drop or where it goes; a registry named like a
// transport, with a port, is a registry.
func TestCheckRefForm(t *testing.T) {
	for ref, want := range map[string]string{
		"https://ghcr.io/me/tools":        `--image "https://ghcr.io/me/tools": give REGISTRY/NAME, not a URL: drop "https://"`,
		"http://127.0.0.1:5000/a":         `drop "http://"`,
		"docker://ghcr.io/me/tools:v1":    `drop "docker://"`,
		"https://bob:s3cret@ghcr.io/me/x": `--image "https://REDACTED@ghcr.io/me/x": give REGISTRY/NAME, not a URL`,
		"oci:out":                         `--image "oci:out": give REGISTRY/NAME, not a transport (oci:); --output takes oci:DIR`,
		"docker:img.tar":                  `--output takes docker:FILE.tar`,
		"docker-archive:/tmp/i.tar":       `not a transport (docker-archive:); --output takes docker:FILE.tar`,
		"containers-storage:me/tools":     `--image "containers-storage:me/tools": give REGISTRY/NAME, not a transport (containers-storage:)`,
	} {
		err := CheckRefForm("--image", ref)
		assert.ErrorContains(t, err, want, ref)
	}
	for _, ref := range []string{
		"ghcr.io/me/tools", "ghcr.io/me/tools:v1", "127.0.0.1:5000/a", "localhost:5000/a:latest",
		"docker:5000/app", "oci:5000", "v1", "", "ghcr.io/me/tools@sha256:" + "00",
	} {
		assert.NilError(t, CheckRefForm("--image", ref), ref)
	}
}
