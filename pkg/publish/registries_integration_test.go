//go:build integration

package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/faultproxy"
	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// On the CNCF registry, which keeps blobs per repository, a second
// repository of the same registry mounts the blobs from the first: it
// gets no blob upload of its own, and skopeo reads the same index from
// both, and from a third repository on a registry behind htpasswd.
func TestRegistriesMountOnRealRegistry(t *testing.T) {
	testenv.Require(t, "docker-registry", "skopeo")
	proxy := faultproxy.Start(t, testenv.StartRegistry(t), 0, 1)
	locked, user, password := testenv.StartAuthRegistry(t)
	targets, err := NewTargets(proxy.Host+"/team/app", []string{"v1", proxy.Host + "/team/mirror:v1", locked + "/team/app:v1"}, false)
	assert.NilError(t, err)
	idx := cachedIndex(t, "real-mount")
	o := Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: staticKeychain{locked, user, password}}}}
	dest := NewRegistries(targets, o)
	res, err := dest.Write(context.Background(), idx, nil)
	dest.Close()
	assert.NilError(t, err)

	var mounts, uploads int
	for _, w := range proxy.Writes() {
		switch {
		case strings.HasPrefix(w, "POST /v2/team/mirror/blobs/uploads"):
			mounts++
		case strings.Contains(w, "/v2/team/mirror/blobs/uploads/"):
			uploads++ // PATCH or PUT of an upload session
		}
	}
	assert.Check(t, mounts >= 3, "%d mounts", mounts) // two layers and the config
	assert.Check(t, is.Equal(uploads, 0))

	assert.Check(t, is.Len(res.Repositories, 3))
	for _, ref := range []string{proxy.Host + "/team/app:v1", proxy.Host + "/team/mirror:v1", locked + "/team/app:v1"} {
		args := []string{"inspect", "--tls-verify=false", "--raw"}
		if strings.HasPrefix(ref, locked) {
			args = append(args, "--creds", user+":"+password)
		}
		raw := testenv.Run(t, "skopeo", append(args, "docker://"+ref)...)
		sum := sha256.Sum256([]byte(raw))
		assert.Check(t, is.Equal("sha256:"+hex.EncodeToString(sum[:]), res.Digest), ref)
	}
}

// A push to several repositories that fails in a later one says which
// tags moved (the earlier repositories') and which did not (the failed
// one's and those after it).
func TestRegistriesFailureSaysWhatMoved(t *testing.T) {
	testenv.Require(t, "docker-registry")
	good := testenv.StartRegistry(t)
	full, _, _ := testenv.StartFullRegistry(t)
	after := testenv.StartRegistry(t)
	targets, err := NewTargets(good+"/team/app", []string{"v1", "v2", full + "/team/app:v1", after + "/team/app:v1"}, false)
	assert.NilError(t, err)
	o := Options{Options: registry.Options{Backoff: remote.Backoff{Duration: time.Millisecond, Steps: 2}}}
	dest := NewRegistries(targets, o)
	_, err = dest.Write(context.Background(), cachedIndex(t, "moved"), nil)
	dest.Close()
	assert.ErrorContains(t, err, full+"/team/app")
	assert.ErrorContains(t, err, "; tags moved: "+good+"/team/app:v1, "+good+"/team/app:v2; not moved: "+full+"/team/app:v1, "+after+"/team/app:v1 (run the build again)")
	assert.Check(t, !strings.Contains(err.Error(), "\n"), err)
}
