package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// FetchOptions tune Fetch. The zero value is the default.
type FetchOptions struct {
	// Backoff paces the downloads started over after a transient
	// failure; the zero value means registry.DefaultBackoff.
	Backoff remote.Backoff
	// Timeout is how long copying a blob of size bytes may take; nil
	// means DefaultFetchTime.
	Timeout func(size int64) time.Duration
}

// DefaultFetchTime allows a minute, and a second per MB: packing a layer
// again is faster than a registry that sends less than that.
func DefaultFetchTime(size int64) time.Duration {
	return time.Minute + time.Duration(size/1_000_000)*time.Second
}

// Fetch copies b into a new file in dir and returns it as a blob file,
// having checked its size, digest and diffID on the way. A download
// broken off is started over, as registry.Transient allows; a blob that
// is not what it should be is not.
func Fetch(ctx context.Context, b Blob, dir string, o FetchOptions) (image.Blob, error) {
	if o.Backoff == (remote.Backoff{}) {
		o.Backoff = registry.DefaultBackoff
	}
	if o.Timeout == nil {
		o.Timeout = DefaultFetchTime
	}
	var l image.Blob
	err := registry.Retry(ctx, o.Backoff, registry.Transient, func(ctx context.Context, _ int) error {
		var err error
		l, err = fetch(ctx, b, dir, o.Timeout(b.Size))
		return err
	})
	return l, err
}

// readError is a blob read that failed, told in one line whatever the
// registry answered (its words escaped, never its line breaks), its
// cause kept for the retry policy.
type readError struct {
	what string
	err  error
}

func (e *readError) Error() string { return e.what + ": " + registry.OneLine(e.err) }
func (e *readError) Unwrap() error { return e.err }

// afterFailure passes writes to w until one fails, then drops them: a
// blob that stops decompressing part way is still read to its end, so
// that its size and digest tell whether it changed on the way or was
// stored so, and the decoder's error (not a failed write to it) says
// what is wrong.
type afterFailure struct {
	w      io.Writer
	failed bool
}

func (a *afterFailure) Write(p []byte) (int, error) {
	if !a.failed {
		if _, err := a.w.Write(p); err != nil {
			a.failed = true
		}
	}
	return len(p), nil
}

// fetch is one try of Fetch, given up after limit.
func fetch(ctx context.Context, b Blob, dir string, limit time.Duration) (_ image.Blob, err error) {
	if err := ctx.Err(); err != nil {
		return image.Blob{}, err
	}
	open := b.Open
	if open == nil { // a blob file at hand (ReadLayout's)
		open = func() (io.ReadCloser, error) { return os.Open(b.Path) }
	}
	rc, err := open()
	if err != nil {
		return image.Blob{}, &readError{fmt.Sprintf("read layer %s from %s", b.Digest, b.Where()), err}
	}
	defer rc.Close()
	// A registry that sends the blob slowly, or not at all, is given up on
	// (closing the body ends the read).
	stop := time.AfterFunc(limit, func() { rc.Close() })
	defer stop.Stop()
	// A signal ends the read the same way.
	defer context.AfterFunc(ctx, func() { rc.Close() })()
	f, err := os.CreateTemp(dir, "cached-")
	if err != nil {
		return image.Blob{}, err
	}
	defer f.Close()
	defer func() {
		if err != nil {
			os.Remove(f.Name()) // a try that failed leaves no file
		}
	}()
	digest, diffID := sha256.New(), sha256.New()
	pr, pw := io.Pipe()
	unzipped := make(chan error, 1)
	go func() {
		zr, err := image.Decompress(b.MediaType, pr)
		if err == nil {
			_, err = io.Copy(diffID, zr)
			zr.Close()
		}
		pr.CloseWithError(err)
		unzipped <- err
	}()
	// One byte more than described tells a longer blob apart.
	n, err := io.Copy(io.MultiWriter(f, digest, &afterFailure{w: pw}), io.LimitReader(rc, b.Size+1))
	pw.Close()
	zerr := <-unzipped
	switch {
	case ctx.Err() != nil:
		return image.Blob{}, ctx.Err()
	case err != nil && !stop.Stop():
		return image.Blob{}, fmt.Errorf("read layer %s from %s: gave up after %s", b.Digest, b.Where(), limit)
	case err != nil:
		return image.Blob{}, &readError{fmt.Sprintf("read layer %s from %s", b.Digest, b.Where()), err}
	case n != b.Size:
		return image.Blob{}, fmt.Errorf("layer %s from %s is not %d bytes long", b.Digest, b.Where(), b.Size)
	case "sha256:"+hex.EncodeToString(digest.Sum(nil)) != b.Digest.String():
		return image.Blob{}, fmt.Errorf("layer %s from %s has other bytes than its digest says", b.Digest, b.Where())
	case zerr != nil:
		return image.Blob{}, fmt.Errorf("layer %s from %s does not decompress: %w", b.Digest, b.Where(), zerr)
	case "sha256:"+hex.EncodeToString(diffID.Sum(nil)) != b.DiffID.String():
		return image.Blob{}, fmt.Errorf("layer %s from %s decompresses to other content than its diffID says", b.Digest, b.Where())
	}
	if err := f.Close(); err != nil {
		return image.Blob{}, err
	}
	l := b.Blob
	l.Open, l.Path = nil, filepath.Clean(f.Name())
	return l, nil
}
