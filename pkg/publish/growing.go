package publish

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/stream"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Growing is a layer blob that is still being written to its file. A
// registry can upload it while it grows: its digest is unknown until
// Finish, so the registry client streams it (one PATCH of unknown length)
// and commits it under the digest Finish gave. The file stays the local
// copy that a retry sends again.
type Growing struct {
	// Type is the layer's media type; "" is types.OCILayer (gzip).
	Type types.MediaType

	file *os.File

	mu     sync.Mutex
	grew   *sync.Cond
	n      int64 // bytes written so far
	done   bool
	err    error
	digest v1.Hash
	diffID v1.Hash
	onDone []func(v1.Hash)
}

var _ v1.Layer = (*Growing)(nil)

// NewGrowing writes a blob to f, which must be open for writing.
func NewGrowing(f *os.File) *Growing {
	g := &Growing{file: f}
	g.grew = sync.NewCond(&g.mu)
	return g
}

// Write appends to the blob file.
func (g *Growing) Write(p []byte) (int, error) {
	n, err := g.file.Write(p)
	g.mu.Lock()
	g.n += int64(n)
	g.mu.Unlock()
	g.grew.Broadcast()
	return n, err
}

// Finish ends the blob: its readers see the end, and its digest is known.
func (g *Growing) Finish(digest, diffID v1.Hash) {
	g.mu.Lock()
	g.done, g.digest, g.diffID = true, digest, diffID
	callbacks := g.onDone
	g.mu.Unlock()
	g.grew.Broadcast()
	for _, f := range callbacks {
		f(digest)
	}
}

// Fail ends the blob with an error: its readers get it, and no upload of
// it commits.
func (g *Growing) Fail(err error) {
	g.mu.Lock()
	g.done, g.err = true, err
	g.mu.Unlock()
	g.grew.Broadcast()
}

// whenDone calls f with the digest once Finish is called (at once if it
// was).
func (g *Growing) whenDone(f func(v1.Hash)) {
	g.mu.Lock()
	if g.done {
		d, err := g.digest, g.err
		g.mu.Unlock()
		if err == nil {
			f(d)
		}
		return
	}
	g.onDone = append(g.onDone, f)
	g.mu.Unlock()
}

// errGrowing is what the hashes are while the blob is still written: the
// registry client then streams it, as it does its own streaming layers.
var errGrowing = fmt.Errorf("layer blob is still being packed: %w", stream.ErrNotComputed)

func (g *Growing) finished() (int64, v1.Hash, v1.Hash, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case !g.done:
		return 0, v1.Hash{}, v1.Hash{}, errGrowing
	case g.err != nil:
		return 0, v1.Hash{}, v1.Hash{}, g.err
	}
	return g.n, g.digest, g.diffID, nil
}

func (g *Growing) Digest() (v1.Hash, error) {
	_, d, _, err := g.finished()
	return d, err
}

func (g *Growing) DiffID() (v1.Hash, error) {
	_, _, d, err := g.finished()
	return d, err
}

func (g *Growing) Size() (int64, error) {
	n, _, _, err := g.finished()
	return n, err
}

func (g *Growing) MediaType() (types.MediaType, error) {
	if g.Type == "" {
		return types.OCILayer, nil
	}
	return g.Type, nil
}

// Compressed reads the blob from the start, waiting for bytes not yet
// written, until Finish or Fail.
func (g *Growing) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(g.file.Name())
	if err != nil {
		return nil, err
	}
	return &tailReader{g: g, f: f}, nil
}

func (g *Growing) Uncompressed() (io.ReadCloser, error) {
	return nil, fmt.Errorf("a growing layer blob is only read compressed")
}

// tailReader follows the blob file as it grows.
type tailReader struct {
	g   *Growing
	f   *os.File
	off int64
}

func (t *tailReader) Read(p []byte) (int, error) {
	g := t.g
	g.mu.Lock()
	for t.off >= g.n && !g.done {
		g.grew.Wait()
	}
	avail, done, err := g.n-t.off, g.done, g.err
	g.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if avail == 0 && done {
		return 0, io.EOF
	}
	if int64(len(p)) > avail {
		p = p[:avail]
	}
	n, rerr := t.f.ReadAt(p, t.off)
	t.off += int64(n)
	if rerr == io.EOF && n > 0 {
		rerr = nil
	}
	return n, rerr
}

func (t *tailReader) Close() error { return t.f.Close() }

// Stream starts uploading g while it grows. Once g's digest is known, the
// upload counts as that digest's early upload: Write waits for it, and
// sends the blob again from its file if it failed.
func (r *Registry) Stream(ctx context.Context, g *Growing) bool {
	e := &earlyUpload{done: make(chan struct{})}
	g.whenDone(func(d v1.Hash) {
		r.mu.Lock()
		if _, ok := r.early[d]; !ok {
			r.early[d] = e
		}
		r.mu.Unlock()
	})
	r.wg.Add(1)
	go r.upload(ctx, e, &trackedBlob{Layer: g, onUpload: r.opts.OnUpload})
	return true
}
