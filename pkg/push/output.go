package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/nixery-action/nixery-action/internal/ctxio"
)

// OutputKind is a kind of destination without a registry.
type OutputKind string

const (
	// OCILayout is an OCI image layout directory holding the whole index.
	OCILayout OutputKind = "oci"
	// DockerArchive is a tar file of one image for `docker load` and
	// `podman load`.
	DockerArchive OutputKind = "docker"
)

// Output is a parsed --output destination.
type Output struct {
	Kind OutputKind
	Path string
}

func (o Output) String() string { return string(o.Kind) + ":" + o.Path }

// ParseOutput parses "oci:DIR" or "docker:FILE.tar".
func ParseOutput(s string) (Output, error) {
	kind, path, ok := strings.Cut(s, ":")
	switch {
	case !ok || (OutputKind(kind) != OCILayout && OutputKind(kind) != DockerArchive):
		return Output{}, fmt.Errorf("bad output %q: write oci:DIR for an OCI layout or docker:FILE.tar for docker load", s)
	case path == "":
		return Output{}, fmt.Errorf("bad output %q: the path after %s: is empty", s, kind)
	}
	return Output{Kind: OutputKind(kind), Path: path}, nil
}

// WriteOptions name what Write writes.
type WriteOptions struct {
	// Repository names the image in a docker archive; "" means
	// DefaultArchiveRepository. An OCI layout does not use it.
	Repository string
	// Tags name the index in an OCI layout (the ref.name annotation that
	// `skopeo inspect oci:DIR:TAG` reads; an entry with the same tag is
	// replaced) and the image in a docker archive ("latest" when none).
	Tags []string
}

// Validate checks the names for an output of kind before any work. A
// repository names a docker archive's image only: an OCI layout names
// its images by tag alone, so one given there would be silently unused.
func (o WriteOptions) Validate(kind OutputKind) error {
	if err := CheckTags(o.Tags); err != nil {
		return err
	}
	switch {
	case kind == OCILayout && o.Repository != "":
		return fmt.Errorf("an OCI layout names its images by tag only, so the image name %q would go unused: leave it out, or write a docker archive", o.Repository)
	case kind == DockerArchive:
		_, err := archiveRefs(o.Repository, o.Tags)
		return err
	}
	return nil
}

// DefaultArchiveRepository names the image in a docker archive when no
// repository is given.
const DefaultArchiveRepository = "nixery"

// Write writes idx to out. A docker archive holds one image, so an index
// of several platforms is an error there.
func Write(ctx context.Context, out Output, idx v1.ImageIndex, o WriteOptions) (*Result, error) {
	if err := CheckTags(o.Tags); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var res *Result
	var err error
	switch out.Kind {
	case OCILayout:
		res, err = writeLayout(ctx, out.Path, idx, o.Tags)
	case DockerArchive:
		res, err = writeDockerArchive(ctx, out.Path, idx, o)
	default:
		return nil, fmt.Errorf("unknown output kind %q", out.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", out, err)
	}
	res.Image, res.Pushed = out.String(), true
	return res, nil
}

var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// CheckTags checks tags the way registries do, so that a bad tag fails
// before the build rather than after it.
func CheckTags(tags []string) error {
	for _, t := range tags {
		if t == "" {
			return fmt.Errorf("empty tag in the tag list")
		}
		if !tagPattern.MatchString(t) {
			return fmt.Errorf("bad tag %q: a tag is 1 to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'", t)
		}
	}
	return nil
}

// refNameAnnotation names a descriptor in an OCI layout's index.json.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// writeLayout writes idx into the layout in dir. A failed or interrupted
// write leaves dir as it was: what it added is removed, index.json is put
// back, and a layout it created is removed whole.
func writeLayout(ctx context.Context, dir string, idx v1.ImageIndex, tags []string) (res *Result, err error) {
	before, err := snapshotLayout(dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, before.restore())
		}
	}()
	lp, err := openLayout(dir)
	if err != nil {
		return nil, err
	}
	manifests, images, err := describe(idx)
	if err != nil {
		return nil, err
	}
	existed := map[string]bool{}
	for _, m := range manifests {
		for _, l := range m.Layers {
			if _, err := os.Stat(blobPath(dir, l.Digest)); err == nil {
				existed[l.Digest] = true
			}
		}
	}
	digest, err := idx.Digest()
	if err != nil {
		return nil, err
	}

	// The layers go first, where a signal can stop them; the layout
	// package then finds them there and writes only the small blobs.
	if err := writeLayers(ctx, dir, images); err != nil {
		return nil, err
	}
	if err := lp.WriteIndex(idx); err != nil {
		return nil, err
	}
	if err := nameInLayout(lp, idx, dedupe(tags)); err != nil {
		return nil, err
	}
	if err := ordinaryModes(dir); err != nil {
		return nil, err
	}

	markUploaded(manifests, func(d string) bool { return !existed[d] })
	return &Result{Digest: digest.String(), Tags: nonNil(dedupe(tags)), Manifests: manifests}, nil
}

// nameInLayout lists idx in the layout's index.json once per tag, in
// place of an entry with the same tag, or once without a name when there
// are no tags. Entries keep their places, so writing the same thing again
// leaves index.json as it was.
func nameInLayout(lp layout.Path, idx v1.ImageIndex, tags []string) error {
	top, err := lp.ImageIndex()
	if err != nil {
		return err
	}
	im, err := top.IndexManifest()
	if err != nil {
		return err
	}
	desc, err := partial.Descriptor(idx)
	if err != nil {
		return err
	}
	put := func(d v1.Descriptor, same func(v1.Descriptor) bool) {
		for i, old := range im.Manifests {
			if same(old) {
				im.Manifests[i] = d
				return
			}
		}
		im.Manifests = append(im.Manifests, d)
	}
	if len(tags) == 0 {
		put(*desc, func(old v1.Descriptor) bool {
			return old.Digest == desc.Digest && old.Annotations[refNameAnnotation] == ""
		})
	}
	for _, tag := range tags {
		d := *desc
		d.Annotations = map[string]string{refNameAnnotation: tag}
		put(d, func(old v1.Descriptor) bool { return old.Annotations[refNameAnnotation] == tag })
	}
	raw, err := json.MarshalIndent(im, "", "   ")
	if err != nil {
		return err
	}
	return lp.WriteFile("index.json", raw, 0o644)
}

// openLayout opens the layout in dir, creating it when dir is missing or
// empty; any other directory is left alone.
func openLayout(dir string) (layout.Path, error) {
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err == nil {
		return layout.FromPath(dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if len(entries) > 0 {
		return "", fmt.Errorf("%s is a directory with files but no OCI layout (no index.json); name a new or empty directory", dir)
	}
	return layout.Write(dir, empty.Index)
}

// ordinaryModes gives the layout's files mode 0644 and its directories
// 0755, as other tools write layouts. go-containerregistry's layout
// package creates index.json and oci-layout with 0777 before the umask
// and blobs as 0600 temporary files renamed into place.
func ordinaryModes(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		switch {
		case d.IsDir():
			mode = 0o755
		case !d.Type().IsRegular():
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm() == mode {
			return nil
		}
		return os.Chmod(path, mode)
	})
}

func blobPath(dir, digest string) string {
	alg, hex, _ := strings.Cut(digest, ":")
	return filepath.Join(dir, "blobs", alg, hex)
}

func dedupe(in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// archiveRefs names the image of a docker archive: repository:tag for
// each tag.
func archiveRefs(repository string, tags []string) ([]string, error) {
	if repository == "" {
		repository = DefaultArchiveRepository
	}
	if len(tags) == 0 {
		tags = []string{"latest"}
	}
	var refs []string
	for _, t := range dedupe(tags) {
		ref := repository + ":" + t
		if _, err := name.NewTag(ref); err != nil {
			return nil, fmt.Errorf("bad image name %q: %v", ref, err)
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

// writeLayers writes the layer blobs of images into the layout in dir that
// it does not hold yet, each to a temporary file renamed into place; ctx
// stops a large one mid-way.
func writeLayers(ctx context.Context, dir string, images []v1.Image) error {
	for _, img := range images {
		layers, err := img.Layers()
		if err != nil {
			return err
		}
		for _, l := range layers {
			if err := writeLayer(ctx, dir, l); err != nil {
				return err
			}
		}
	}
	return nil
}

func writeLayer(ctx context.Context, dir string, l v1.Layer) error {
	d, err := l.Digest()
	if err != nil {
		return err
	}
	size, err := l.Size()
	if err != nil {
		return err
	}
	file := blobPath(dir, d.String())
	if info, err := os.Stat(file); err == nil && info.Mode().IsRegular() && info.Size() == size {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(filepath.Dir(file), ".tmp-"+d.Hex[:12]+"-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, ctxio.Reader(ctx, rc))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		return fmt.Errorf("write layer %s: %w", d, err)
	case n != size:
		return fmt.Errorf("write layer %s: %d bytes, want %d", d, n, size)
	}
	return os.Rename(tmp.Name(), file)
}

// layoutSnapshot is what a layout directory held before a write, so that
// a write that fails or is interrupted can leave it as it was.
type layoutSnapshot struct {
	dir     string
	existed bool
	modes   map[string]fs.FileMode // every file and directory under dir
	files   map[string][]byte      // the top files a write rewrites
}

// rewritten are the files of a layout that a write changes in place.
var rewritten = []string{"index.json", "oci-layout"}

func snapshotLayout(dir string) (*layoutSnapshot, error) {
	s := &layoutSnapshot{dir: dir, modes: map[string]fs.FileMode{}, files: map[string][]byte{}}
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	s.existed = true
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		s.modes[p] = info.Mode()
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, name := range rewritten {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil {
			s.files[name] = b
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return s, nil
}

// restore removes what was added to the layout since the snapshot and puts
// back the files and modes it changed; a directory that was not there is
// removed whole.
func (s *layoutSnapshot) restore() error {
	if !s.existed {
		return os.RemoveAll(s.dir)
	}
	var added []string
	var errs []error
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode, ok := s.modes[p]
		switch {
		case !ok:
			added = append(added, p)
			if d.IsDir() {
				return filepath.SkipDir
			}
		case d.Type().IsRegular() || d.IsDir():
			if info, err := d.Info(); err == nil && info.Mode().Perm() != mode.Perm() {
				errs = append(errs, os.Chmod(p, mode.Perm()))
			}
		}
		return nil
	})
	errs = append(errs, err)
	for _, p := range added {
		errs = append(errs, os.RemoveAll(p))
	}
	for name, old := range s.files {
		p := filepath.Join(s.dir, name)
		if now, err := os.ReadFile(p); err != nil || !bytes.Equal(now, old) {
			errs = append(errs, os.WriteFile(p, old, s.modes[p].Perm()))
		}
	}
	return errors.Join(errs...)
}
