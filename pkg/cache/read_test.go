package cache

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/pkg/registry"
)

// A cache read says it ran out of time only when RegistryTimeout passed,
// not when the build stopped it (another failure, a signal).
func TestReadWarnings(t *testing.T) {
	stop := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer hanging.Close()
	defer close(stop)
	ref, err := name.ParseReference(strings.TrimPrefix(hanging.URL, "http://") + "/x:latest")
	assert.NilError(t, err)
	o := registry.Options{RegistryTimeout: 100 * time.Millisecond}

	_, reports := Read(context.Background(), []name.Reference{ref}, o)
	assert.Assert(t, is.Len(reports, 1))
	assert.Check(t, is.Error(reports[0].Err, "cache "+ref.String()+": not read within 100ms; its layers will be packed"))

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, reports = Read(ctx, []name.Reference{ref}, o)
	assert.Assert(t, is.Len(reports, 1))
	assert.Check(t, is.Error(reports[0].Err, "cache "+ref.String()+": not read, the build stopped first"))
}
