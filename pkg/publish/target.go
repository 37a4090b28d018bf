package publish

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/nixery-action/nixery-action/pkg/cache"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// Target is where Push writes: a repository and the tags to put the index
// under. No tags means the index is pushed by digest only.
type Target struct {
	Repo name.Repository
	Tags []name.Tag
}

// NewTarget checks the image reference and tags before any work is done,
// so a typo fails in a second rather than after a long build. image is a
// full repository ("ghcr.io/owner/name", "127.0.0.1:5000/name"); a
// ":tag" on it is added to tags. insecure talks plain HTTP to the
// registry; loopback registries (localhost, 127.0.0.1, ::1) always get
// plain HTTP, as crane and ko do.
func NewTarget(image string, tags []string, insecure bool) (Target, error) {
	opts := registry.NameOptions(image, insecure)

	repo, err := name.NewRepository(image, opts...)
	if err != nil {
		// "host/name:tag" is a common way to write both at once.
		tag, tagErr := name.NewTag(image, opts...)
		if tagErr != nil {
			return Target{}, badImage(image, err)
		}
		repo = tag.Context()
		tags = append([]string{tag.TagStr()}, tags...)
	}

	// name accepts tags that registries refuse (".v1"): check them as the
	// distribution spec does first.
	if err := CheckTags(tags); err != nil {
		return Target{}, err
	}
	for _, s := range tags {
		if s == cache.RecordTag {
			return Target{}, fmt.Errorf("tag %q is where builds keep the repository's cache record: choose another tag", s)
		}
	}
	t := Target{Repo: repo}
	for _, s := range dedupe(tags) {
		tag, err := name.NewTag(repo.Name()+":"+s, opts...)
		if err != nil {
			return Target{}, fmt.Errorf("bad tag %q: %v", s, err)
		}
		t.Tags = append(t.Tags, tag)
	}
	return t, nil
}

// TagNames returns the target's tags as given.
func (t Target) TagNames() []string {
	names := make([]string, 0, len(t.Tags))
	for _, tag := range t.Tags {
		names = append(names, tag.TagStr())
	}
	return names
}

// badImage explains why image is not a repository we can push to.
func badImage(image string, err error) error {
	if strings.Contains(image, "@") {
		return fmt.Errorf("bad image reference %q: give a repository (and optionally :tag), not a digest", image)
	}
	if _, weakErr := name.NewTag(image); weakErr == nil {
		return fmt.Errorf("bad image reference %q: name the registry too, e.g. ghcr.io/OWNER/%s or docker.io/USER/%s",
			image, lastPart(image), lastPart(image))
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "+image); i > 0 {
		msg = msg[:i] // name's errors repeat the input
	}
	return fmt.Errorf("bad image reference %q: %s", image, msg)
}

func lastPart(image string) string {
	image = image[strings.LastIndex(image, "/")+1:]
	if i := strings.Index(image, ":"); i >= 0 {
		image = image[:i]
	}
	return image
}
