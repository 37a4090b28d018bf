package publish

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/logs"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/registry"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// noCreds is a keychain that knows nobody, so tests do not read the
// machine's docker config.
var noCreds = authn.NewMultiKeychain()

func TestPushTwoPlatforms(t *testing.T) {
	host := memRegistry(t, nil)
	idx := testIndex(t, "two", amd64, arm64)
	target := mustTarget(t, host+"/test/hello", "v1", "latest")

	var mu sync.Mutex
	reported := map[string]bool{}
	res, err := Push(context.Background(), target, idx, Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}}, OnLayer: func(l LayerResult) {
		mu.Lock()
		defer mu.Unlock()
		assert.Check(t, !reported[l.Digest], "layer %s reported twice", l.Digest)
		reported[l.Digest] = l.Uploaded
	}})
	assert.NilError(t, err)

	digest, _ := idx.Digest()
	assert.Equal(t, res.Digest, digest.String())
	assert.Equal(t, res.Image, host+"/test/hello")
	assert.Equal(t, res.Reference, host+"/test/hello@"+digest.String())
	assert.DeepEqual(t, res.Tags, []string{"v1", "latest"})
	assert.Equal(t, len(res.Manifests), 2)
	assert.Equal(t, res.Manifests[0].Platform, "linux/amd64")
	assert.Equal(t, res.Manifests[1].Platform, "linux/arm64")
	for _, m := range res.Manifests {
		assert.Equal(t, len(m.Layers), 3)
		assert.DeepEqual(t, m.Layers[0].Packages, []string{"cacert"})
		assert.DeepEqual(t, m.Layers[1].Packages, []string{"hello"})
		assert.DeepEqual(t, m.Layers[2].Packages, []string{})
		for _, l := range m.Layers {
			assert.Check(t, l.Uploaded, "%s layer %s not uploaded on the first push", m.Platform, l.Digest)
			assert.Check(t, strings.HasPrefix(l.Key, "sha256:"))
		}
	}
	// The shared layer is one blob: five distinct layers in all.
	assert.Equal(t, len(reported), 5)

	// Both tags name the index, which reads back whole.
	for _, tag := range []string{"v1", "latest"} {
		ref, err := name.ParseReference(host + "/test/hello:" + tag)
		assert.NilError(t, err)
		got, err := remote.Index(ref)
		assert.NilError(t, err)
		d, _ := got.Digest()
		assert.Equal(t, d, digest)
		assert.NilError(t, validate.Index(got))
	}

	// The JSON output has the shape the --json flag promises.
	raw, err := json.Marshal(res)
	assert.NilError(t, err)
	assert.Assert(t, is.Contains(string(raw), `"uploaded":true`))
	assert.Assert(t, is.Contains(string(raw), `"platform":"linux/arm64","ociPlatform":{"architecture":"arm64","os":"linux","variant":"v8"}`))

	// A second push of the same index sends no blob, under another tag.
	again, err := Push(context.Background(), mustTarget(t, host+"/test/hello", "v2"), idx,
		Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}}})
	assert.NilError(t, err)
	assert.Equal(t, again.Digest, res.Digest)
	checkNothingUploaded(t, again)
	tags, err := remote.List(target.Repo)
	assert.NilError(t, err)
	assert.DeepEqual(t, tags, []string{"latest", "v1", "v2"})
}

// TestTagsLast: the registry sees every blob and platform manifest before
// the first tag, so a reader never finds a tag with missing parts
// (TestWriteOrder has referrers too).
func TestTagsLast(t *testing.T) {
	var rec requestLog
	host := memRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodHead && r.Method != http.MethodGet {
				rec.add(r)
			}
			h.ServeHTTP(w, r)
		})
	})
	idx := testIndex(t, "order", amd64, arm64)
	_, err := Push(context.Background(), mustTarget(t, host+"/order/img", "a", "b"), idx,
		Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}}})
	assert.NilError(t, err)

	reqs := rec.list()
	firstTag := -1
	var lastWrite, blobWrites, digestManifests int
	for i, r := range reqs {
		switch {
		case strings.HasSuffix(r, "/manifests/a") || strings.HasSuffix(r, "/manifests/b"):
			if firstTag < 0 {
				firstTag = i
			}
		case strings.Contains(r, "/blobs/"):
			blobWrites++
			lastWrite = i
		case strings.Contains(r, "/manifests/sha256:"):
			digestManifests++
			lastWrite = i
		}
	}
	assert.Assert(t, firstTag > 0, "no tag written: %v", reqs)
	assert.Assert(t, lastWrite < firstTag, "a write came after the first tag: %v", reqs)
	assert.Equal(t, digestManifests, 2, "%v", reqs) // the two images; the index goes under its tags
	// The five distinct layers and two configs each took at least one
	// blob request, all before any tag.
	assert.Assert(t, blobWrites >= 7, "%v", reqs)
}

func TestPushByDigestOnly(t *testing.T) {
	host := memRegistry(t, nil)
	idx := testIndex(t, "digest", amd64)
	target := mustTarget(t, host+"/by/digest")
	res, err := Push(context.Background(), target, idx, Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}}})
	assert.NilError(t, err)
	assert.DeepEqual(t, res.Tags, []string{})

	ref, err := name.NewDigest(res.Reference)
	assert.NilError(t, err)
	got, err := remote.Index(ref)
	assert.NilError(t, err)
	assert.NilError(t, validate.Index(got))
	tags, err := remote.List(target.Repo)
	assert.NilError(t, err)
	assert.Equal(t, len(tags), 0)
}

// TestRetries: rate limits and server errors are retried; the push still
// succeeds.
func TestRetries(t *testing.T) {
	for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusBadGateway} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			var failed atomic.Int32
			host := memRegistry(t, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					// The first two attempts at starting an upload fail.
					if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/blobs/uploads") && failed.Add(1) <= 2 {
						w.WriteHeader(status)
						return
					}
					h.ServeHTTP(w, r)
				})
			})
			res, err := Push(context.Background(), mustTarget(t, host+"/retry/img", "v1"), testIndex(t, "retry", amd64),
				Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}, Backoff: fastBackoff}})
			assert.NilError(t, err)
			assert.Assert(t, failed.Load() > 2)
			assert.Check(t, res.Manifests[0].Layers[0].Uploaded)
		})
	}
}

// notLinkedYet answers a manifest PUT as Docker's registry does while
// another build rewrites the links of the blobs it names.
func notLinkedYet(w http.ResponseWriter) {
	testenv.RegistryError(w, http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry")
}

// A manifest refused for blobs the registry has not linked yet is PUT
// again, and the push completes: each platform manifest and the index,
// and a merged index, are refused once here. A registry that keeps refusing fails the push after
// the retry policy's tries, with its words, and no tag.
func TestManifestBlobsNotLinkedYet(t *testing.T) {
	var mu sync.Mutex
	refused := map[string]int{}
	var always atomic.Bool
	host := memRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
				mu.Lock()
				refused[r.URL.Path]++
				first := refused[r.URL.Path] == 1
				mu.Unlock()
				if first || always.Load() {
					notLinkedYet(w)
					return
				}
			}
			h.ServeHTTP(w, r)
		})
	})
	opts := Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}, Backoff: fastBackoff}}
	res, err := Push(context.Background(), mustTarget(t, host+"/linking/img", "v1"), testIndex(t, "linking", amd64, arm64), opts)
	assert.NilError(t, err)
	// The scale-out merge's index too.
	_, err = mergeOne(context.Background(), mustTarget(t, host+"/linking/img", "merged"), []string{res.Manifests[0].Digest, res.Manifests[1].Digest}, opts)
	assert.NilError(t, err)
	// Two platform manifests by digest, the index under its tag and the
	// merged index under its own: each PUT twice.
	assert.Equal(t, len(refused), 4)
	for path, n := range refused {
		assert.Check(t, n == 2, "%s: %d PUTs", path, n)
	}

	always.Store(true)
	_, err = Push(context.Background(), mustTarget(t, host+"/linking/other", "v1"), testIndex(t, "other", amd64), opts)
	assert.ErrorContains(t, err, "blob unknown to registry")
	assert.Check(t, !strings.Contains(err.Error(), "\n"), err.Error())
	mu.Lock()
	for path, n := range refused {
		if strings.Contains(path, "/linking/other/") {
			assert.Check(t, n == fastBackoff.Steps, "%s: %d PUTs", path, n)
		}
	}
	mu.Unlock()
	ref, err := name.ParseReference(host + "/linking/other:v1")
	assert.NilError(t, err)
	_, err = remote.Head(ref)
	assert.Check(t, err != nil, "the tag was written")
}

// basicAuth only lets user:password in, as registries with htpasswd do.
func basicAuth(user, password string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				testenv.RegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

func TestAuth(t *testing.T) {
	const user, password = "alice", "s3cret-p4ssword"
	host := memRegistry(t, basicAuth(user, password))

	// Capture what go-containerregistry logs, to check no secret is in it.
	logged := &syncBuffer{}
	for _, l := range []**log.Logger{&logs.Warn, &logs.Progress, &logs.Debug} {
		old := *l
		*l = log.New(logged, "", 0)
		t.Cleanup(func() { *l = old })
	}

	cases := []struct {
		name  string
		creds registry.Credentials
		want  string // "" for success
	}{
		{"right password", registry.Credentials{Username: user, Password: password}, ""},
		{"wrong password", registry.Credentials{Username: user, Password: password + "-wrong"},
			"authentication failed for registry " + host + " with the credentials from --username/--password"},
		{"no credentials", registry.Credentials{Keychain: noCreds},
			"authentication failed for registry " + host + ": no credentials found"},
		{"keychain", registry.Credentials{Keychain: staticKeychain{host, user, password}}, ""},
		{"keychain with the wrong password", registry.Credentials{Keychain: staticKeychain{host, user, password + "-wrong"}},
			"with the credentials from the docker config"},
		{"username without password", registry.Credentials{Username: user}, "user name and password go together"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			repo := host + "/auth/" + strings.ReplaceAll(tc.name, " ", "-")
			_, err := Push(context.Background(), mustTarget(t, repo, "v1"), testIndex(t, tc.name, amd64),
				Options{Options: registry.Options{Credentials: tc.creds, Backoff: fastBackoff}})
			if tc.want == "" {
				assert.NilError(t, err)
				return
			}
			assert.ErrorContains(t, err, tc.want)
			assert.Assert(t, !strings.Contains(err.Error(), password), "password in error: %v", err)
			assert.Assert(t, !strings.Contains(err.Error(), "\n"), "error is more than a line: %q", err)

			// No tag was written.
			tags, lerr := remote.List(mustTarget(t, repo).Repo, remote.WithAuth(&authn.Basic{Username: user, Password: password}))
			assertNoTags(t, tags, lerr)
		})
	}
	assert.Assert(t, strings.Contains(logged.String(), "Authorization"), "the library logged no requests")
	basic := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	assert.Assert(t, !strings.Contains(logged.String(), password), "password in the library's logs")
	assert.Assert(t, !strings.Contains(logged.String(), basic), "basic auth header in the library's logs")
}

// assertNoTags checks a tag listing: an empty list, or the registry's
// "no such repository" for one never pushed.
func assertNoTags(t *testing.T, tags []string, err error) {
	t.Helper()
	if err != nil {
		var terr *transport.Error
		assert.Assert(t, errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound, "listing tags: %v", err)
		return
	}
	assert.Equal(t, len(tags), 0, "tags: %v", tags)
}

// syncBuffer is written by several loggers at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type staticKeychain struct{ registry, user, password string }

func (k staticKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if r.RegistryStr() != k.registry {
		return authn.Anonymous, nil
	}
	return &authn.Basic{Username: k.user, Password: k.password}, nil
}

func TestUnreachable(t *testing.T) {
	_, err := Push(context.Background(), mustTarget(t, "127.0.0.1:1/bad/unreachable", "v1"), testIndex(t, "x", amd64),
		Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}, Backoff: fastBackoff}})
	assert.Error(t, err, "cannot reach registry 127.0.0.1:1: connection refused; check that the registry is running")
}

func TestCancelled(t *testing.T) {
	host := memRegistry(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Push(ctx, mustTarget(t, host+"/c/img", "v1"), testIndex(t, "c", amd64),
		Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}}})
	assert.ErrorIs(t, err, context.Canceled)
}

// answerLost is middleware that lets the registry write every tag but
// loses its answer (the connection drops), as a proxy that fails after
// the registry did the work; refuse answers 400 to tag writes instead,
// writing nothing.
func answerLost(refuse bool) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPut || !strings.Contains(r.URL.Path, "/manifests/") || strings.Contains(r.URL.Path, "/manifests/sha256:") {
				h.ServeHTTP(w, r)
				return
			}
			if refuse {
				testenv.RegistryError(w, http.StatusBadRequest, "TAG_INVALID", "no")
				return
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
		})
	}
}

// TestTagAnswerLost: a tag the registry wrote, whose answer never came
// back at any try, is found written (the push and the merge succeed,
// every tag moved); a tag the registry refused is a failure.
func TestTagAnswerLost(t *testing.T) {
	o := Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}, Backoff: remote.Backoff{Duration: time.Millisecond, Steps: 2}}}
	host := memRegistry(t, answerLost(false))
	idx := testIndex(t, "lost", amd64)
	res, err := Push(context.Background(), mustTarget(t, host+"/lost/img", "a", "b"), idx, o)
	assert.NilError(t, err)
	merged, err := mergeOne(context.Background(), mustTarget(t, host+"/lost/img", "m"), []string{res.Digest}, o)
	assert.NilError(t, err)
	for tag, want := range map[string]string{"a": res.Digest, "b": res.Digest, "m": merged.Digest} {
		ref, err := name.NewTag(host + "/lost/img:" + tag)
		assert.NilError(t, err)
		d, err := remote.Head(ref)
		assert.NilError(t, err)
		assert.Equal(t, d.Digest.String(), want, "tag %s", tag)
	}

	// A refusal is taken at its word: the tag is not asked for after it.
	var put, headsAfter atomic.Int32
	refusing := memRegistry(t, func(h http.Handler) http.Handler {
		refuse := answerLost(true)(h)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/manifests/a") {
				if r.Method == http.MethodPut {
					put.Add(1)
				} else if put.Load() > 0 {
					headsAfter.Add(1)
				}
			}
			refuse.ServeHTTP(w, r)
		})
	})
	_, err = Push(context.Background(), mustTarget(t, refusing+"/lost/img", "a"), idx, o)
	assert.ErrorContains(t, err, "TAG_INVALID")
	assert.Equal(t, put.Load(), int32(1))
	assert.Equal(t, headsAfter.Load(), int32(0), "the refused tag was asked for")

	// A registry that cannot say what the tag names after its answer
	// was lost: the tag is told as one that may have moved.
	var putA atomic.Bool
	unsure := memRegistry(t, func(h http.Handler) http.Handler {
		lose := answerLost(false)(h)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/manifests/a") {
				if r.Method == http.MethodPut {
					putA.Store(true)
				} else if putA.Load() {
					// More than the check may wait: given up at once.
					w.Header().Set("Retry-After", "3600")
					w.WriteHeader(http.StatusTooManyRequests)
					return
				}
			}
			lose.ServeHTTP(w, r)
		})
	})
	_, err = Push(context.Background(), mustTarget(t, unsure+"/lost/img", "a", "b"), idx, o)
	// The count of tries is the PUT's, not the check's.
	assert.ErrorContains(t, err, ": EOF (tried 2 times); may have moved: a; not moved: b (run the build again)")
}

// countingKeychain counts the logins that ask it.
type countingKeychain struct{ n *atomic.Int32 }

func (k countingKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	k.n.Add(1)
	return authn.Anonymous, nil
}

// A check before the work and the push after it share one login: a
// credential helper runs once per repository, not twice.
func TestCheckAndWriteLogInOnce(t *testing.T) {
	host := memRegistry(t, nil)
	var logins atomic.Int32
	r := NewRegistry(mustTarget(t, host+"/once/img", "v1"), Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: countingKeychain{&logins}}}})
	defer r.Close()
	assert.NilError(t, r.Check(context.Background()))
	_, err := r.Write(context.Background(), testIndex(t, "once", amd64), nil)
	assert.NilError(t, err)
	assert.Equal(t, logins.Load(), int32(1))
}
