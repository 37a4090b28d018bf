package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// checkBlob reads the blob d names from r and checks its digest and size.
func checkBlob(r name.Repository, d v1.Descriptor) error {
	l, err := remote.Layer(r.Digest(d.Digest.String()))
	if err != nil {
		return err
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	h, n, err := v1.SHA256(rc)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	if h != d.Digest || n != d.Size {
		return fmt.Errorf("blob %s (%d bytes) reads as %s (%d bytes)", d.Digest, d.Size, h, n)
	}
	return nil
}

// CheckTags reads every tag of a repository straight from the registry
// (host "127.0.0.1:PORT", plain HTTP) and fails the test unless each names
// a complete, valid index, or a complete, valid image, or (the cache
// record) an artifact whose every blob is there, whole;
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
		if m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest)); err == nil && m.ArtifactType != "" {
			// An artifact (the cache record): no image, but every
			// blob it names must be there, whole.
			for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
				if err := checkBlob(r, d); err != nil {
					t.Fatalf("tag %s names an artifact with a missing or wrong blob: %v", tag, err)
				}
			}
			continue
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
