package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nixery-action/nixery-action/internal/parallel"
	"github.com/nixery-action/nixery-action/pkg/cache"
	"github.com/nixery-action/nixery-action/pkg/flakeref"
	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// Merge puts one index over images that per-platform jobs pushed by digest
// to the first target's repository, under each target's tags. Each digest
// may name an index (what a build pushes without tags) or a single image;
// indexes are flattened to their platform manifests. Index annotations
// the inputs agree on are kept, so the result is byte-identical to one
// build of all the platforms. Each other target (NewTargets makes them
// from full references in the tags) first gets a copy of every platform
// image and its referrers, then the same index under its own tags; the
// Result is the first repository's, with every repository listed in
// Repositories, as a build's is. With push false, the images are read and
// the index made, but nothing is written: no manifest, no tag, no copy;
// the Result says where the index would have gone (Pushed is false).
func Merge(ctx context.Context, targets []Target, digests []string, o Options, push bool) (*Result, error) {
	if len(targets) == 0 {
		return nil, fmt.Errorf("no repository to merge in")
	}
	if len(digests) == 0 {
		return nil, fmt.Errorf("no digests to merge: pass the digest output of each per-platform build")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	t := targets[0]
	l, err := o.Credentials.Login(ctx, t.Repo, true)
	if err != nil {
		return nil, err
	}
	res, err := merge(ctx, targets, digests, o, l, push)
	var done *explained
	switch {
	case errors.As(err, &done):
		return nil, l.Redact(err)
	case err != nil:
		return nil, explainTags(err, l, t.Repo, "run the merge again")
	}
	return res, nil
}

func merge(ctx context.Context, targets []Target, digests []string, o Options, l registry.Login, push bool) (*Result, error) {
	t := targets[0]
	ropts := o.remoteOptions(ctx, l)
	read, err := readMerged(ctx, t, digests, o, l)
	if err != nil {
		return nil, err
	}
	raw, err := image.RawIndex(read.manifests, read.annotations)
	if err != nil {
		return nil, err
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	if o.OnMerging != nil {
		var platforms []string // in the index's order
		for _, m := range im.Manifests {
			platforms = append(platforms, PlatformName(*m.Platform))
		}
		o.OnMerging(platforms)
	}
	for _, w := range read.warnings {
		if o.OnWarning != nil { // the merge goes on, as buildx's does
			o.OnWarning(w)
		}
	}
	idx := image.RawManifest{Bytes: raw, Type: types.OCIImageIndex}
	digest, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	res := pushed(t, digest, nil)
	var copies *mergedIndex
	var refs Attachments
	var others []*Registry
	if push && len(targets) > 1 {
		// As a build's: each mounts from the first of its registry.
		others = NewRegistries(targets, o).regs[1:]
		defer func() {
			for _, r := range others {
				r.Close()
			}
		}()
		// All that is copied is read, and every repository checked,
		// before any tag moves.
		if copies, refs, err = readSource(ctx, t, l, read, raw, im, o); err != nil {
			return nil, err
		}
		if err := checkOthers(ctx, others); err != nil {
			return nil, err
		}
	}
	if push {
		// The platform images, and their referrers, were written before
		// the per-platform builds named their indexes: the tags here
		// come last.
		pusher, err := remote.NewPusher(ropts...)
		if err != nil {
			return nil, err
		}
		put := func(ctx context.Context) error {
			return putIndex(ctx, pusher, t, digest, idx, read.reader.Resolve)
		}
		if err := putAgain(ctx, o, t.Repo, "index "+short(digest.String()), put); err != nil {
			return nil, err
		}
	} else {
		res.Reference, res.Pushed = "", false // a dry run pushed nothing
	}
	switch {
	case len(targets) > 1 && push:
		more, err := copyMerged(ctx, t, copies, refs, others)
		if err != nil {
			return nil, err
		}
		res.Repositories = append([]RepositoryResult{repositoryOf(res)}, more...)
	case len(targets) > 1:
		res.Repositories = unpushed(targets)
	}
	for _, m := range im.Manifests {
		res.Manifests = append(res.Manifests, ManifestResult{Platform: PlatformName(*m.Platform), OCIPlatform: m.Platform, Digest: m.Digest.String(), Layers: read.layers[m.Digest]})
	}
	return res, nil
}

// checkOthers asks each repository besides the source, before anything
// is written, whether it answers and takes this login's pushes (as a
// build checks each of its repositories): a login missing for one fails
// the merge before any tag moves.
func checkOthers(ctx context.Context, others []*Registry) error {
	for _, r := range others {
		if err := r.Check(ctx); err != nil {
			named := naming(r.Target().Repo, err)
			return &explained{named.Error(), err}
		}
	}
	return nil
}

// mergeRead is what a merge read: the platform manifests, the index
// annotations the images agree on, each platform manifest's layers (none
// uploaded to the source: a merge sends it none; the copies into other
// repositories are not counted), and a warning line for each index
// annotation they disagree on.
type mergeRead struct {
	manifests   []v1.Descriptor
	annotations map[string]string
	layers      map[v1.Hash][]LayerResult
	warnings    []string
	// images are the platform manifests as read (checked against their
	// digests), and reader the source's reader, for a copy of them into
	// other repositories (readSource).
	images map[v1.Hash]sourced
	reader *registry.Reader
}

// sourced is a manifest as read from the source, and its media type.
type sourced struct {
	raw []byte
	mt  types.MediaType
}

// mergeInput is one digest given to merge: an index, or an image alone
// (with no index annotations).
type mergeInput struct {
	digest    string
	index     bool
	manifests []v1.Descriptor
	annots    map[string]string
}

// readMerged reads the images to merge, within o's registry timeout.
// The same image reached twice (as an index's and on its own, say) is
// merged once. Every config and layer blob they name must be in t.Repo:
// a tag must not name an image that cannot be pulled.
func readMerged(ctx context.Context, t Target, digests []string, o Options, l registry.Login) (*mergeRead, error) {
	ctx, cancel := context.WithTimeout(ctx, o.WithDefaults().RegistryTimeout)
	defer cancel()
	// Errors here are of reading: none says "push".
	r, err := registry.NewReader(ctx, t.Repo, l, o.Options)
	if err != nil {
		return nil, readFailure(l, t, err)
	}
	rd := &inputReader{r: r, t: t, o: o, l: l, layers: map[v1.Hash][]LayerResult{}, images: map[v1.Hash]sourced{}, read: map[blobID]bool{}}
	var inputs []mergeInput
	given := map[string]bool{}
	for _, d := range digests {
		d, err := MergeDigest(t, d)
		if err != nil {
			return nil, asIs(err)
		}
		if given[d] {
			continue // the same image given twice is merged once
		}
		given[d] = true
		in, err := rd.input(ctx, d)
		if err != nil {
			return nil, asIs(err)
		}
		inputs = append(inputs, in)
	}
	out, err := combine(inputs)
	if err != nil {
		return nil, asIs(err)
	}
	if err := checkBlobs(ctx, r, t, unread(rd.blobs, rd.read), o); err != nil {
		return nil, readFailure(l, t, err)
	}
	out.layers, out.images, out.reader = rd.layers, rd.images, r
	return out, nil
}

// asIs is err, a refusal of what merge was given, to be shown as it is
// (its text names the digests).
func asIs(err error) error {
	var done *explained
	if errors.As(err, &done) {
		return err
	}
	return &explained{err.Error(), err}
}

// readFailure explains err, a failure while reading the images to merge
// from t.Repo, unless it says all already.
func readFailure(l registry.Login, t Target, err error) error {
	var done *explained
	if errors.As(err, &done) {
		return err
	}
	e := l.ExplainDoing(err, t.Repo, "read the images to merge from "+t.Repo.String())
	return &explained{e.Error(), e}
}

// inputReader reads the digests given to a merge, noting the layers of
// each platform manifest and the blobs still to check.
type inputReader struct {
	r      *registry.Reader
	t      Target
	o      Options
	l      registry.Login
	layers map[v1.Hash][]LayerResult
	images map[v1.Hash]sourced
	blobs  []platformBlob
	read   map[blobID]bool // blobs downloaded already: held
}

// input reads the index or image d.
func (rd *inputReader) input(ctx context.Context, d string) (mergeInput, error) {
	t := rd.t
	raw, mt, err := rd.r.Manifest(ctx, t.Repo.Digest(d))
	if err != nil {
		if registry.IsNotFound(err) {
			return mergeInput{}, &explained{fmt.Sprintf("%s is not in %s: merge the digests that the per-platform builds pushed there", d, t.Repo), err}
		}
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			return mergeInput{}, &explained{fmt.Sprintf("read %s from %s: not done within %s", d, t.Repo, rd.o.WithDefaults().RegistryTimeout), err}
		}
		return mergeInput{}, rd.failed(d, "", err)
	}
	if err := sameKind(raw, mt); err != nil {
		return mergeInput{}, fmt.Errorf("%s: %w", d, err)
	}
	switch {
	case mt.IsIndex():
		return rd.index(ctx, d, raw)
	case mt.IsImage():
		return rd.image(ctx, d, raw, mt)
	}
	return mergeInput{}, fmt.Errorf("%s is a %q, not an image or index", d, mt)
}

// index reads the index d, whose body is raw, and its platform images.
func (rd *inputReader) index(ctx context.Context, d string, raw []byte) (mergeInput, error) {
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return mergeInput{}, fmt.Errorf("read index %s: %w", d, err)
	}
	if len(im.Manifests) == 0 {
		return mergeInput{}, fmt.Errorf("index %s lists no images: merge the digests of images", d)
	}
	for _, m := range im.Manifests {
		if !m.MediaType.IsImage() {
			return mergeInput{}, fmt.Errorf("index %s lists %s, a %q, not an image: merge the digests of images", d, m.Digest, m.MediaType)
		}
	}
	for _, m := range im.Manifests {
		pm, got, err := readImageManifest(ctx, rd.r, rd.t, m.Digest)
		if err != nil {
			platform := ""
			if m.Platform != nil {
				platform = PlatformName(*m.Platform)
			}
			return mergeInput{}, rd.failed(fmt.Sprintf("image %s (in index %s)", m.Digest, d), platform, err)
		}
		if err := platformImage(m.Digest, pm, m.Platform); err != nil {
			return mergeInput{}, fmt.Errorf("index %s: %w", d, err)
		}
		rd.layers[m.Digest] = layerResults(pm)
		rd.images[m.Digest] = got
		rd.blobs = append(rd.blobs, blobsOf(m.Platform, m.Digest, pm)...)
	}
	return mergeInput{digest: d, index: true, manifests: im.Manifests, annots: im.Annotations}, nil
}

// image reads the image d, given on its own, whose body is raw.
func (rd *inputReader) image(ctx context.Context, d string, raw []byte, mt types.MediaType) (mergeInput, error) {
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return mergeInput{}, fmt.Errorf("read manifest %s: %w", d, err)
	}
	cfg, err := rd.r.Config(ctx, m.Config)
	if err != nil {
		return mergeInput{}, rd.failed(fmt.Sprintf("the config blob %s of image %s", m.Config.Digest, d), "", err)
	}
	rd.read[idOf(m.Config)] = true
	p := cfg.Platform()
	hash, _ := v1.NewHash(d)
	if err := platformImage(hash, m, p); err != nil {
		return mergeInput{}, err
	}
	rd.layers[hash] = layerResults(m)
	rd.images[hash] = sourced{raw, mt}
	rd.blobs = append(rd.blobs, blobsOf(p, hash, m)...)
	return mergeInput{digest: d, manifests: []v1.Descriptor{{MediaType: mt, Size: int64(len(raw)), Digest: hash, Platform: p}}}, nil
}

// failed explains a failure to read what from the repository, and says
// what to do: build the platform again when the registry no longer has
// it (its build pushes it again), else run the merge again.
func (rd *inputReader) failed(what, platform string, err error) error {
	doing := "read "
	if platform != "" {
		doing += "the " + platform + " "
	}
	doing += what + " from " + rd.t.Repo.String()
	e := rd.l.ExplainDoing(err, rd.t.Repo, doing)
	var re *registry.RegistryError
	if errors.As(e, &re) && re.Kind != registry.OtherError {
		return &explained{e.Error(), e} // the hints name what to change
	}
	advice := "run the merge again"
	if registry.IsNotFound(err) {
		advice = "build that platform again (it pushes its image again) and merge the digest it prints"
		if platform != "" {
			advice = fmt.Sprintf("run the %s build again (it pushes its image again) and merge the digest it prints", platform)
		}
	}
	return &explained{e.Error() + ": " + advice, e}
}

// combine joins the inputs' platform images into one list, keeping the
// index annotations they all agree on and warning of each other one. An
// image given alone that an index given lists too is that index's; an
// image reached twice is merged once; two images for one platform are
// refused, naming both.
func combine(inputs []mergeInput) (*mergeRead, error) {
	inIndex := map[v1.Hash]bool{}
	for _, in := range inputs {
		for _, m := range in.manifests {
			if in.index {
				inIndex[m.Digest] = true
			}
		}
	}
	out := &mergeRead{}
	byPlatform := map[string]string{} // platform: the image for it, and where it came from
	seen := map[v1.Hash]bool{}
	var kept []mergeInput
	for _, in := range inputs {
		if !in.index && inIndex[in.manifests[0].Digest] {
			continue
		}
		fresh := 0
		for _, m := range in.manifests {
			if m.Platform == nil {
				return nil, fmt.Errorf("manifest %s in %s has no platform", m.Digest, in.digest)
			}
			if seen[m.Digest] {
				continue
			}
			// As PlatformName reads them: linux/arm64 is linux/arm64/v8.
			key := PlatformName(*m.Platform)
			from := m.Digest.String()
			if in.index {
				from += " (in index " + in.digest + ")"
			}
			if other, ok := byPlatform[key]; ok {
				return nil, fmt.Errorf("two images for %s among the digests to merge: %s and %s; merge one image per platform", key, other, from)
			}
			byPlatform[key] = from
			seen[m.Digest] = true
			fresh++
			// Descriptor annotations travel with the image, so the
			// merged index is the one a single build makes.
			out.manifests = append(out.manifests, v1.Descriptor{MediaType: m.MediaType, Size: m.Size, Digest: m.Digest, Platform: m.Platform, Annotations: m.Annotations})
		}
		if fresh > 0 {
			kept = append(kept, in)
		}
	}
	out.annotations, out.warnings = agreed(kept)
	return out, nil
}

// agreed are the index annotations all inputs give the same value, and a
// warning line for each key the indexes among them do not: the merged
// index leaves it out. An image given alone has no index annotations,
// so with one the index has none: one line says so, rather than a
// disagreement for every key.
func agreed(inputs []mergeInput) (map[string]string, []string) {
	if len(inputs) == 0 {
		return nil, nil
	}
	var indexes, alone []mergeInput
	for _, in := range inputs {
		if in.index {
			indexes = append(indexes, in)
		} else {
			alone = append(alone, in)
		}
	}
	if len(alone) > 0 {
		var names []string
		annotated := false
		for _, in := range indexes {
			annotated = annotated || len(in.annots) > 0
		}
		for _, in := range alone {
			names = append(names, in.digest+" ("+inputPlatforms(in)+")")
		}
		if !annotated {
			return nil, nil
		}
		return nil, []string{fmt.Sprintf("warning: %s given alone, not by the index its build pushed, so the merged index has none of the builds' index annotations (the nixpkgs and flakes they were built from): merge the index digests the builds printed to keep them", strings.Join(names, ", "))}
	}
	keys := map[string]bool{}
	for _, in := range inputs {
		for k := range in.annots {
			keys[k] = true
		}
	}
	out := map[string]string{}
	var warnings []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		// An empty value is no annotation (RawIndex leaves it out).
		v, same := inputs[0].annots[k], true
		for _, in := range inputs[1:] {
			same = same && in.annots[k] == v
		}
		if same {
			out[k] = v
			continue
		}
		var each []string
		for _, in := range inputs {
			shown := "not set"
			if v := in.annots[k]; v != "" {
				shown = shownValue(v)
			}
			each = append(each, inputPlatforms(in)+": "+shown)
		}
		warnings = append(warnings, fmt.Sprintf("warning: the images disagree on %s (%s): the index leaves it out; build every platform from the same sources to get one build's index", shownValue(k), strings.Join(each, ", ")))
	}
	return out, warnings
}

// inputPlatforms names the platforms of an input, e.g. linux/amd64 or
// linux/amd64+linux/arm64.
func inputPlatforms(in mergeInput) string {
	var names []string
	for _, m := range in.manifests {
		names = append(names, PlatformName(*m.Platform))
	}
	return strings.Join(names, "+")
}

// shownValue is an annotation's key or value as a log line shows it: on
// one line, printable, its credentials redacted where it is a flake
// reference, and cut when long.
func shownValue(v string) string {
	return registry.Quoted(flakeref.Redacted(v), 300)
}

// readImageManifest reads the image manifest d of t.Repo.
func readImageManifest(ctx context.Context, r *registry.Reader, t Target, d v1.Hash) (*v1.Manifest, sourced, error) {
	raw, mt, err := r.Manifest(ctx, t.Repo.Digest(d.String()))
	if err != nil {
		return nil, sourced{}, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, sourced{}, fmt.Errorf("read manifest %s: %w", d, err)
	}
	return m, sourced{raw, mt}, nil
}

// platformImage refuses an image manifest d that is no platform's image:
// nixery's cache record (a manifest for no platform, which a runtime
// would never pick) or one whose platform p is missing or unknown.
func platformImage(d v1.Hash, m *v1.Manifest, p *v1.Platform) error {
	if _, ok := m.Annotations[cache.AnnotationRecord]; ok {
		return &explained{fmt.Sprintf("%s is nixery's cache record (the tag %s), not a platform image: merge the digests the per-platform builds printed", d, cache.RecordTag), nil}
	}
	if p == nil || p.OS == "" || p.Architecture == "" || p.OS == "unknown" || p.Architecture == "unknown" {
		return &explained{fmt.Sprintf("image %s has no usable platform in its config: merge the digests the per-platform builds printed", d), nil}
	}
	return nil
}

// platformBlob is a config or layer blob of a platform image to merge.
type platformBlob struct {
	platform string
	image    v1.Hash
	what     string // "config" or "layer"
	desc     v1.Descriptor
}

// blobID is a blob as a HEAD checks it: its digest and size.
type blobID struct {
	digest v1.Hash
	size   int64
}

func idOf(d v1.Descriptor) blobID { return blobID{d.Digest, d.Size} }

// unread are the blobs still to ask the registry about: none that was
// read, and each once (the first image naming it names it in an error).
func unread(blobs []platformBlob, read map[blobID]bool) []platformBlob {
	skip := maps.Clone(read)
	var out []platformBlob
	for _, b := range blobs {
		if id := idOf(b.desc); !skip[id] {
			skip[id] = true
			out = append(out, b)
		}
	}
	return out
}

// blobsOf lists the config and layer blobs of the image manifest m.
func blobsOf(p *v1.Platform, d v1.Hash, m *v1.Manifest) []platformBlob {
	name := PlatformName(*p)
	out := []platformBlob{{name, d, "config", m.Config}}
	for _, l := range m.Layers {
		out = append(out, platformBlob{name, d, "layer", l})
	}
	return out
}

// checkBlobs asks the registry, a few blobs at a time, whether it holds
// each of blobs with its size (a HEAD each, nothing downloaded). The
// first one missing fails the merge, naming its platform: that
// platform's build pushes it again. One the registry gave no clear
// answer about fails it too, asking for the merge to be run again.
func checkBlobs(ctx context.Context, r *registry.Reader, t Target, blobs []platformBlob, o Options) error {
	held := make([]bool, len(blobs))
	err := parallel.Do(ctx, registry.ReadJobs, len(blobs), func(ctx context.Context, i int) error {
		var err error
		held[i], err = r.BlobHeld(ctx, blobs[i].desc)
		if err != nil && ctx.Err() == nil {
			b := blobs[i]
			return &explained{fmt.Sprintf("could not check that %s holds the %s blob %s of the %s image %s (%v): run the merge again", t.Repo, b.what, b.desc.Digest, b.platform, b.image, err), err}
		}
		return err
	})
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return &explained{fmt.Sprintf("check the blobs of the images to merge in %s: not done within %s", t.Repo, o.WithDefaults().RegistryTimeout), err}
		}
		return err
	}
	for i, b := range blobs {
		if !held[i] {
			return &explained{fmt.Sprintf("the %s image %s names the %s blob %s (%d bytes), which %s does not hold: run the %s build again (it pushes its blobs again) and merge the digest it prints", b.platform, b.image, b.what, b.desc.Digest, b.desc.Size, t.Repo, b.platform), nil}
		}
	}
	return nil
}

// sameKind checks that a manifest's body is what the registry's media
// type says: an index lists manifests, an image has a config, and a
// mediaType in the body is the same. A registry that says "index" for an
// image would otherwise make it an index of nothing, and its platform
// would vanish from the merge.
func sameKind(raw []byte, mt types.MediaType) error {
	var body struct {
		MediaType types.MediaType `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
		Config    json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return fmt.Errorf("not a manifest: %w", err)
	}
	switch {
	case body.MediaType != "" && body.MediaType != mt:
		return fmt.Errorf("the registry says it is a %q, but it says it is a %q", mt, body.MediaType)
	case mt.IsIndex() && body.Manifests == nil:
		return fmt.Errorf("the registry says it is a %q, but it lists no manifests", mt)
	case mt.IsImage() && body.Config == nil:
		return fmt.Errorf("the registry says it is a %q, but it has no config", mt)
	}
	return nil
}

// MergeDigest returns the digest of an image to merge into t, given as
// a digest or as NAME@DIGEST (what a build prints and the action's image
// output holds). NAME must be t's repository: Merge reads from there only.
func MergeDigest(t Target, s string) (string, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "@") {
		if _, err := v1.NewHash(s); err != nil {
			return "", fmt.Errorf("%q is not a digest (sha256:<64 hex digits>) or NAME@DIGEST", s)
		}
		return s, nil
	}
	if err := registry.CheckRefForm("merge digest", s); err != nil {
		return "", err
	}
	ref, err := name.NewDigest(s)
	if err != nil {
		return "", fmt.Errorf("%q is not NAME@DIGEST (NAME@sha256:<64 hex digits>): %v", s, err)
	}
	if ref.Context().Name() != t.Repo.Name() {
		return "", fmt.Errorf("%s is in %s, not in %s, the repository to merge in: per-platform builds must push to the same repository", s, ref.Context().Name(), t.Repo.Name())
	}
	return ref.DigestStr(), nil
}

// explained is an error whose text says all a user needs (Merge adds
// nothing to it); its cause stays reachable through errors.Is and
// errors.As.
type explained struct {
	msg   string
	cause error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.cause }
