package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"gotest.tools/v3/assert"
)

// pagedReferrers is a referrers API that lists n referrers, perPage a
// page, each page linking the next by link(nextPage).
type pagedReferrers struct {
	n, perPage int
	link       func(host string, next int) string
	delay      time.Duration // before each page
}

func (p pagedReferrers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.Contains(r.URL.Path, "/referrers/") {
		return // the ping of /v2/
	}
	time.Sleep(p.delay)
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	im := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
	for i := page * p.perPage; i < p.n && i < (page+1)*p.perPage; i++ {
		im.Manifests = append(im.Manifests, v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: 1, Digest: v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%064x", i)}})
	}
	if (page+1)*p.perPage < p.n {
		w.Header().Add("Link", p.link(r.Host, page+1))
	}
	w.Header().Set("Content-Type", string(types.OCIImageIndex))
	json.NewEncoder(w).Encode(im)
}

// TestReferrersPages: every page of a referrers list is read, however
// the Link header gives the next (relative, absolute, among other
// links); a link off the registry's host or the list's path, or a list
// that never ends, is an error.
func TestReferrersPages(t *testing.T) {
	subject := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("b", 64)}
	path := "/v2/x/referrers/" + subject.String()
	for _, c := range []struct {
		name    string
		n       int
		link    func(host string, next int) string
		want    int
		wantErr string
	}{
		{"one page", 3, nil, 3, ""},
		{"relative", 25, func(_ string, next int) string { return fmt.Sprintf(`<%s?page=%d>; rel="next"`, path, next) }, 25, ""},
		{"absolute", 25, func(host string, next int) string {
			return fmt.Sprintf(`<http://%s%s?page=%d>; rel=next`, host, path, next)
		}, 25, ""},
		{"among others", 25, func(_ string, next int) string {
			return fmt.Sprintf(`<https://docs.example/x>; rel="help", <%s?page=%d>; type="x"; rel="next"`, path, next)
		}, 25, ""},
		{"another host", 25, func(_ string, next int) string {
			return fmt.Sprintf(`<http://elsewhere.example%s?page=%d>; rel="next"`, path, next)
		}, 0, "leads off"},
		{"another path", 25, func(_ string, next int) string {
			return fmt.Sprintf(`</v2/y/referrers/%s?page=%d>; rel="next"`, subject, next)
		}, 0, "leads off"},
		{"commas and semicolons quoted", 25, func(_ string, next int) string {
			return fmt.Sprintf(`<%s?page=%d&last=a,b;c>; title="x, rel=next; y"; rel="next prev"`, path, next)
		}, 25, ""},
		{"rel=next only inside a quoted title", 25, func(_ string, next int) string {
			return fmt.Sprintf(`<%s?page=%d>; title="a; rel=next"`, path, next)
		}, 10, ""},
		{"endless", 100000, func(_ string, next int) string { return fmt.Sprintf(`<%s?page=%d>; rel="next"`, path, next) }, 0, "more than 64 pages"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(pagedReferrers{n: c.n, perPage: 10, link: c.link})
			defer srv.Close()
			repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://")+"/x", name.Insecure)
			assert.NilError(t, err)
			r, err := NewReader(context.Background(), repo, Login{auth: authn.Anonymous}, quick(2))
			assert.NilError(t, err)
			im, api, err := r.Referrers(context.Background(), subject)
			if c.wantErr != "" {
				assert.ErrorContains(t, err, c.wantErr)
				return
			}
			assert.NilError(t, err)
			assert.Assert(t, api)
			assert.Equal(t, len(im.Manifests), c.want)
			seen := map[v1.Hash]bool{}
			for _, m := range im.Manifests {
				seen[m.Digest] = true
			}
			assert.Equal(t, len(seen), c.want, "a page read twice")
		})
	}
}

// A list whose pages each come within the request timeout, but which
// never ends, is given up on within the time of one request, not one
// request's time for each of its 64 pages.
func TestReferrersPagesBoundedInTime(t *testing.T) {
	subject := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("b", 64)}
	path := "/v2/x/referrers/" + subject.String()
	srv := httptest.NewServer(pagedReferrers{n: 100000, perPage: 1, delay: 100 * time.Millisecond, link: func(_ string, next int) string {
		return fmt.Sprintf(`<%s?page=%d>; rel="next"`, path, next)
	}})
	defer srv.Close()
	repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://")+"/x", name.Insecure)
	assert.NilError(t, err)
	o := quick(2)
	o.RequestTimeout = time.Second
	r, err := NewReader(context.Background(), repo, Login{auth: authn.Anonymous}, o)
	assert.NilError(t, err)
	start := time.Now()
	_, _, err = r.Referrers(context.Background(), subject)
	// Unbounded, the 64 pages would take 6.4 s and end on their count.
	assert.Assert(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	assert.Check(t, time.Since(start) < 5*time.Second, "gave up after %s", time.Since(start))
}
