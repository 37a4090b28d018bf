package publish

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
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

// NewTargets is NewTarget for a tag list that may hold full references
// ("ghcr.io/me/app:v1", as docker/metadata-action writes them) beside
// bare tags, as docker/build-push-action takes them. Bare tags, and
// references to image's repository, are image's tags; references to
// other repositories make targets of their own, after image's, in the
// order first named. image may be empty when every tag is a full
// reference: the first one's repository is then the first target. A
// reference without a tag means :latest, as docker reads it.
func NewTargets(image string, tags []string, insecure bool) ([]Target, error) {
	if err := registry.CheckRefForm("--image", image); err != nil {
		return nil, err
	}
	for _, s := range tags {
		if err := registry.CheckRefForm("--tags", s); err != nil {
			return nil, err
		}
	}
	var bare []string
	var order []string // other repositories, as first named
	named := map[string][]string{}
	for _, s := range tags {
		if !strings.Contains(s, "/") {
			bare = append(bare, s)
			continue
		}
		if slashedTag(s) {
			return nil, fmt.Errorf("tag %q holds a '/', which a tag cannot (a branch name?): give docker/metadata-action's tags output, or replace '/' with '-' (%s)", s, strings.ReplaceAll(s, "/", "-"))
		}
		repo, tag, err := splitReference(s, insecure)
		if err != nil {
			return nil, err
		}
		if _, ok := named[repo]; !ok {
			order = append(order, repo)
		}
		named[repo] = append(named[repo], tag)
	}
	if image == "" {
		if len(order) == 0 {
			return nil, fmt.Errorf("no image to push to: give --image=REGISTRY/NAME, or full references (REGISTRY/NAME:TAG) in the tags")
		}
		if len(bare) > 0 {
			return nil, fmt.Errorf("tag %q names no repository: give --image, or write it as a full reference (REGISTRY/NAME:TAG)", bare[0])
		}
		image = order[0]
	}
	first, err := NewTarget(image, bare, insecure)
	if err != nil {
		return nil, err
	}
	targets := []Target{first}
	for _, repo := range order {
		t, err := NewTarget(repo, named[repo], insecure)
		if err != nil {
			return nil, err
		}
		if t.Repo.Name() != first.Repo.Name() {
			targets = append(targets, t)
			continue
		}
		for _, tag := range t.Tags {
			if !slices.ContainsFunc(targets[0].Tags, func(x name.Tag) bool { return x.String() == tag.String() }) {
				targets[0].Tags = append(targets[0].Tags, tag)
			}
		}
	}
	return targets, nil
}

// slashedTag tells a tag with a '/' (a branch name such as feature/login)
// from a full reference: it names no registry, tag or digest. It is never
// read as a Docker Hub repository.
func slashedTag(s string) bool {
	return registry.RegistryOf(s) == "" && !strings.ContainsAny(s, ":@")
}

// splitReference reads a full reference from a tag list: its
// repository's name and its tag (latest when it has none).
func splitReference(s string, insecure bool) (repo, tag string, err error) {
	if strings.Contains(s, "@") || registry.RegistryOf(s) == "" {
		return "", "", badImage(s, errors.New("not a full reference"))
	}
	if !strings.Contains(s[strings.LastIndex(s, "/")+1:], ":") {
		s += ":latest"
	}
	t, err := name.NewTag(s, registry.NameOptions(s, insecure)...)
	if err != nil {
		return "", "", badImage(s, err)
	}
	return t.Context().Name(), t.TagStr(), nil
}

// SplitTag takes a ":TAG" off the last part of image
// ("example/hi:v1" is example/hi and v1); a colon before the last slash
// is a registry's port, not a tag.
func SplitTag(image string) (repository, tag string) {
	i := strings.LastIndexByte(image, ':')
	if i < 0 || strings.Contains(image[i+1:], "/") {
		return image, ""
	}
	return image[:i], image[i+1:]
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
	if registryOnly(image) {
		return fmt.Errorf("bad image reference %q names a registry but no repository: add the repository: %s/NAME", image, image)
	}
	if _, weakErr := name.NewTag(image); weakErr == nil {
		return fmt.Errorf("bad image reference %q: name the registry too, e.g. ghcr.io/OWNER/%s or docker.io/USER/%s",
			image, lastPart(image), lastPart(image))
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i > 0 && strings.HasSuffix(image, msg[i+2:]) {
		msg = msg[:i] // name's errors repeat the input, or its repository
	}
	if hasUpper(image) {
		msg += "; repository names must be lowercase"
	}
	return fmt.Errorf("bad image reference %q: %s", image, msg)
}

// registryOnly tells whether image, a reference without a '/', is a
// registry's host (it has a dot or a port, or is localhost) rather than
// a name with its tag (hello:v1.2).
func registryOnly(image string) bool {
	if strings.Contains(image, "/") {
		return false
	}
	if host, port, err := net.SplitHostPort(image); err == nil {
		_, err := strconv.ParseUint(port, 10, 16)
		return host != "" && err == nil
	}
	return !strings.Contains(image, ":") && (image == "localhost" || strings.Contains(image, "."))
}

// hasUpper tells whether the repository path of image (after its
// registry, before its tag) has capitals, which registries refuse, as a
// GitHub owner's name may give them.
func hasUpper(image string) bool {
	_, path, _ := strings.Cut(image, "/")
	if i := strings.LastIndex(path, ":"); i > strings.LastIndex(path, "/") {
		path = path[:i]
	}
	return strings.ToLower(path) != path
}

func lastPart(image string) string {
	image = image[strings.LastIndex(image, "/")+1:]
	if i := strings.Index(image, ":"); i >= 0 {
		image = image[:i]
	}
	return image
}
