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

	"github.com/nixery-action/nixery-action/pkg/storepath"
	"github.com/ulikunitz/xz"
)

// Popcount computes popularity data from a binary cache, as Nixery's
// popcount does: starting from the given store paths (a channel's
// store-paths), it reads every path's .narinfo, follows the references
// through the whole closure, and counts for each package how many paths
// reference it. cache is an https://, http:// or file:// binary cache URL.
type Popcount struct {
	Cache  string
	Jobs   int           // narinfos fetched at once; 0 means 16
	Client *http.Client  // nil means one with a 30 s timeout
	Tries  int           // attempts per narinfo; 0 means 4
	Wait   time.Duration // before the first retry, doubling; 0 means 1 s
}

// ReadStorePaths reads a store-paths file: one path per line, plain or
// xz-compressed (as channels publish store-paths.xz).
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
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			paths = append(paths, line)
		}
	}
	return paths, sc.Err()
}

// Run fetches the closure of paths from the cache and counts references.
func (pc *Popcount) Run(ctx context.Context, paths []string) (Data, error) {
	base, err := url.Parse(pc.Cache)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http" && base.Scheme != "file") {
		return nil, fmt.Errorf("binary cache %q is not an https://, http:// or file:// URL", pc.Cache)
	}
	jobs := pc.Jobs
	if jobs <= 0 {
		jobs = 16
	}
	for _, p := range paths {
		if storeHash(p) == "" {
			return nil, fmt.Errorf("%q is not a store path (/nix/store/HASH-NAME)", p)
		}
	}

	var (
		mu      sync.Mutex
		refs    = map[string][]string{}
		queued  = map[string]bool{}
		queue   = make(chan string, len(paths))
		pending sync.WaitGroup
		first   error
	)
	enqueue := func(p string) {
		mu.Lock()
		defer mu.Unlock()
		if queued[p] {
			return
		}
		queued[p] = true
		pending.Add(1)
		go func() { queue <- p }()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for w := 0; w < jobs; w++ {
		go func() {
			for p := range queue {
				refsOf, err := pc.narinfoRefs(ctx, base, p)
				mu.Lock()
				if err != nil && first == nil {
					first = err
					cancel()
				}
				if err == nil {
					refs[p] = refsOf
				}
				mu.Unlock()
				if err == nil {
					for _, r := range refsOf {
						enqueue(r)
					}
				}
				pending.Done()
			}
		}()
	}
	for _, p := range paths {
		enqueue(p)
	}
	pending.Wait()
	close(queue)
	if first != nil {
		return nil, first
	}
	return Compute(refs), nil
}

// storeHash is the hash part of a store path, or "".
func storeHash(p string) string {
	base, ok := strings.CutPrefix(p, storepath.Dir)
	if !ok {
		return ""
	}
	hash, _, ok := strings.Cut(base, "-")
	if !ok || len(hash) != 32 || strings.Contains(base, "/") {
		return ""
	}
	return hash
}

// narinfoRefs reads the References of a store path's narinfo, as full
// store paths.
func (pc *Popcount) narinfoRefs(ctx context.Context, base *url.URL, p string) ([]string, error) {
	u := *base
	u.Path = path.Join(u.Path, storeHash(p)+".narinfo")
	body, err := pc.fetch(ctx, &u)
	if err != nil {
		return nil, fmt.Errorf("narinfo of %s: %w", p, err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "References:"); ok {
			var out []string
			for _, r := range strings.Fields(v) {
				out = append(out, storepath.Full(r))
			}
			sort.Strings(out)
			return out, nil
		}
	}
	return nil, nil
}

// errPermanent marks failures a retry will not mend.
var errPermanent = errors.New("permanent")

func (pc *Popcount) fetch(ctx context.Context, u *url.URL) ([]byte, error) {
	if u.Scheme == "file" {
		b, err := os.ReadFile(u.Path)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("not in the cache (%s)", u.Path)
		}
		return b, err
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
		if errors.Is(err, errPermanent) || ctx.Err() != nil {
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
		return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return nil, fmt.Errorf("%s answered %s", u, resp.Status)
	default:
		return nil, fmt.Errorf("%s answered %s: %w", u, resp.Status, errPermanent)
	}
}
