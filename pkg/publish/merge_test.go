package publish

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/pkg/registry"
)

// Merge's own errors say what to do, and keep their cause: the
// registry's 404 for a digest that is not there, the deadline for a
// registry too slow to read.
func TestMergeErrorsKeepCause(t *testing.T) {
	anon := Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}}}
	missing := "sha256:" + strings.Repeat("ab", 32)

	host := memRegistry(t, nil)
	_, err := Merge(context.Background(), mustTarget(t, host+"/merge/app", "v1"), []string{missing}, anon)
	assert.ErrorContains(t, err, missing+" is not in "+host+"/merge/app: merge the digests")
	var terr *transport.Error
	assert.Assert(t, errors.As(err, &terr), "%T", err)
	assert.Equal(t, terr.StatusCode, http.StatusNotFound)

	slow := memRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/manifests/") {
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			}
			h.ServeHTTP(w, r)
		})
	})
	o := anon
	o.RegistryTimeout = 200 * time.Millisecond
	_, err = Merge(context.Background(), mustTarget(t, slow+"/merge/app", "v1"), []string{missing}, o)
	assert.ErrorContains(t, err, "not done within 200ms")
	assert.Assert(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
}
