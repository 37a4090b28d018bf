package popularity

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nixery-action/nixery-action/internal/httpstatus"
	"github.com/nixery-action/nixery-action/internal/limit"
	"github.com/nixery-action/nixery-action/pkg/storepath"
	"github.com/ulikunitz/xz"
)

// Bounds on what popcount reads. A cache or store-paths file that breaks
// one is an error naming the bound; nothing past it is read.
const (
	// MaxNarinfoBytes bounds one narinfo. cache.nixos.org's are about
	// 1 KiB; one naming a thousand references is some 60 KiB.
	MaxNarinfoBytes = 1 << 20
	// MaxClosurePaths bounds the closure popcount walks, and with it the
	// memory: the paths and the names counted are kept, never the
	// references themselves (a few hundred bytes a path). nixpkgs has some 120,000
	// packages, so a channel's store paths and all they reference fit
	// several times over; a cache whose narinfos keep naming new
	// references is stopped here.
	MaxClosurePaths = 500_000
	// DefaultTimeout bounds a whole run when Popcount.Timeout is zero:
	// a channel's closure from cache.nixos.org takes minutes, not hours.
	DefaultTimeout = time.Hour
	// MaxStorePaths bounds the paths of a store-paths file; a nixpkgs
	// channel lists some hundred thousand.
	MaxStorePaths = 1_000_000
	// MaxStorePathsBytes bounds a store-paths file, after xz
	// decompression: a million paths of 100 bytes.
	MaxStorePathsBytes = 100 << 20
)

// Popcount computes popularity data from a binary cache, as Nixery's
// popcount does: starting from the given store paths (a channel's
// store-paths), it reads every path's .narinfo, follows the references
// through the whole closure, and counts for each package how many paths
// reference it. cache is an https://, http:// or file:// binary cache URL.
//
// A narinfo whose References name anything but store path base names
// (ValidBase: ../../../etc/passwd, a/b) is an error, not skipped: the
// cache is broken or hostile, and its counts would be wrong.
type Popcount struct {
	Cache   string
	Jobs    int           // narinfos fetched at once; 0 means 16
	Client  *http.Client  // nil means one with a 30 s timeout
	Tries   int           // attempts per narinfo; 0 means 4
	Wait    time.Duration // before the first retry, doubling; 0 means 1 s
	Timeout time.Duration // the whole run; 0 means DefaultTimeout

	maxPaths int // MaxClosurePaths; tests lower it
}

// ReadStorePaths reads a store-paths file: one path per line, plain or
// xz-compressed (as channels publish store-paths.xz), at most
// MaxStorePaths paths and MaxStorePathsBytes bytes.
func ReadStorePaths(r io.Reader) ([]string, error) {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(6); bytes.Equal(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}) {
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("read xz store paths: %w", err)
		}
		r = xr
	} else {
		r = br
	}
	var paths []string
	sc := bufio.NewScanner(limit.Reader(r, MaxStorePathsBytes))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			if len(paths) == MaxStorePaths {
				return nil, fmt.Errorf("more than %d store paths, the bound on a store-paths file (MaxStorePaths): give one channel's store-paths", MaxStorePaths)
			}
			paths = append(paths, line)
		}
	}
	var le *limit.Error
	switch err := sc.Err(); {
	case errors.As(err, &le):
		return nil, fmt.Errorf("larger than %s, the bound on a store-paths file (MaxStorePathsBytes): give one channel's store-paths", limit.Size(MaxStorePathsBytes))
	case errors.Is(err, bufio.ErrTooLong):
		return nil, fmt.Errorf("a line is longer than %s: a store-paths file has one store path a line", limit.Size(bufio.MaxScanTokenSize))
	case err != nil:
		return nil, err
	}
	return paths, nil
}

// walk is the state of one Run: the paths still to read and what has
// been read, shared by the workers under mu.
type walk struct {
	mu     sync.Mutex
	more   *sync.Cond // signalled when todo grows, a worker ends or err is set
	todo   []string
	queued map[string]bool
	// counts is Compute's result, summed as each narinfo is read (each
	// path is read once): the references themselves are not kept, so
	// memory grows with the paths, not with the references a cache
	// names (3,000 paths naming each other were 9 million strings).
	counts Data
	read   int
	busy   int // workers reading a narinfo
	err    error
}

// count adds the names that from references (itself left out) to the
// counts. Called with mu held.
func (w *walk) count(from string, refs []string) {
	names := map[string]bool{}
	for _, to := range refs {
		if to != from {
			names[storepath.Name(to)] = true
		}
	}
	for n := range names {
		w.counts[n]++
	}
	w.read++
}

// add queues the paths not seen yet; more than max paths in all is an
// error. Called with mu held.
func (w *walk) add(paths []string, max int, cache string) {
	for _, p := range paths {
		if w.queued[p] {
			continue
		}
		if len(w.queued) == max {
			w.fail(fmt.Errorf("binary cache %s: the closure has more than %d paths, the bound on popcount's walk (MaxClosurePaths): is it a Nix binary cache? Its narinfos keep naming new references", cache, max))
			return
		}
		w.queued[p] = true
		w.todo = append(w.todo, p)
	}
	w.more.Broadcast()
}

// fail records the first error. Called with mu held.
func (w *walk) fail(err error) {
	if w.err == nil {
		w.err = err
	}
	w.more.Broadcast()
}

// next waits for a path to read; ok is false when the walk is over.
func (w *walk) next() (p string, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.err == nil && len(w.todo) == 0 && w.busy > 0 {
		w.more.Wait()
	}
	if w.err != nil || len(w.todo) == 0 {
		return "", false
	}
	p = w.todo[len(w.todo)-1]
	w.todo = w.todo[:len(w.todo)-1]
	w.busy++
	return p, true
}

// cacheURL parses the cache's URL, refusing what Run cannot read.
func (pc *Popcount) cacheURL() (*url.URL, error) {
	base, err := url.Parse(pc.Cache)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http" && base.Scheme != "file") {
		return nil, fmt.Errorf("binary cache %q is not an https://, http:// or file:// URL", pc.Cache)
	}
	return base, nil
}

// Validate finds, before any work, a cache Run cannot read.
func (pc *Popcount) Validate() error {
	_, err := pc.cacheURL()
	return err
}

// Run fetches the closure of paths from the cache and counts references.
func (pc *Popcount) Run(ctx context.Context, paths []string) (Data, error) {
	base, err := pc.cacheURL()
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		// Counting nothing would write {} over good data.
		return nil, errors.New("no store paths to count: give store paths, or a store-paths file that lists some")
	}
	jobs := pc.Jobs
	if jobs <= 0 {
		jobs = 16
	}
	timeout := pc.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	maxPaths := pc.maxPaths
	if maxPaths <= 0 {
		maxPaths = MaxClosurePaths
	}
	for _, p := range paths {
		if storeHash(p) == "" {
			return nil, fmt.Errorf("%q is not a store path (/nix/store/HASH-NAME)", p)
		}
	}

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w := &walk{queued: map[string]bool{}, counts: Data{}}
	w.more = sync.NewCond(&w.mu)
	w.mu.Lock()
	w.add(paths, maxPaths, pc.Cache)
	w.mu.Unlock()
	var workers sync.WaitGroup
	for range jobs {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for {
				p, ok := w.next()
				if !ok {
					return
				}
				refsOf, err := pc.narinfoRefs(ctx, base, p)
				w.mu.Lock()
				w.busy--
				if err != nil {
					w.fail(err)
					cancel()
				} else {
					w.count(p, refsOf)
					w.add(refsOf, maxPaths, pc.Cache)
				}
				w.more.Broadcast()
				w.mu.Unlock()
			}
		}()
	}
	workers.Wait()
	if w.err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil, fmt.Errorf("binary cache %s: not done after %s (the timeout), with %d narinfos read and %d to go: allow more time (nixery popcount --timeout)", pc.Cache, timeout, w.read, len(w.queued)-w.read)
	}
	if w.err != nil {
		return nil, w.err
	}
	return w.counts, nil
}

// storeHash is the hash part of a store path, or "" when p is not one.
func storeHash(p string) string {
	base, ok := strings.CutPrefix(p, storepath.Dir)
	if !ok || !storepath.ValidBase(base) {
		return ""
	}
	return base[:32]
}

// narinfoRefs reads the References of a store path's narinfo, as full
// store paths.
func (pc *Popcount) narinfoRefs(ctx context.Context, base *url.URL, p string) ([]string, error) {
	u := *base
	u.Path = path.Join(u.Path, storeHash(p)+".narinfo")
	body, err := pc.fetch(ctx, &u)
	var le *limit.Error
	if errors.As(err, &le) {
		return nil, fmt.Errorf("binary cache %s: the narinfo of %s is larger than %s, the bound on one narinfo (MaxNarinfoBytes; real ones are a few KiB): is it a Nix binary cache?", pc.Cache, p, limit.Size(MaxNarinfoBytes))
	}
	if err != nil {
		return nil, fmt.Errorf("narinfo of %s: %w", p, err)
	}
	// A narinfo names its store path: an answer that does not (a web
	// page, a wrong URL answering 200) is no narinfo, not a path without
	// references.
	var out []string
	named := false
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if v, ok := strings.CutPrefix(line, "StorePath:"); ok {
			named = storeHash(strings.TrimSpace(v)) == storeHash(p)
		}
		if v, ok := strings.CutPrefix(line, "References:"); ok {
			for _, r := range strings.Fields(v) {
				if !storepath.ValidBase(r) {
					return nil, fmt.Errorf("binary cache %s: the narinfo of %s names the reference %q, which is not a store path's base name (32 nix-base32 characters, a dash, a name): is it a Nix binary cache?", pc.Cache, p, r)
				}
				out = append(out, storepath.Dir+r)
			}
		}
	}
	if !named {
		return nil, fmt.Errorf("binary cache %s: the answer for %s is not its narinfo (no StorePath: line naming it): is %s a Nix binary cache?", pc.Cache, p, pc.Cache)
	}
	sort.Strings(out)
	return out, nil
}

// errPermanent marks failures a retry will not mend.
var errPermanent = errors.New("permanent")

func (pc *Popcount) fetch(ctx context.Context, u *url.URL) ([]byte, error) {
	if u.Scheme == "file" {
		f, err := os.Open(u.Path)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("not in the cache (%s)", u.Path)
		}
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return limit.ReadAll(f, MaxNarinfoBytes)
	}
	client := pc.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	tries, wait := pc.Tries, pc.Wait
	if tries <= 0 {
		tries = 4
	}
	if wait <= 0 {
		wait = time.Second
	}
	var last error
	for try := 0; try < tries; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(wait):
			}
			wait *= 2
		}
		b, err := get(ctx, client, u.String())
		if err == nil {
			return b, nil
		}
		var le *limit.Error
		if errors.Is(err, errPermanent) || errors.As(err, &le) || ctx.Err() != nil {
			return nil, err
		}
		last = err
	}
	return nil, fmt.Errorf("%w (tried %d times)", last, tries)
}

func get(ctx context.Context, client *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		return limit.ReadAll(resp.Body, MaxNarinfoBytes)
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return nil, fmt.Errorf("%s answered %s", u, httpstatus.Text(resp.StatusCode))
	default:
		return nil, fmt.Errorf("%s answered %s: %w", u, httpstatus.Text(resp.StatusCode), errPermanent)
	}
}
