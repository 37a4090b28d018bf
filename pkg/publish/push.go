package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/nixery-action/nixery-action/internal/parallel"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// Options tune Push, Merge and the Registry destination. The zero value
// pushes with the docker config's credentials and the defaults.
type Options struct {
	// Options say how to talk to registries: credentials, retries,
	// timeouts.
	registry.Options

	// Jobs is how many blobs are uploaded at once; 0 means DefaultJobs.
	Jobs int

	// OnLayer, when set, is told about each distinct layer blob as soon
	// as it is in the registry. Calls do not overlap.
	OnLayer func(LayerResult)

	// OnUpload, when set, is told how an upload goes as its bytes are
	// read for sending. It is called from several goroutines at once.
	OnUpload func(UploadProgress)

	// OnRetry, when set, is told of each registry request (or upload)
	// about to be tried again, in one line naming the repository, what
	// failed and the wait, e.g. "push to r/x: blob sha256:ab…: registry
	// answered 500 Internal Server Error; retrying in 2s (2/5)". It is
	// called from several goroutines at once.
	OnRetry func(line string)

	// OnWarning, when set, is told in one line, starting "warning: ",
	// of what goes on although it is likely not what was meant: a
	// merge's images disagreeing on an index annotation, which the
	// merged index then leaves out.
	OnWarning func(line string)

	// OnMerging, when set, is told the platforms of the distinct images
	// a merge read, before it writes anything.
	OnMerging func(platforms []string)

	// mountFrom, when set, is a repository of the same registry that
	// holds the blobs already: they are mounted from it, not uploaded
	// (Registries sets it).
	mountFrom *name.Repository
}

// DefaultJobs is the default number of concurrent uploads.
const DefaultJobs = 4

// Validate checks the options' numbers.
func (o Options) Validate() error {
	if o.Jobs < 0 {
		return fmt.Errorf("%d concurrent uploads is negative: give at least 1 (0 means the default, %d)", o.Jobs, DefaultJobs)
	}
	return o.Options.Validate()
}

// Push writes idx to t.Repo: first every layer and config blob (those the
// registry has are skipped), then each platform's manifest by digest, and
// last the index under each tag (by digest where there are none; a PUT
// under a tag stores it by digest too). An error is one
// line naming the cause, and holds no credentials. It is
// NewRegistry(t, o).Write without layers offered early or referrers.
func Push(ctx context.Context, t Target, idx v1.ImageIndex, o Options) (*Result, error) {
	r := NewRegistry(t, o)
	defer r.Close()
	return r.Write(ctx, idx, nil)
}

// earlyFunc reports how an upload started before the push ended: whether
// the blob was sent, and whether it got there at all (ok false: upload it
// now). An err is a failure the early upload's retries gave up on: the
// push ends with it rather than trying all over again.
type earlyFunc func(ctx context.Context, d v1.Hash) (sent, ok bool, err error)

// headFunc tells the digest a tag names: found false where there is
// none, an error where the registry could not tell.
type headFunc func(ctx context.Context, tag name.Reference) (d v1.Hash, found bool, err error)

// push writes idx in the order that makes its tags the commit point:
//
//  1. the blobs;
//  2. the platform manifests;
//  3. attach: the referrers of the platform manifests;
//  4. the index under each tag, or by digest where there are none.
//
// A failure at any step leaves every tag as it was, and running again
// completes the push, finding what is there already. When the tags name
// this very index already (an unchanged rebuild), only what attach finds
// missing is written.
func push(ctx context.Context, t Target, idx v1.ImageIndex, o Options, pusher *remote.Pusher, head headFunc, early earlyFunc, attach func(context.Context) error) (*Result, error) {
	manifests, images, err := describe(idx)
	if err != nil {
		return nil, err
	}
	digest, err := idx.Digest()
	if err != nil {
		return nil, err
	}

	jobs := o.jobs()
	// Whether the tags name this very index already is asked while the
	// blobs are checked.
	tagged := make(chan bool, 1)
	go func() { tagged <- len(t.Tags) > 0 && alreadyTagged(ctx, t, digest, head) }()

	blobs, err := distinctBlobs(manifests, images, o.OnUpload)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	err = parallel.Do(ctx, jobs, len(blobs), func(ctx context.Context, i int) error {
		b := blobs[i]
		if sent, ok, err := early(ctx, b.digest); err != nil {
			return err
		} else if ok {
			b.sent.Store(sent)
		} else if err := uploadBlob(ctx, pusher, t.Repo, b, o); err != nil {
			return err
		}
		if b.report != nil && o.OnLayer != nil {
			r := *b.report
			r.Uploaded = b.sent.Load()
			mu.Lock()
			defer mu.Unlock()
			o.OnLayer(r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	done := <-tagged
	if !done {
		// The blobs are there, so these only PUT manifests (or find
		// them there already).
		err := parallel.Do(ctx, jobs, len(images), func(ctx context.Context, n int) error {
			what := "manifest " + short(manifests[n].Digest)
			return putAgain(ctx, o, t.Repo, what, func(ctx context.Context) error {
				return pusher.Push(ctx, t.Repo.Digest(manifests[n].Digest), images[n])
			})
		})
		if err != nil {
			return nil, err
		}
	}
	if attach != nil {
		if err := attach(ctx); err != nil {
			return nil, err
		}
	}
	if !done {
		put := func(ctx context.Context) error { return putIndex(ctx, pusher, t, digest, idx, head) }
		if err := putAgain(ctx, o, t.Repo, "index "+short(digest.String()), put); err != nil {
			return nil, err
		}
	}

	sent := map[string]bool{}
	for _, b := range blobs {
		sent[b.digest.String()] = b.sent.Load()
	}
	markUploaded(manifests, func(d string) bool { return sent[d] })
	return pushed(t, digest, manifests), nil
}

// putAgain PUTs a manifest, and again, as the retry policy paces it,
// while the registry refuses it for blobs or manifests it does not know.
// Registries can say so of blobs just written when several builds push
// the same blobs to one repository at once (Docker's registry did in e2e
// TestConcurrentBuilds; moby/moby#22854); asked again, they find them.
// The pusher does not upload again what it uploaded.
func putAgain(ctx context.Context, o Options, repo name.Repository, what string, put func(context.Context) error) error {
	ctx = o.noticing(ctx, repo, what)
	return registry.Retry(ctx, o.RetryBackoff(), registry.BlobNotLinked, func(ctx context.Context, _ int) error { return put(ctx) })
}

// noticing is ctx whose retries o.OnRetry is told of, as lines naming
// repo and what is being written.
func (o Options) noticing(ctx context.Context, repo name.Repository, what string) context.Context {
	if o.OnRetry == nil {
		return ctx
	}
	prefix := "push to " + repo.String() + ": "
	if what != "" {
		prefix += what + ": "
	}
	return registry.OnRetry(ctx, func(r registry.Retrying) { o.OnRetry(prefix + r.String()) })
}

// short is a digest cut to its first 12 hex digits, for a log line.
func short(digest string) string {
	algo, hex, ok := strings.Cut(digest, ":")
	if !ok || len(hex) <= 12 {
		return digest
	}
	return algo + ":" + hex[:12] + "…"
}

// putIndex writes the index under each of t's tags, or by digest where
// there are none: the last writes, the commit point of a publish.
func putIndex(ctx context.Context, pusher *remote.Pusher, t Target, digest v1.Hash, idx remote.Taggable, head headFunc) error {
	if len(t.Tags) == 0 {
		return pusher.Put(ctx, t.Repo.Digest(digest.String()), idx)
	}
	// A PUT under a tag stores the index and names it at once: no PUT by
	// digest first.
	names := t.TagNames()
	for i, tag := range t.Tags {
		err := pusher.Put(ctx, tag, idx)
		if err == nil {
			continue
		}
		written, unsure := landed(ctx, err, head, tag, digest)
		switch {
		case written:
			continue
		case unsure:
			return &tagsError{moved: names[:i], unsure: names[i], notMoved: names[i+1:], err: err}
		case i == 0:
			return err // no tag moved
		}
		return &tagsError{moved: names[:i], notMoved: names[i:], err: err}
	}
	return nil
}

// landed tells whether a tag's PUT that failed with no answer, or with
// the registry's own failure, took effect all the same: the answer lost
// after the registry wrote the tag (a dropped connection, an answer cut
// short). Told as failed, the push would report tags it had moved as
// not moved. unsure: the registry could not tell either.
func landed(ctx context.Context, err error, head headFunc, tag name.Tag, digest v1.Hash) (written, unsure bool) {
	if registry.Refused(err) {
		return false, false
	}
	// A registry that stopped answering has had its minutes already.
	ctx, cancel := context.WithTimeout(registry.Aside(ctx), registry.CheckTimeout)
	defer cancel()
	d, found, herr := head(ctx, tag)
	return found && d == digest, herr != nil
}

// tagsError is a failure to write the index under a tag after others
// were written, or under one that may have been: moved name the new
// index now, unsure (if not "") may, and notMoved do not.
type tagsError struct {
	moved, notMoved []string
	unsure          string
	err             error
}

func (e *tagsError) Error() string { return e.err.Error() }
func (e *tagsError) Unwrap() error { return e.err }

// explainTags is l.Explain(err), saying which tags moved and which did
// not when only some were written; again says what to run again.
func explainTags(err error, l registry.Login, repo name.Repository, again string) error {
	e := l.Explain(err, repo)
	var te *tagsError
	if !errors.As(err, &te) {
		return e
	}
	var unsure []string
	if te.unsure != "" {
		unsure = []string{te.unsure}
	}
	return &explained{fmt.Sprintf("%s%s (%s)", e, tagsSaid(te.moved, unsure, te.notMoved), again), e}
}

// tagsSaid is "; tags moved: …; may have moved: …; not moved: …", each
// part where it names a tag.
func tagsSaid(moved, unsure, notMoved []string) string {
	var s string
	for _, part := range []struct {
		what string
		tags []string
	}{{"tags moved", moved}, {"may have moved", unsure}, {"not moved", notMoved}} {
		if len(part.tags) > 0 {
			s += "; " + part.what + ": " + strings.Join(part.tags, ", ")
		}
	}
	return s
}

// pushed is the result of an index pushed to t.
func pushed(t Target, digest v1.Hash, manifests []ManifestResult) *Result {
	return &Result{
		Image:     t.Repo.Name(),
		Digest:    digest.String(),
		Reference: t.Repo.Digest(digest.String()).String(),
		Tags:      t.TagNames(),
		Pushed:    true,
		Manifests: manifests,
	}
}

// uploadBlob uploads one blob, starting over when the upload itself
// breaks off: a stream cannot be replayed request by request, so the
// client library gives up on a connection dropped mid-upload, but a new
// upload session from the start of the blob succeeds.
// A blob of o.mountFrom is mounted from it where the registry can: one
// request instead of the upload.
func uploadBlob(ctx context.Context, pusher *remote.Pusher, repo name.Repository, b *trackedBlob, o Options) error {
	var l v1.Layer = b
	if b.digest.Hex != "" {
		l = mountable(o.mountFrom, repo, b, b.digest)
	}
	what := "blob being packed" // a growing blob's digest is not known yet
	if b.digest.Hex != "" {
		what = "blob " + short(b.digest.String())
	}
	ctx = o.noticing(ctx, repo, what)
	return registry.Retry(ctx, o.RetryBackoff(), registry.Transient, func(ctx context.Context, _ int) error { return pusher.Upload(ctx, repo, l) })
}

// mountable is the blob l, whose digest is d, mounted from the
// repository from where the registry can (one of repo's registry).
func mountable(from *name.Repository, repo name.Repository, l v1.Layer, d v1.Hash) v1.Layer {
	if from == nil || from.RegistryStr() != repo.RegistryStr() {
		return l
	}
	return &remote.MountableLayer{Layer: l, Reference: from.Digest(d.String())}
}

// alreadyTagged reports whether every tag of t names the index digest.
func alreadyTagged(ctx context.Context, t Target, digest v1.Hash, head headFunc) bool {
	for _, tag := range t.Tags {
		if d, found, err := head(ctx, tag); err != nil || !found || d != digest {
			return false
		}
	}
	return true
}

func (o Options) jobs() int {
	if o.Jobs <= 0 {
		return DefaultJobs
	}
	return o.Jobs
}

// remoteOptions are the registry client's options for o and a login.
func (o Options) remoteOptions(ctx context.Context, l registry.Login) []remote.Option {
	return o.Remote(ctx, l, o.jobs())
}

// trackedBlob notes whether the registry library opened the blob: it
// does so only after the registry said it lacks the blob, to send it.
type trackedBlob struct {
	v1.Layer
	digest   v1.Hash
	sent     atomic.Bool
	report   *LayerResult // nil for configs
	onUpload func(UploadProgress)
}

func (b *trackedBlob) Compressed() (io.ReadCloser, error) {
	b.sent.Store(true)
	rc, err := b.Layer.Compressed()
	if err != nil || b.onUpload == nil {
		return rc, err
	}
	total, err := b.Layer.Size()
	if err != nil {
		total = -1 // still growing
	}
	return &uploadReader{rc: rc, b: b, total: total}, nil
}

// UploadProgress is how far the upload of a blob is.
type UploadProgress struct {
	Digest v1.Hash // zero while a growing blob's digest is unknown
	Blob   any     // which upload this is (comparable), to tell them apart
	Sent   int64
	Total  int64 // -1 while unknown
	Done   bool  // the whole blob was read
}

// uploadReader reports the bytes of a blob as they are read for sending.
type uploadReader struct {
	rc    io.ReadCloser
	b     *trackedBlob
	total int64
	sent  int64
}

func (u *uploadReader) Read(p []byte) (int, error) {
	n, err := u.rc.Read(p)
	u.sent += int64(n)
	if n > 0 || err == io.EOF {
		pr := UploadProgress{Blob: u.b, Sent: u.sent, Total: u.total, Done: err == io.EOF}
		if d, derr := u.b.Layer.Digest(); derr == nil {
			pr.Digest = d
			if pr.Done {
				pr.Total = u.sent
			}
		}
		u.b.onUpload(pr)
	}
	return n, err
}

func (u *uploadReader) Close() error { return u.rc.Close() }

// distinctBlobs lists each layer and config blob of the images once,
// layers first.
func distinctBlobs(manifests []ManifestResult, images []v1.Image, onUpload func(UploadProgress)) ([]*trackedBlob, error) {
	var blobs, configs []*trackedBlob
	seen := map[v1.Hash]bool{}
	for n, img := range images {
		layers, err := img.Layers()
		if err != nil {
			return nil, err
		}
		for i, l := range layers {
			d, err := l.Digest()
			if err != nil {
				return nil, err
			}
			if seen[d] {
				continue
			}
			seen[d] = true
			report := manifests[n].Layers[i]
			blobs = append(blobs, &trackedBlob{Layer: l, digest: d, report: &report, onUpload: onUpload})
		}
		cl, err := partial.ConfigLayer(img)
		if err != nil {
			return nil, err
		}
		d, err := cl.Digest()
		if err != nil {
			return nil, err
		}
		if !seen[d] {
			seen[d] = true
			configs = append(configs, &trackedBlob{Layer: cl, digest: d})
		}
	}
	return append(blobs, configs...), nil
}
