package publish

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nixery-action/nixery-action/pkg/cache"
)

// Registries pushes one index to several repositories, each under its own
// tags, as ko's MultiPublisher does: the same bytes, so the same digest
// everywhere. The first repository is the image's name (in SBOMs, the
// result) and where the build's cache comes from. Layers are offered to
// the first repository of each registry as soon as they are packed; the
// other repositories of that registry mount them from it when the index
// is written, which costs one request per blob instead of an upload.
// Each repository gets the referrers and its cache record, and its tags
// only once everything is there; a failure stops at the repository it
// happened in, and names it.
type Registries struct {
	regs []*Registry
	// early tells, per registry, whether it takes layers as they are
	// packed (the first repository of its registry) or mounts them.
	early []bool
	// from is, per registry, the index of the one it mounts from (its
	// own for the first of a registry).
	from []int
}

// NewRegistries returns the destination that pushes to every target, with
// the same options (each login is chosen for its own registry: see
// registry.Credentials). There must be at least one target.
func NewRegistries(targets []Target, o Options) *Registries {
	m := &Registries{}
	first := map[string]int{}
	for i, t := range targets {
		opts := o
		host := t.Repo.RegistryStr()
		from, seen := first[host]
		if seen {
			opts.mountFrom = &targets[from].Repo
		} else {
			first[host], from = i, i
		}
		m.regs = append(m.regs, NewRegistry(t, opts))
		m.early = append(m.early, !seen)
		m.from = append(m.from, from)
	}
	return m
}

func (m *Registries) String() string {
	names := make([]string, len(m.regs))
	for i, r := range m.regs {
		names[i] = r.String()
	}
	return strings.Join(names, ", ")
}

// ImageName is the first repository's name.
func (m *Registries) ImageName() string { return m.regs[0].ImageName() }

// Check checks every repository, and says which one failed.
func (m *Registries) Check(ctx context.Context) error {
	for _, r := range m.regs {
		if err := r.Check(ctx); err != nil {
			return m.which(r, err)
		}
	}
	return nil
}

// Offer starts uploading l to the first repository of each registry.
func (m *Registries) Offer(ctx context.Context, l v1.Layer) {
	for i, r := range m.regs {
		if m.early[i] {
			r.Offer(ctx, l)
		}
	}
}

// Stream streams g to the first repository of each registry.
func (m *Registries) Stream(ctx context.Context, g *Growing) bool {
	for i, r := range m.regs {
		if m.early[i] && !r.Stream(ctx, g) {
			// A Registry always streams; were one not to, the blob
			// would be offered to all once packed.
			return false
		}
	}
	return true
}

// Holds tells whether every repository holds d already or will mount it
// from one that does (the repository repo marks it present); otherwise
// the build fetches the blob to offer it to those that do not.
func (m *Registries) Holds(repo name.Repository, d v1.Hash, size int64) bool {
	held := make([]bool, len(m.regs))
	for i, r := range m.regs {
		if m.early[i] {
			held[i] = r.Holds(repo, d, size)
		}
	}
	for i := range m.regs {
		if !held[m.from[i]] {
			return false
		}
	}
	return true
}

// Write writes idx and refs to each repository in turn (the first of a
// registry before the ones that mount from it). The result is the first
// repository's, with every repository listed in Repositories.
func (m *Registries) Write(ctx context.Context, idx v1.ImageIndex, refs Attachments) (*Result, error) {
	if len(m.regs) == 1 {
		return m.regs[0].Write(ctx, idx, refs)
	}
	results, err := writeEach(ctx, m.regs, nil, idx, refs, "run the build again")
	if err != nil {
		return nil, err
	}
	first := results[0]
	for _, res := range results {
		first.Repositories = append(first.Repositories, repositoryOf(res))
	}
	return first, nil
}

// writeEach writes idx and refs to each of regs in turn, after done,
// whose tags moved already. A failure stops at the repository it happened
// in and says which tags moved and which did not; again says what to run
// again.
func writeEach(ctx context.Context, regs []*Registry, done []Target, idx v1.ImageIndex, refs Attachments, again string) ([]*Result, error) {
	done = append([]Target(nil), done...)
	var out []*Result
	for i, r := range regs {
		if _, err := r.setup(ctx); err != nil {
			return nil, naming(r, err)
		}
		res, err := r.write(ctx, idx, refs)
		if err != nil {
			return nil, failureIn(err, r, done, targetsOf(regs[i:]), again)
		}
		out = append(out, res)
		done = append(done, r.Target())
	}
	return out, nil
}

// repositoryOf is res as one of the repositories of a push.
func repositoryOf(res *Result) RepositoryResult {
	return RepositoryResult{Image: res.Image, Reference: res.Reference, Tags: res.Tags}
}

// Close waits for every repository's uploads.
func (m *Registries) Close() {
	for _, r := range m.regs {
		r.Close()
	}
}

// CacheSources are the first repository's.
func (m *Registries) CacheSources() []name.Reference { return m.regs[0].CacheSources() }

// ReadCacheRecord reads the first repository's record.
func (m *Registries) ReadCacheRecord(ctx context.Context) cache.Record {
	return m.regs[0].ReadCacheRecord(ctx)
}

// RecordCache updates every repository's record; seen is the first's.
// The count is the first repository's; the first failure is returned,
// after every record was tried.
func (m *Registries) RecordCache(ctx context.Context, idx v1.ImageIndex, seen cache.Record) (int, error) {
	var n int
	var errs []error
	for i, r := range m.regs {
		s := seen
		if i > 0 {
			s = cache.Record{} // seen is the first repository's record
		}
		got, err := r.RecordCache(ctx, idx, s)
		if err != nil {
			errs = append(errs, m.which(r, err))
		}
		if i == 0 {
			n = got
		}
	}
	return n, errors.Join(errs...)
}

// which names r in err where there are several repositories.
func (m *Registries) which(r *Registry, err error) error {
	if len(m.regs) == 1 {
		return err
	}
	return naming(r, err)
}

// failureIn explains err, a failure to write into reg, the first of
// rest, saying which tags moved (those of done, and reg's written before
// the failure) and which did not; again says what to run again.
func failureIn(err error, reg *Registry, done, rest []Target, again string) error {
	t := rest[0]
	var e error = err
	var aerr *AttachError
	var serr *sourceError
	switch {
	case errors.As(err, &serr):
		e = serr // the push's own words would bury it
	case !errors.As(err, &aerr):
		e = reg.login.Explain(err, t.Repo)
	}
	msg := naming(t.Repo, e).Error()
	var moved, notMoved []string
	for _, d := range done {
		moved = append(moved, fullTags(d.Tags, 0, len(d.Tags))...)
	}
	n, u := 0, 0 // t's tags written before the failure, and one that may be
	var te *tagsError
	if errors.As(err, &te) {
		n = len(te.moved)
		if te.unsure != "" {
			u = 1
		}
	}
	moved = append(moved, fullTags(t.Tags, 0, n)...)
	unsure := fullTags(t.Tags, n, n+u)
	notMoved = append(notMoved, fullTags(t.Tags, n+u, len(t.Tags))...)
	for _, r := range rest[1:] {
		notMoved = append(notMoved, fullTags(r.Tags, 0, len(r.Tags))...)
	}
	if len(moved)+len(unsure) > 0 {
		msg += tagsSaid(moved, unsure, notMoved)
	}
	return &explained{msg + " (" + again + ")", e}
}

// targetsOf are the targets of regs.
func targetsOf(regs []*Registry) []Target {
	var out []Target
	for _, r := range regs {
		out = append(out, r.Target())
	}
	return out
}

// naming is err naming what it happened in (a repository), unless it
// does already.
func naming(in fmt.Stringer, err error) error {
	if strings.Contains(err.Error(), in.String()) {
		return err
	}
	return fmt.Errorf("%s: %w", in, err)
}
