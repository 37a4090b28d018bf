//go:build integration

package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// pullStatus is the status and body of a pull of name:latest from s.
func pullStatus(t *testing.T, s *served, name string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+s.host+"/v2/"+name+"/manifests/latest", nil)
	assert.NilError(t, err)
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json")
	res, err := http.DefaultClient.Do(req)
	assert.NilError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	assert.NilError(t, err)
	return res.StatusCode, string(body)
}

// A storage registry that goes away after the server started fails the
// pulls with a server error (5xx) that names neither the registry nor
// what went wrong with it, which the server's log says.
func TestServeStorageRegistryStops(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo")
	reg, stop := testenv.StartStoppableRegistry(t)
	s := startServe(t, "docker://"+reg+"/nixery/store", "--platforms", "linux/amd64")
	stop()
	out, err := s.inspect("hello:latest")
	assert.Assert(t, err != nil, out)
	assert.Check(t, is.Contains(out, "500 Internal Server Error"))
	assert.Check(t, !strings.Contains(out, reg), "skopeo was told the storage's address: %s", out)
	assert.Check(t, !strings.Contains(out, "manifest unknown"), out)
	code, body := pullStatus(t, s, "hello")
	assert.Check(t, code >= 500 && code < 600, "%d %s", code, body)
	assert.Check(t, is.Contains(body, "the server could not build this image; see the server's log"))
	assert.Check(t, !strings.Contains(body, reg), body)
	log := strings.Join(s.lines(), "\n")
	assert.Check(t, is.Contains(log, "cannot reach registry "+reg+": connection refused"), log)
}

// A storage directory that turns read-only after the server started
// fails the pulls the same way; the log names the directory and why.
func TestServeStorageTurnsReadOnly(t *testing.T) {
	testenv.Require(t, "nix", "skopeo")
	storage := mountTmpfs(t, "64m")
	s := startServe(t, storage, "--platforms", "linux/amd64")
	remountReadOnly(t, storage)
	out, err := s.inspect("hello:latest")
	assert.Assert(t, err != nil, out)
	assert.Check(t, is.Contains(out, "500 Internal Server Error"))
	assert.Check(t, !strings.Contains(out, storage), "skopeo was told the storage's path: %s", out)
	code, body := pullStatus(t, s, "hello")
	assert.Check(t, code >= 500 && code < 600, "%d %s", code, body)
	assert.Check(t, !strings.Contains(body, storage), body)
	log := strings.Join(s.lines(), "\n")
	assert.Check(t, is.Contains(log, "read-only file system"), log)
}
