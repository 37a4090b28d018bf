package testenv

import (
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// CheckTags reads every tag of a repository straight from the registry
// (host "127.0.0.1:PORT", plain HTTP) and fails the test unless each names
// a complete, valid index, or (the cache record) a complete, valid image;
// a tag listed with no manifest behind it names nothing and passes.
// It returns how many tags there are.
func CheckTags(t testing.TB, registry, repository string) int {
	t.Helper()
	r, err := name.NewRepository(registry+"/"+repository, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(r)
	if err != nil {
		return 0 // nothing pushed yet
	}
	for _, tag := range tags {
		desc, err := remote.Get(r.Tag(tag))
		var terr *transport.Error
		if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
			// A write killed half-way can leave a tag the registry
			// lists but cannot read: it names nothing, complete or not.
			t.Logf("tag %s is listed but names no manifest", tag)
			continue
		}
		if err != nil {
			t.Fatalf("tag %s: %v", tag, err)
		}
		if desc.MediaType.IsImage() {
			img, err := desc.Image()
			if err == nil {
				err = validate.Image(img)
			}
			if err != nil {
				t.Fatalf("tag %s names an incomplete or invalid image: %v", tag, err)
			}
			continue
		}
		idx, err := desc.ImageIndex()
		if err != nil {
			t.Fatalf("tag %s: %v", tag, err)
		}
		if err := validate.Index(idx); err != nil {
			t.Fatalf("tag %s names an incomplete or invalid index: %v", tag, err)
		}
	}
	return len(tags)
}
