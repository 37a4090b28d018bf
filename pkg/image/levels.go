package image

import (
	"fmt"
	"strings"
)

// AnnotationLevel is where an annotation goes, named as buildx and
// docker/metadata-action name it.
type AnnotationLevel string

const (
	// LevelIndex is the image index.
	LevelIndex AnnotationLevel = "index"
	// LevelManifest is each platform image's manifest.
	LevelManifest AnnotationLevel = "manifest"
	// LevelManifestDescriptor is each platform image's descriptor in the
	// index.
	LevelManifestDescriptor AnnotationLevel = "manifest-descriptor"
	// LevelIndexDescriptor is the index's descriptor where something
	// lists it: an OCI layout's index.json (a registry has no place).
	LevelIndexDescriptor AnnotationLevel = "index-descriptor"
)

// DefaultAnnotationLevel is where an annotation without a level goes:
// the manifests, as buildx (and so docker/build-push-action) puts it.
const DefaultAnnotationLevel = LevelManifest

var levels = []AnnotationLevel{LevelIndex, LevelManifest, LevelManifestDescriptor, LevelIndexDescriptor}

// LeveledAnnotations are annotations by level.
type LeveledAnnotations map[AnnotationLevel]map[string]string

// ParseAnnotations reads annotation lines as build-push-action takes them
// (docker/metadata-action's annotations output is such lines):
// [LEVEL[,LEVEL...]:]KEY=VALUE, LEVEL one of index, manifest,
// manifest-descriptor and index-descriptor, and DefaultAnnotationLevel
// where none is given. Empty lines are skipped.
func ParseAnnotations(lines []string) (LeveledAnnotations, error) {
	out := LeveledAnnotations{}
	for _, line := range lines {
		if strings.TrimSpace(line) == "" {
			continue
		}
		at, kv, err := splitLevels(line)
		if err != nil {
			return nil, err
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("annotation %q is not [LEVEL:]KEY=VALUE", line)
		}
		for _, l := range at {
			if out[l] == nil {
				out[l] = map[string]string{}
			}
			out[l][strings.TrimSpace(k)] = v
		}
	}
	return out, nil
}

// splitLevels takes the level prefix off line: the part before a ':'
// that comes before the first '=' and is a list of levels.
func splitLevels(line string) ([]AnnotationLevel, string, error) {
	colon, eq := strings.IndexByte(line, ':'), strings.IndexByte(line, '=')
	if colon < 0 || (eq >= 0 && eq < colon) {
		return []AnnotationLevel{DefaultAnnotationLevel}, line, nil
	}
	prefix := line[:colon]
	if strings.ContainsAny(prefix, "[]") {
		return nil, "", fmt.Errorf("annotation %q: levels for one platform (manifest[linux/amd64]:) are not supported: give the annotation to every platform", line)
	}
	var at []AnnotationLevel
	for _, w := range strings.Split(prefix, ",") {
		l := AnnotationLevel(strings.TrimSpace(w))
		known := false
		for _, k := range levels {
			known = known || l == k
		}
		if !known {
			if strings.Contains(prefix, ".") || strings.Contains(prefix, "/") {
				// A key that holds a ':' (com.example:x=1), not levels.
				return []AnnotationLevel{DefaultAnnotationLevel}, line, nil
			}
			return nil, "", fmt.Errorf("annotation %q: unknown level %q: use index, manifest, manifest-descriptor or index-descriptor", line, l)
		}
		at = append(at, l)
	}
	return at, line[colon+1:], nil
}
