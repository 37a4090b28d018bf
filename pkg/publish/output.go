package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/nixery-action/nixery-action/pkg/registry"

	"github.com/nixery-action/nixery-action/internal/ctxio"
	"github.com/nixery-action/nixery-action/pkg/cache"
	"github.com/nixery-action/nixery-action/pkg/outfile"
	"github.com/nixery-action/nixery-action/pkg/referrer"
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
	case path == "-":
		// Not stdout, which carries the result line: a file named "-" is
		// never what was meant.
		return Output{}, fmt.Errorf("bad output %q: the image cannot go to stdout, which carries the result: name a path, e.g. oci:image or docker:image.tar", s)
	case OutputKind(kind) == OCILayout && strings.Contains(filepath.Base(path), ":") && !isDir(path):
		// skopeo's and podman's oci:DIR:TAG. A directory of that name
		// that exists already is a layout someone named so: it is
		// written into; a new one would be a tag taken for a name.
		i := strings.LastIndex(path, ":")
		tag := path[i+1:]
		if tag == "" {
			tag = "TAG"
		}
		return Output{}, fmt.Errorf("bad output %q: a tag goes in --tags, not after the directory: write --output=oci:%s --tags=%s", s, path[:i], tag)
	}
	return Output{Kind: OutputKind(kind), Path: path}, nil
}

func isDir(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.IsDir()
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
	// DescriptorAnnotations go on the index's descriptor in an OCI
	// layout's index.json (the index-descriptor level); a docker archive
	// has no such descriptor.
	DescriptorAnnotations map[string]string
	// Full is what to do when the output's disk fills; "" means "write
	// the image elsewhere".
	Full string
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
		if err := registry.CheckRefForm("--image", o.Repository); err != nil {
			return err
		}
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
	return write(ctx, out, idx, o, nil, nil)
}

// write is Write with referrers, which an OCI layout lists beside the
// image in the same index.json write, and note, told what the write
// waits for (nil: nothing is told).
func write(ctx context.Context, out Output, idx v1.ImageIndex, o WriteOptions, refs Attachments, note func(string)) (*Result, error) {
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
		res, err = writeLayout(ctx, out.Path, idx, o, refs, note)
	case DockerArchive:
		res, err = writeDockerArchive(ctx, out.Path, idx, o)
	default:
		return nil, fmt.Errorf("unknown output kind %q", out.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", out, out.noSpace(err, o.Full))
	}
	res.Image, res.Pushed = out.String(), true
	return res, nil
}

// noSpace explains a full disk: the layout's directory, or the
// archive's. A device written through (/dev/full) is no disk to free.
func (o Output) noSpace(err error, advice string) error {
	dir := o.Path
	if o.Kind == DockerArchive {
		if info, serr := os.Stat(o.Path); serr == nil && !info.Mode().IsRegular() {
			return err
		}
		dir = filepath.Dir(o.Path)
	}
	if advice == "" {
		advice = "write the image elsewhere"
	}
	return outfile.NoSpace(err, dir, advice)
}

var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// IsTag tells whether s is a tag as the distribution spec reads one.
func IsTag(s string) bool { return tagPattern.MatchString(s) }

// referrersTagPattern is the form of OCI 1.1's referrers fallback tag,
// sha256-<digest hex>: on a registry without the referrers API it lists
// the SBOMs and signatures of the image with that digest, so a tag of
// that form written by hand would replace another image's list.
var referrersTagPattern = regexp.MustCompile(`^sha256-[0-9a-f]{64}$`)

// CheckTags checks tags the way registries do, so that a bad tag fails
// before the build rather than after it, and refuses the referrers
// fallback form, which only the referrers code writes.
func CheckTags(tags []string) error {
	for _, t := range tags {
		if t == "" {
			return fmt.Errorf("empty tag in the tag list")
		}
		if !tagPattern.MatchString(t) {
			return fmt.Errorf("bad tag %q: a tag is 1 to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'", t)
		}
		if referrersTagPattern.MatchString(t) {
			return fmt.Errorf("tag %q is the OCI referrers fallback tag of the image sha256:%s (where its SBOMs and signatures are listed): choose another tag", t, t[len("sha256-"):])
		}
		// Refused for layouts and archives too: copied to a registry,
		// the image would replace the record there.
		if t == cache.RecordTag {
			return fmt.Errorf("tag %q is where builds keep the repository's cache record: choose another tag", t)
		}
	}
	return nil
}

// refNameAnnotation names a descriptor in an OCI layout's index.json.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// ReferrersDir is the directory, inside an OCI layout written with
// referrers, that holds the image again with its referrers (SBOM,
// provenance): an OCI layout of its own, whose blobs are hard links to
// the outer layout's where the file system allows. The outer index.json
// then names the image alone, so that `skopeo copy oci:DIR` and `skopeo
// inspect oci:DIR` need no reference; oras finds the referrers with
// `oras discover --oci-layout DIR/referrers:TAG --platform OS/ARCH`.
const ReferrersDir = "referrers"

// writeLayout writes idx into the OCI layout dir (see layoutWriter): the
// blobs, then index.json once, naming idx by each tag (in place of an
// entry with the same tag, or once without a name when there are no
// tags). With referrers, dir/referrers (ReferrersDir) gets the same
// entries and the referrers (with their artifact types, where clients of
// layouts look for them), written before dir's index.json, which names
// the image last, as a push writes its tags last; a failure leaves both
// as they were. Entries keep their places, so writing the same thing
// again leaves both index.json files as they were.
func writeLayout(ctx context.Context, dir string, idx v1.ImageIndex, o WriteOptions, refs Attachments, note func(string)) (res *Result, err error) {
	tags := o.Tags
	w, err := openLayoutWriter(ctx, dir, note)
	if err != nil {
		return nil, err
	}
	defer w.close()
	defer func() {
		if err != nil {
			w.abort()
		}
	}()
	manifests, images, err := describe(idx)
	if err != nil {
		return nil, err
	}
	digest, err := idx.Digest()
	if err != nil {
		return nil, err
	}
	// The layers go first, where a signal can stop them; the layout
	// package then finds them there and writes only the small blobs.
	written := map[string]bool{}
	if err := writeLayers(ctx, w, "", images, written); err != nil {
		return nil, err
	}
	if err := w.dropBadBlobs(indexBlobs(idx)); err != nil {
		return nil, err
	}
	if err := writeIndexBlobs(w.path(), idx); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(refs) > 0 {
		side, serr := openLayoutWriter(ctx, filepath.Join(dir, ReferrersDir), nil)
		if serr != nil {
			return nil, serr
		}
		defer side.close()
		side.linksOuter = true
		if serr := writeReferrersLayout(ctx, side, dir, idx, images, o, refs); serr != nil {
			side.abort()
			return nil, serr
		}
		// dir's index.json is the last write: were it to fail (err is
		// the named result), the referrers layout goes back to what it
		// was.
		defer func() {
			if err != nil {
				side.revert()
			}
		}()
	}
	im, err := w.index()
	if err != nil {
		return nil, err
	}
	if err := nameInIndex(im, idx, dedupe(tags), o.DescriptorAnnotations); err != nil {
		return nil, err
	}
	if err := w.commit(im); err != nil {
		return nil, err
	}
	markUploaded(manifests, func(d string) bool { return written[d] })
	return &Result{Digest: digest.String(), Tags: nonNil(dedupe(tags)), Manifests: manifests}, nil
}

// writeReferrersLayout writes idx and refs into the layout of w (dir's
// ReferrersDir), linking the layers from dir, and commits its index.json.
func writeReferrersLayout(ctx context.Context, w *layoutWriter, dir string, idx v1.ImageIndex, images []v1.Image, o WriteOptions, refs Attachments) error {
	if err := writeLayers(ctx, w, dir, images, nil); err != nil {
		return err
	}
	small := indexBlobs(idx)
	for _, subject := range refs.subjects() {
		for _, r := range refs[subject] {
			small = append(small, imageBlobs(r, true)...)
		}
	}
	if err := w.dropBadBlobs(small); err != nil {
		return err
	}
	lp := w.path()
	if err := writeIndexBlobs(lp, idx); err != nil {
		return err
	}
	im, err := w.index()
	if err != nil {
		return err
	}
	if err := nameInIndex(im, idx, dedupe(o.Tags), o.DescriptorAnnotations); err != nil {
		return err
	}
	for _, subject := range refs.subjects() {
		for _, r := range refs[subject] {
			err := lp.WriteImage(r)
			if err == nil {
				err = ctx.Err()
			}
			if err != nil {
				return &AttachError{Subject: subject, Err: err}
			}
			desc, err := referrer.LayoutDescriptor(r)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(im.Manifests, func(d v1.Descriptor) bool { return d.Digest == desc.Digest }) {
				im.Manifests = append(im.Manifests, desc)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return w.commit(im)
}

// writeIndexBlobs writes every blob of idx, its platform images' and its
// own manifest, and nothing else (go-containerregistry's WriteIndex also
// rewrites oci-layout in place).
func writeIndexBlobs(lp layout.Path, idx v1.ImageIndex) error {
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, m := range im.Manifests {
		img, err := idx.Image(m.Digest)
		if err != nil {
			return err
		}
		if err := lp.WriteImage(img); err != nil {
			return err
		}
	}
	raw, err := idx.RawManifest()
	if err != nil {
		return err
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	return lp.WriteBlob(d, io.NopCloser(bytes.NewReader(raw)))
}

// nameInIndex lists idx in im once per tag, in place of an entry with
// the same tag, or once without a name when there are no tags.
func nameInIndex(im *v1.IndexManifest, idx v1.ImageIndex, tags []string, annotations map[string]string) error {
	desc, err := partial.Descriptor(idx)
	if err != nil {
		return err
	}
	for k, v := range annotations {
		if v == "" {
			continue
		}
		if desc.Annotations == nil {
			desc.Annotations = map[string]string{}
		}
		desc.Annotations[k] = v
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
		d.Annotations = map[string]string{}
		for k, v := range desc.Annotations {
			d.Annotations[k] = v
		}
		d.Annotations[refNameAnnotation] = tag // the tag wins
		put(d, func(old v1.Descriptor) bool { return old.Annotations[refNameAnnotation] == tag })
	}
	return nil
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

// writeLayers writes the layer blobs of images into w's layout, noting
// in written (when not nil) the digests of those it put there, and in w
// the files it put there synced already (commit need not sync them).
// Each is a hard link to a file holding it already where the file system
// allows: from's (a layout written just before), or else the layer's own
// blob file (a build's, packed beside the layout); else it is copied to a
// temporary file, synced and renamed into place, ctx stopping a large one
// mid-way. A file already in the layout is trusted only when it is that
// same file (a layer reused from the layout, checked then) or its bytes
// hash to its digest: a layout is a directory anyone may have written
// into, and --no-cache trusts nothing in it.
func writeLayers(ctx context.Context, w *layoutWriter, from string, images []v1.Image, written map[string]bool) error {
	for _, img := range images {
		layers, err := img.Layers()
		if err != nil {
			return err
		}
		for _, l := range layers {
			wrote, synced, err := writeLayer(ctx, w.dir, from, l)
			if err != nil {
				return err
			}
			d, _ := l.Digest()
			if wrote && written != nil {
				written[d.String()] = true
			}
			if wrote && synced {
				w.synced[blobPath(w.dir, d.String())] = true
			}
		}
	}
	return nil
}

// fileLayer is a layer read from a file of its own (image.Blob's).
type fileLayer interface{ File() string }

// syncedLayer is a layer whose file is synced to disk already.
type syncedLayer interface{ Synced() bool }

// writeLayer puts l's blob into the layout in dir (see writeLayers) and
// tells whether it wrote it, rather than keep the file there, and
// whether what it wrote is synced already: a copy is, and so is a link
// to a file synced where it was made.
func writeLayer(ctx context.Context, dir, from string, l v1.Layer) (wrote, synced bool, err error) {
	d, err := l.Digest()
	if err != nil {
		return false, false, err
	}
	size, err := l.Size()
	if err != nil {
		return false, false, err
	}
	file := blobPath(dir, d.String())
	src := ""
	if from != "" {
		src = blobPath(from, d.String())
	} else if fl, ok := l.(fileLayer); ok {
		src = fl.File()
	}
	if src != "" && cache.IsBlobFile(src, size) {
		if sameFile(src, file) {
			return false, false, nil
		}
		// Another file system (EXDEV) or one without links: copied below.
		if linkBlob(src, file, d) == nil {
			if from == "" {
				// The build's file, 0600 as made: a replaced blob gets
				// no mode from commit, which sets the new ones'.
				sl, ok := l.(syncedLayer)
				return true, ok && sl.Synced(), os.Chmod(file, 0o644)
			}
			return true, false, nil // from's file, with the mode it has there
		}
	}
	if holdsBlob(file, d, size) {
		return false, false, nil
	}
	return true, true, copyLayer(ctx, file, d, size, l)
}

// linkBlob makes file a hard link to src, in place of any file there
// (renamed over it, so that it is never missing).
func linkBlob(src, file string, d v1.Hash) error {
	err := os.Link(src, file)
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	tmp := filepath.Join(filepath.Dir(file), ".tmp-"+d.Hex[:12]+"-link")
	os.Remove(tmp) // a killed write's, under the layout's lock
	if err := os.Link(src, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, file); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// copyLayer copies l's bytes to file through a temporary file, synced,
// given mode 0644 and renamed over whatever file is there.
func copyLayer(ctx context.Context, file string, d v1.Hash, size int64, l v1.Layer) error {
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
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync() // before index.json names it (see commit)
	}
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

// sameFile tells two names of one file.
func sameFile(a, b string) bool {
	ia, err := os.Lstat(a)
	if err != nil {
		return false
	}
	ib, err := os.Lstat(b)
	return err == nil && os.SameFile(ia, ib)
}

// holdsDigest tells whether the regular file at path (no symlink
// followed) holds bytes that hash to d.
func holdsDigest(path string, d v1.Hash) bool { return holdsBlob(path, d, -1) }

// holdsBlob is holdsDigest for a blob of size bytes (-1: unknown): a
// file of another size is neither opened nor read.
func holdsBlob(path string, d v1.Hash, size int64) bool {
	info, err := os.Lstat(path)
	if err != nil || !info.Mode().IsRegular() || (size >= 0 && info.Size() != size) {
		return false // nor opened: a FIFO would block the open
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if info, err = f.Stat(); err != nil || !info.Mode().IsRegular() {
		return false
	}
	got, err := hashBlob(f)
	return err == nil && got == d
}

// hashBlob hashes a blob file (a variable so that a test can count).
var hashBlob = func(f *os.File) (v1.Hash, error) {
	h, _, err := v1.SHA256(f)
	return h, err
}
