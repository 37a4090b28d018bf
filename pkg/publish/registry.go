package publish

import (
	"context"
	"errors"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/semaphore"

	"github.com/nixery-action/nixery-action/pkg/registry"
)

// Registry pushes to a repository under the target's tags (or by digest
// when it has none). Offered layers are uploaded at once, Jobs at a time.
type Registry struct {
	target Target
	opts   Options

	loginOnce sync.Once
	login     registry.Login
	loginErr  error

	setupOnce sync.Once
	ropts     []remote.Option
	pusher    *remote.Pusher
	setupErr  error

	readerOnce sync.Once
	rd         *registry.Reader
	readerErr  error

	mu    sync.Mutex
	early map[v1.Hash]*earlyUpload
	jobs  *semaphore.Weighted // the uploads that run at once
	wg    sync.WaitGroup
}

// earlyUpload is an upload started by Offer.
type earlyUpload struct {
	done chan struct{}
	sent bool // the blob was sent, not found in the registry
	err  error
}

// NewRegistry returns the destination that pushes to t.
func NewRegistry(t Target, o Options) *Registry {
	return &Registry{target: t, opts: o, early: map[v1.Hash]*earlyUpload{}, jobs: semaphore.NewWeighted(int64(o.jobs()))}
}

// Target is the repository and tags pushed to.
func (r *Registry) Target() Target { return r.target }

// ImageName is the repository's name.
func (r *Registry) ImageName() string { return r.target.Repo.Name() }

// Holds marks blob d present when repo is the target repository.
func (r *Registry) Holds(repo name.Repository, d v1.Hash, _ int64) bool {
	if repo.String() != r.target.Repo.String() {
		return false
	}
	r.Present(d)
	return true
}

func (r *Registry) String() string { return r.target.Repo.String() }

// loggedIn checks the options and resolves the credentials, once: a
// check before the work and the push after it share one login (one run
// of a credential helper).
func (r *Registry) loggedIn(ctx context.Context) (registry.Login, error) {
	r.loginOnce.Do(func() {
		if r.loginErr = r.opts.Validate(); r.loginErr != nil {
			return
		}
		r.login, r.loginErr = r.opts.Credentials.Login(ctx, r.target.Repo, true)
	})
	return r.login, r.loginErr
}

// setup resolves the credentials and opens the pusher, once.
func (r *Registry) setup(ctx context.Context) (*remote.Pusher, error) {
	r.setupOnce.Do(func() {
		if _, r.setupErr = r.loggedIn(ctx); r.setupErr != nil {
			return
		}
		r.ropts = r.opts.remoteOptions(ctx, r.login)
		r.pusher, r.setupErr = remote.NewPusher(r.ropts...)
	})
	return r.pusher, r.setupErr
}

// reader reads the target repository with the push's login. It is made
// once: its token and connections serve every read after the push (the
// referrers already attached, the cache record).
func (r *Registry) reader(ctx context.Context) (*registry.Reader, error) {
	if _, err := r.setup(ctx); err != nil {
		return nil, err
	}
	r.readerOnce.Do(func() {
		r.rd, r.readerErr = registry.NewReader(ctx, r.target.Repo, r.login, r.opts.Options)
	})
	return r.rd, r.readerErr
}

// Offer starts uploading l unless it was offered before.
func (r *Registry) Offer(ctx context.Context, l v1.Layer) {
	d, err := l.Digest()
	if err != nil {
		return
	}
	r.mu.Lock()
	if _, ok := r.early[d]; ok {
		r.mu.Unlock()
		return
	}
	e := &earlyUpload{done: make(chan struct{})}
	r.early[d] = e
	r.wg.Add(1)
	r.mu.Unlock()
	go r.upload(ctx, e, &trackedBlob{Layer: l, digest: d, onUpload: r.opts.OnUpload})
}

// Present records that the target repository holds blob d already, as
// the build's cache read just found: offering it is then a no-op, and
// Write does not ask for it again. Were it gone by then, the registry
// would refuse the manifest that needs it, before any tag is written.
func (r *Registry) Present(d v1.Hash) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.early[d]; !ok {
		e := &earlyUpload{done: make(chan struct{})}
		close(e.done)
		r.early[d] = e
	}
}

// upload sends b, a job slot at a time, and records how in e; r.wg was
// added to for it.
func (r *Registry) upload(ctx context.Context, e *earlyUpload, b *trackedBlob) {
	defer r.wg.Done()
	defer close(e.done)
	if e.err = r.jobs.Acquire(ctx, 1); e.err != nil {
		return // cancelled while waiting
	}
	defer r.jobs.Release(1)
	pusher, err := r.setup(ctx)
	if err != nil {
		e.err = err
		return
	}
	e.err = uploadBlob(ctx, pusher, r.target.Repo, b, r.opts)
	e.sent = b.sent.Load()
}

// earlyResult waits for the early upload of d, if there was one. Its
// failure is final (err) when its retries gave up on the registry;
// otherwise (it was cancelled, or a stream was refused) the blob is
// uploaded again.
func (r *Registry) earlyResult(ctx context.Context, d v1.Hash) (sent, ok bool, err error) {
	r.mu.Lock()
	e := r.early[d]
	r.mu.Unlock()
	if e == nil {
		return false, false, nil
	}
	select {
	case <-e.done:
	case <-ctx.Done():
		return false, false, nil
	}
	if registry.Tries(e.err) > 0 {
		return false, false, e.err
	}
	return e.sent, e.err == nil, nil
}

// head tells the digest tag names in the target repository.
func (r *Registry) head(ctx context.Context, tag name.Reference) (v1.Hash, bool, error) {
	rd, err := r.reader(ctx)
	if err != nil {
		return v1.Hash{}, false, err
	}
	return rd.Resolve(ctx, tag)
}

// Write pushes idx: the blobs an early upload did not get there, the
// manifests, the referrers refs, and last the index under each tag (see
// push). Referrers already attached (an unchanged
// rebuild) are not written again.
func (r *Registry) Write(ctx context.Context, idx v1.ImageIndex, refs Attachments) (*Result, error) {
	if _, err := r.setup(ctx); err != nil {
		return nil, err
	}
	res, err := r.write(ctx, idx, refs)
	if err != nil {
		var aerr *AttachError
		if errors.As(err, &aerr) {
			return nil, err // explained already
		}
		return nil, explainTags(err, r.login, r.target.Repo, "run the build again")
	}
	return res, nil
}

// write is Write leaving its failures unexplained, but for a referrer's
// (an *AttachError), which says all already.
func (r *Registry) write(ctx context.Context, idx v1.ImageIndex, refs Attachments) (*Result, error) {
	pusher, err := r.setup(ctx)
	if err != nil {
		return nil, err
	}
	ctx = r.opts.noticing(ctx, r.target.Repo, "")
	attached := r.attached(ctx, refs) // asked while the blobs are checked
	attach := func(ctx context.Context) error { return r.attachMissing(ctx, refs, attached()) }
	res, err := push(ctx, r.target, idx, r.opts, pusher, r.head, r.earlyResult, attach)
	if err != nil {
		return nil, err
	}
	res.ReferrersAttached = len(refs) > 0
	return res, nil
}

// Close waits for the uploads Offer started.
func (r *Registry) Close() { r.wg.Wait() }
