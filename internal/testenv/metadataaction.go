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
