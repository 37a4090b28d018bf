package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nixery-action/nixery-action/internal/limit"
	"github.com/nixery-action/nixery-action/pkg/build"
	"github.com/nixery-action/nixery-action/pkg/cache"
	"github.com/nixery-action/nixery-action/pkg/outfile"
	"github.com/nixery-action/nixery-action/pkg/publish"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// maxManifest bounds a manifest or index read from the store.
const maxManifest = 4 << 20

// store is where a Server keeps the images it builds, each under its key
// as a tag: an OCI layout on disk (one server), or a registry repository
// (any number of servers, which then build each image once between them).
type store interface {
	// load lists the images kept already: key → index digest.
	load() (map[string]v1.Hash, error)
	// lookup finds an image another server stored (ok false: none).
	lookup(ctx context.Context, key string) (v1.Hash, bool)
	// prepare makes req write the image into the store under key, and
	// reuse the layers the store holds.
	prepare(req *build.Request, key string)
	// manifest reads a manifest or index the store holds.
	manifest(ctx context.Context, digest v1.Hash) ([]byte, error)
	// serveBlob answers a GET or HEAD of a blob, with range reads.
	serveBlob(w http.ResponseWriter, r *http.Request, digest v1.Hash)
	// prune drops the images keep refuses, and the blobs only they use.
	prune(keep func(key string) bool) (int, error)
	// size is the bytes of the blobs kept (0 where it is not known).
	size() int64
	// pulled records that the image index was pulled now, and pulledAt
	// when it was last recorded (zero where the store does not keep it):
	// a restart keeps the order in which the images were pulled.
	pulled(index v1.Hash)
	pulledAt(index v1.Hash) time.Time
}

// layoutStore keeps the images in an OCI layout.
type layoutStore struct {
	dir    string
	layers *cache.LayoutReader // remembers the images read before the last build
	log    *slog.Logger
}

func (l layoutStore) load() (map[string]v1.Hash, error) {
	built := map[string]v1.Hash{}
	if _, err := os.Stat(filepath.Join(l.dir, "index.json")); errors.Is(err, os.ErrNotExist) {
		return built, nil
	}
	// What a build cut off by a crash left (unnamed blobs, temporary
	// files) goes; every named image stays.
	if _, err := publish.PruneLayout(l.dir, func(string) bool { return true }); err != nil {
		return nil, fmt.Errorf("clean the storage: %w", err)
	}
	im, err := cache.ReadLayoutIndex(l.dir)
	if err != nil {
		return nil, fmt.Errorf("read the storage: %w", err)
	}
	for _, d := range im.Manifests {
		if key := d.Annotations["org.opencontainers.image.ref.name"]; key != "" {
			built[key] = d.Digest
		}
	}
	return built, nil
}

func (layoutStore) lookup(context.Context, string) (v1.Hash, bool) { return v1.Hash{}, false }

func (l layoutStore) prepare(req *build.Request, key string) {
	// Layers the storage holds already, under the same cache keys as the
	// CLI's, are reused (their content checked) instead of packed again.
	req.LocalCache, _ = l.layers.Read(l.dir)
	req.Destination = publish.NewLayout(publish.Output{Kind: publish.OCILayout, Path: l.dir}, publish.WriteOptions{Tags: []string{key}, Full: storageFull})
}

func (l layoutStore) manifest(_ context.Context, digest v1.Hash) ([]byte, error) {
	f, err := os.Open(l.blobPath(digest))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := limit.ReadAll(f, maxManifest)
	var le *limit.Error
	if errors.As(err, &le) {
		return nil, fmt.Errorf("%s is %w: %w", digest, registry.ErrNotManifest, err)
	}
	return raw, err
}

func (l layoutStore) serveBlob(w http.ResponseWriter, r *http.Request, digest v1.Hash) {
	f, err := os.Open(l.blobPath(digest))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			storageFailed(l.log, w, r, digest.String(), err)
			return
		}
		writeError(w, http.StatusNotFound, "BLOB_UNKNOWN", "no blob "+digest.String())
		return
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		writeError(w, http.StatusNotFound, "BLOB_UNKNOWN", "no blob "+digest.String())
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Docker-Content-Digest", digest.String())
	w.Header().Set("ETag", etag(digest))
	http.ServeContent(w, r, "", time.Time{}, f)
}

func (l layoutStore) prune(keep func(string) bool) (int, error) {
	return publish.PruneLayout(l.dir, keep)
}

func (l layoutStore) size() int64 {
	entries, _ := os.ReadDir(filepath.Join(l.dir, "blobs", "sha256"))
	var n int64
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
	}
	return n
}

// pulled dates the index blob: its mtime is the last pull recorded.
func (l layoutStore) pulled(index v1.Hash) {
	now := time.Now()
	_ = os.Chtimes(l.blobPath(index), now, now) // a storage turned read-only keeps the last order
}

func (l layoutStore) pulledAt(index v1.Hash) time.Time {
	info, err := os.Stat(l.blobPath(index))
	if err != nil {
		return time.Time{}
	}
	return info.ModTime()
}

func (l layoutStore) blobPath(digest v1.Hash) string {
	return filepath.Join(l.dir, "blobs", digest.Algorithm, digest.Hex)
}

// registryStore keeps the images in a registry repository, where several
// servers find what the others built; the registry's own credentials
// and bounds apply (pkg/registry).
type registryStore struct {
	repo name.Repository
	opts registry.Options
	rd   *registry.Reader
	log  *slog.Logger // the storage's failures, which clients are not told
}

func newRegistryStore(repo name.Repository, o registry.Options, log *slog.Logger) (*registryStore, error) {
	l, err := o.Credentials.Login(context.Background(), repo, true)
	if err != nil {
		return nil, err
	}
	// Every build pushes there: a registry that is down, or refuses
	// the login, is told now rather than by every pull.
	if err := o.CheckUpload(context.Background(), repo, l); err != nil {
		return nil, err
	}
	rd, err := registry.NewReader(context.Background(), repo, l, o)
	if err != nil {
		return nil, l.Explain(err, repo)
	}
	return &registryStore{repo: repo, opts: o, rd: rd, log: log}, nil
}

func (*registryStore) load() (map[string]v1.Hash, error) { return map[string]v1.Hash{}, nil }

func (s *registryStore) lookup(ctx context.Context, key string) (v1.Hash, bool) {
	return s.rd.ManifestDigest(ctx, s.repo.Tag(key))
}

func (s *registryStore) prepare(req *build.Request, key string) {
	// The repository's cache record lists the layers earlier images
	// pushed: they are reused, as a CLI build reuses them.
	req.PushTo(publish.NewRegistry(publish.Target{Repo: s.repo, Tags: []name.Tag{s.repo.Tag(key)}}, publish.Options{Options: s.opts}))
}

func (s *registryStore) manifest(ctx context.Context, digest v1.Hash) ([]byte, error) {
	raw, _, err := s.rd.Manifest(ctx, s.repo.Digest(digest.String()))
	return raw, err
}

// serveBlob passes the registry's answer on: the client never needs the
// store's credentials. The entity tag is the digest, so conditional
// requests are answered here, once the registry has the blob (a HEAD
// of it): a blob gone (garbage collected) is unknown, not unmodified.
func (s *registryStore) serveBlob(w http.ResponseWriter, r *http.Request, digest v1.Hash) {
	method, rangeHeader := r.Method, r.Header.Get("Range")
	if ir := r.Header.Get("If-Range"); ir != "" && !etagMatches(ir, digest) {
		rangeHeader = "" // another entity (or a date): the whole blob
	}
	notModified := etagMatches(r.Header.Get("If-None-Match"), digest)
	if notModified {
		method, rangeHeader = http.MethodHead, ""
	}
	resp, err := s.rd.Blob(r.Context(), method, digest, rangeHeader)
	if err != nil {
		if registry.IsNotFound(err) {
			writeError(w, http.StatusNotFound, "BLOB_UNKNOWN", "no blob "+digest.String())
			return
		}
		storageFailed(s.log, w, r, digest.String(), err)
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Docker-Content-Digest", digest.String())
	w.Header().Set("ETag", etag(digest))
	if notModified {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if resp.StatusCode == http.StatusRequestedRangeNotSatisfiable {
		if cr := resp.Header.Get("Content-Range"); cr != "" {
			w.Header().Set("Content-Range", cr) // the blob's size, when the storage says it
		}
		writeError(w, http.StatusRequestedRangeNotSatisfiable, "RANGE_INVALID", fmt.Sprintf("the range %q is outside the blob", rangeHeader))
		return
	}
	for _, h := range []string{"Content-Length", "Content-Range", "Accept-Ranges"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode == http.StatusPartialContent && strings.HasPrefix(ct, "multipart/byteranges") {
		w.Header().Set("Content-Type", ct) // the parts' boundary
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method != http.MethodHead {
		io.Copy(w, resp.Body)
	}
}

func (*registryStore) size() int64 { return 0 }

// A registry storage is not pruned by the server: the order of pulls is
// not kept.
func (*registryStore) pulled(v1.Hash)             {}
func (*registryStore) pulledAt(v1.Hash) time.Time { return time.Time{} }

func (s *registryStore) prune(func(string) bool) (int, error) {
	return 0, errors.New("a registry storage is pruned by the registry's own garbage collection")
}

// usableStorage checks a storage directory before any pull needs it:
// one that is not there is made; a file, a directory of other files or
// one the server cannot write in is refused, rather than every build
// failing later.
func usableStorage(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("storage %s is not a directory: give a directory to keep the images in", dir)
		}
		return fmt.Errorf("storage %s cannot be made: %w", dir, err)
	}
	entries, err := publish.LayoutEntries(dir)
	if err != nil {
		return fmt.Errorf("storage %s cannot be read: %w", dir, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "oci-layout")); len(entries) > 0 && err != nil {
		return fmt.Errorf("storage %s holds other files and is no OCI layout: give an empty directory, or the storage of an earlier nixery serve", dir)
	}
	if err := outfile.CheckDir(dir); err != nil {
		return fmt.Errorf("storage %s cannot be written in (%v): give a directory the server can write in", dir, err)
	}
	return nil
}

// scratchDir makes the directory of the builds' temporary files in the
// storage dir (publish.ScratchDir), empty: what a server killed while it
// built left there goes. Being on the storage's file system, the layers
// packed there are linked into it, not copied.
func scratchDir(dir string) (string, error) {
	scratch := filepath.Join(dir, publish.ScratchDir)
	if err := os.RemoveAll(scratch); err != nil {
		return "", fmt.Errorf("storage %s: clean %s: %w", dir, publish.ScratchDir, err)
	}
	if err := os.Mkdir(scratch, 0o700); err != nil {
		return "", fmt.Errorf("storage %s: make %s: %w", dir, publish.ScratchDir, err)
	}
	return scratch, nil
}

// parseStorage reads --storage: docker://REGISTRY/REPOSITORY for a
// registry, else a directory.
func parseStorage(s string, insecure bool) (dir string, repo *name.Repository, err error) {
	ref, ok := strings.CutPrefix(s, "docker://")
	if !ok {
		return s, nil, nil
	}
	r, err := name.NewRepository(ref, registry.NameOptions(ref, insecure)...)
	if err != nil {
		return "", nil, fmt.Errorf("--storage %s: not a repository (docker://REGISTRY/NAME): %v", s, err)
	}
	return "", &r, nil
}
