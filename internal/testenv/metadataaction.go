package testenv

import (
	_ "embed"
	"strings"
)

// metadataActionLabels is docker/metadata-action's labels output for a
// push to a branch, as its __tests__/meta.test.ts (case event_push.env)
// expects it.
//
//go:embed testdata/metadata-action-labels.txt
var metadataActionLabels string

// MetadataActionLabels are docker/metadata-action's labels output, one
// "key=value" per label.
func MetadataActionLabels() []string {
	return strings.Split(strings.TrimSpace(metadataActionLabels), "\n")
}

// MetadataActionAnnotations is its annotations output for those labels
// with DOCKER_METADATA_ANNOTATIONS_LEVELS set to levels: each label behind
// each level, "level:key=value", as its src/main.ts writes them.
func MetadataActionAnnotations(levels ...string) []string {
	var out []string
	for _, l := range levels {
		for _, label := range MetadataActionLabels() {
			out = append(out, l+":"+label)
		}
	}
	return out
}

// metadataActionTags are the tags docker/metadata-action makes for a push
// of the git tag v1.2.3 with tags type=semver,pattern={{version}} and
// type=semver,pattern={{major}}.{{minor}} (its README's semver example):
// the version, its partial, then latest.
//
//go:embed testdata/metadata-action-tags.txt
var metadataActionTags string

// MetadataActionTags is metadata-action's tags output for those tags and
// images: each image with each tag, "IMAGE:TAG", image by image, as its
// src/meta.ts getTags writes them (one per line in the output).
func MetadataActionTags(images ...string) []string {
	var out []string
	for _, image := range images {
		for _, tag := range strings.Split(strings.TrimSpace(metadataActionTags), "\n") {
			out = append(out, strings.ToLower(image)+":"+tag)
		}
	}
	return out
}
