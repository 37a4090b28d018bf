package publish

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/hostile"
	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/cache"
	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// cachedIndex is testIndex with cache keys on its layers, as a build
// pushes them.
func cachedIndex(t testing.TB, salt string) *image.Index {
	t.Helper()
	dir := t.TempDir()
	var layers []image.Blob
	for i, pkg := range []string{"cacert", "hello"} {
		l := realLayer(t, dir, map[string]string{"nix/store/" + pkg + "/x": salt + pkg}, pkg)
		l.CacheKey = fmt.Sprintf("sha256:%064x", i+1)
		layers = append(layers, l)
	}
	img, err := image.NewImage(amd64, layers, image.Options{})
	assert.NilError(t, err)
	idx, err := image.NewIndex([]*image.Image{img}, nil)
	assert.NilError(t, err)
	return idx
}

func ref(t testing.TB, s string) name.Reference {
	t.Helper()
	r, err := cache.ParseRef(s, false)
	assert.NilError(t, err)
	return r
}

func hasAuth(auths []string, want string) bool {
	for _, a := range auths {
		if a == want {
			return true
		}
	}
	return false
}

// The --username/--password pair goes to the registry pushed to, never to
// a cache registry on another port, which gets the docker config's
// credentials for it or none.
func TestCredentialsScopedToTheirRegistry(t *testing.T) {
	target := testenv.StartHostile(t, hostile.Behaviour{RequireAuth: true})
	other := testenv.StartHostile(t, hostile.Behaviour{RequireAuth: true})
	ctx := context.Background()
	_, err := Push(ctx, mustTarget(t, other.Host+"/cache/img", "v1"), cachedIndex(t, "other"),
		Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: staticKeychain{other.Host, "carol", "carol-pw"}}}})
	assert.NilError(t, err)
	before := len(other.Authorizations())

	alice := registry.Credentials{Username: "alice", Password: "alice-secret", Registry: target.Host,
		Keychain: staticKeychain{other.Host, "carol", "carol-pw"}}
	found, notes := cache.Read(ctx, []name.Reference{ref(t, other.Host+"/cache/img:v1"), ref(t, target.Host+"/app:v1")}, registry.Options{Credentials: alice})
	assert.Equal(t, len(found), 2, "%v", notes)
	seen := other.Authorizations()[before:]
	assert.Assert(t, len(seen) > 0)
	for _, a := range seen {
		assert.Assert(t, !strings.Contains(a, "alice"), "cache registry was sent %q", a)
	}
	assert.Assert(t, hasAuth(seen, "Basic carol:carol-pw"), "%v", seen)
	assert.Assert(t, hasAuth(target.Authorizations(), "Basic alice:alice-secret"), "%v", target.Authorizations())

	// Without a docker config entry the other registry gets nothing, and
	// with no Registry named the pair goes to no cache registry at all.
	before = len(other.Authorizations())
	_, notes = cache.Read(ctx, []name.Reference{ref(t, other.Host+"/cache/img:v1")},
		registry.Options{Credentials: registry.Credentials{Username: "alice", Password: "alice-secret", Keychain: noCreds}})
	assert.Equal(t, len(other.Authorizations()), before, "%v", notes)
	assert.Assert(t, is.Contains(notes[0].String(), "401"))
	// The warning is an error a caller can look into.
	var cw *cache.Warning
	assert.Assert(t, errors.As(notes[0].Err, &cw), "%T", notes[0].Err)
	assert.Equal(t, cw.Ref.String(), other.Host+"/cache/img:v1")
	var terr *transport.Error
	assert.Assert(t, errors.As(notes[0].Err, &terr), "%v", notes[0].Err)
	assert.Equal(t, terr.StatusCode, http.StatusUnauthorized)

	// Push and Merge take the pair to their own registry.
	_, err = Push(ctx, mustTarget(t, target.Host+"/app", "v2"), cachedIndex(t, "target"),
		Options{Options: registry.Options{Credentials: registry.Credentials{Username: "bob", Password: "bob-secret", Keychain: noCreds}}})
	assert.NilError(t, err)
	assert.Assert(t, hasAuth(target.Authorizations(), "Basic bob:bob-secret"))
}

// A registry that redirects to itself is given up on after 10 redirects,
// by the cache reader and by the registry library's push alike.
func TestRedirectLoop(t *testing.T) {
	reg := testenv.StartHostile(t, hostile.Behaviour{})
	ctx := context.Background()
	_, err := Push(ctx, mustTarget(t, reg.Host+"/loop/img", "v1"), cachedIndex(t, "loop"), Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}}})
	assert.NilError(t, err)
	reg.Set(hostile.Behaviour{RedirectLoop: true})

	start := reg.Requests()
	_, notes := cache.Read(ctx, []name.Reference{ref(t, reg.Host+"/loop/img:v1")}, registry.Options{Credentials: registry.Credentials{Keychain: noCreds}})
	assert.Assert(t, is.Contains(notes[0].String(), "redirect"), notes[0].String())
	assert.Assert(t, reg.Requests()-start <= 2*(registry.MaxRedirects+2), "%d requests", reg.Requests()-start)

	start = reg.Requests()
	_, err = Push(ctx, mustTarget(t, reg.Host+"/loop/other", "v1"), cachedIndex(t, "loop2"),
		Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}, Backoff: fastBackoff}})
	assert.ErrorContains(t, err, "redirected more than 10 times")
	assert.Assert(t, reg.Requests()-start <= 20*(registry.MaxRedirects+2), "%d requests", reg.Requests()-start)

	_, err = mergeOne(ctx, mustTarget(t, reg.Host+"/loop/img", "all"), []string{"sha256:" + strings.Repeat("0", 64)},
		Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}, Backoff: fastBackoff}})
	assert.ErrorContains(t, err, "redirect")
}

// Manifests and configs are bounded in size: a declared size over the
// limit is refused before reading, and an endless body is cut off.
func TestOversizedManifestsAndConfigs(t *testing.T) {
	reg := testenv.StartHostile(t, hostile.Behaviour{HugeConfig: 1 << 40, EndlessManifest: true})
	ctx := context.Background()
	o := Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}}}
	_, notes := cache.Read(ctx, []name.Reference{ref(t, reg.Host+"/big/img:huge"), ref(t, reg.Host+"/big/img:endless")}, o.Options)
	assert.Assert(t, is.Contains(notes[0].String(), "declares 1099511627776 bytes"), notes[0].String())
	assert.Assert(t, is.Contains(notes[1].String(), fmt.Sprintf("more than the %d bytes allowed", registry.MaxManifestSize)), notes[1].String())
}

// A registry without the referrers API whose fallback tag is an endless
// index: attaching reads at most registry.MaxManifestSize bytes of it and fails
// naming the limit, and Attached says no.
func TestEndlessReferrersIndex(t *testing.T) {
	reg := testenv.StartHostile(t, hostile.Behaviour{})
	ctx := context.Background()
	o := Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}, Backoff: fastBackoff}}
	idx := testIndex(t, "endless-referrers", amd64)
	r := NewRegistry(mustTarget(t, reg.Host+"/refs/img", "v1"), o)
	defer r.Close()
	_, err := r.Write(ctx, idx, nil)
	assert.NilError(t, err)
	subject, imgs, _ := referrers(t, idx)

	reg.Set(hostile.Behaviour{EndlessReferrers: true})
	assert.Check(t, !r.Attached(ctx, subject, imgs...))
	err = r.AttachReferrers(ctx, subject, imgs...)
	assert.ErrorContains(t, err, fmt.Sprintf("more than the %d bytes allowed", registry.MaxManifestSize))
}

// A registry that trickles its answers is given up on: per request, and
// for the whole cache read.
func TestTricklingRegistry(t *testing.T) {
	reg := testenv.StartHostile(t, hostile.Behaviour{})
	ctx := context.Background()
	_, err := Push(ctx, mustTarget(t, reg.Host+"/slow/img", "v1"), cachedIndex(t, "slow"), Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}}})
	assert.NilError(t, err)
	reg.Set(hostile.Behaviour{Trickle: 50 * time.Millisecond})
	refs := []name.Reference{ref(t, reg.Host+"/slow/img:v1")}

	_, notes := cache.Read(ctx, refs, registry.Options{Credentials: registry.Credentials{Keychain: noCreds}, RequestTimeout: 300 * time.Millisecond})
	assert.Assert(t, is.Contains(notes[0].String(), "did not answer within 300ms"), notes[0].String())
	_, notes = cache.Read(ctx, refs, registry.Options{Credentials: registry.Credentials{Keychain: noCreds}, RegistryTimeout: 300 * time.Millisecond})
	assert.Assert(t, is.Contains(notes[0].String(), "not read within 300ms"), notes[0].String())

	err = Options{Options: registry.Options{RegistryTimeout: -time.Second}}.Validate()
	assert.ErrorContains(t, err, "registry timeout -1s is negative")
}

// A 4,000-entry manifest list is parsed once and only its first
// cache.MaxManifests images are read, a few at a time.
func TestHugeManifestList(t *testing.T) {
	reg := testenv.StartHostile(t, hostile.Behaviour{})
	reg.ManifestList("list/img", "big", 4000, image.AnnotationLayerCache)
	start := reg.Requests()
	found, notes := cache.Read(context.Background(), []name.Reference{ref(t, reg.Host+"/list/img:big")}, registry.Options{Credentials: registry.Credentials{Keychain: noCreds}})
	assert.Equal(t, len(found), cache.MaxManifests, "%v", notes)
	// ping, index, and per image: manifest, config, layer HEAD
	assert.Assert(t, reg.Requests()-start <= int64(2+3*cache.MaxManifests), "%d requests", reg.Requests()-start)
}

func BenchmarkReadCacheManifestList(b *testing.B) {
	reg := testenv.StartHostile(b, hostile.Behaviour{})
	reg.ManifestList("list/img", "big", 4000, image.AnnotationLayerCache)
	refs := []name.Reference{ref(b, reg.Host+"/list/img:big")}
	for b.Loop() {
		found, notes := cache.Read(context.Background(), refs, registry.Options{Credentials: registry.Credentials{Keychain: noCreds}})
		if len(found) != cache.MaxManifests {
			b.Fatal(notes)
		}
	}
}

// A registry's error message cannot break a line: notes and errors stay
// one line, so nothing it says can start a workflow command.
func TestRegistryErrorsStayOneLine(t *testing.T) {
	evil := "denied\n::set-output name=digest::sha256:evil\r\n::warning title=INJECTED::pwned"
	reg := testenv.StartHostile(t, hostile.Behaviour{ErrorMessage: evil})
	ctx := context.Background()
	_, notes := cache.Read(ctx, []name.Reference{ref(t, reg.Host+"/x/img:v1")}, registry.Options{Credentials: registry.Credentials{Keychain: noCreds}})
	assert.Assert(t, !strings.ContainsAny(notes[0].String(), "\r\n"), notes[0].String())
	assert.Assert(t, is.Contains(notes[0].String(), "::set-output"), notes[0].String()) // kept, but inline

	_, err := mergeOne(ctx, mustTarget(t, reg.Host+"/x/img", "v1"), []string{"sha256:" + strings.Repeat("1", 64)},
		Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}, Backoff: fastBackoff}})
	assert.Assert(t, err != nil)
	assert.Assert(t, !strings.ContainsAny(err.Error(), "\r\n"), err.Error())
}

// A registry that echoes the password in its error: the error printed
// holds no password, and still unwraps to the registry's answer.
func TestRegistryErrorRedactedKeepsCause(t *testing.T) {
	const password = "p4ssw0rd-echoed"
	reg := testenv.StartHostile(t, hostile.Behaviour{RequireAuth: true, ErrorMessage: "bad login alice:" + password})
	_, err := mergeOne(context.Background(), mustTarget(t, reg.Host+"/x/img", "v1"), []string{"sha256:" + strings.Repeat("1", 64)},
		Options{Options: registry.Options{Credentials: registry.Credentials{Username: "alice", Password: password, Registry: reg.Host, Keychain: noCreds}, Backoff: fastBackoff}})
	assert.Assert(t, err != nil)
	assert.Assert(t, !strings.Contains(err.Error(), password), err.Error())
	assert.ErrorContains(t, err, "DENIED: bad login alice:***")
	var re *registry.RegistryError
	assert.Assert(t, errors.As(err, &re), "%T", err)
	assert.Equal(t, re.Kind, registry.Denied)
	var terr *transport.Error
	assert.Assert(t, errors.As(err, &terr), "the registry's answer is lost: %v", err)
	assert.Equal(t, terr.StatusCode, http.StatusBadRequest)
}

// A credential helper that fails prints what it likes; none of it reaches
// the error, which may be printed in a public log.
func TestFailingCredentialHelperRedacted(t *testing.T) {
	reg := testenv.StartHostile(t, hostile.Behaviour{RequireAuth: true})
	bin, cfg := t.TempDir(), t.TempDir()
	script := "#!/bin/sh\necho 'token=hunter2-very-secret'\nexit 3\n"
	assert.NilError(t, os.WriteFile(filepath.Join(bin, "docker-credential-leaky"), []byte(script), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{"credHelpers":{"`+reg.Host+`":"leaky"}}`), 0o644))
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	t.Setenv("DOCKER_CONFIG", cfg)

	_, err := Push(context.Background(), mustTarget(t, reg.Host+"/x/img", "v1"), cachedIndex(t, "helper"), Options{})
	assert.ErrorContains(t, err, "the credential helper docker-credential-leaky failed (exit status 3")
	assert.Assert(t, !strings.Contains(err.Error(), "hunter2"), err.Error())
	_, notes := cache.Read(context.Background(), []name.Reference{ref(t, reg.Host+"/x/img:v1")}, registry.Options{})
	assert.Assert(t, !strings.Contains(notes[0].String(), "hunter2"), notes[0].String())
}

// A registry's error message cannot reach the terminal with escape
// sequences (colours, line clears, a window title): a push's error, a
// merge's and a cache note all escape them.
func TestRegistryErrorsEscaped(t *testing.T) {
	evil := "denied \x1b[2K\x1b[31mred\x1b]0;owned\x07 \u202etxet"
	reg := testenv.StartHostile(t, hostile.Behaviour{ErrorMessage: evil})
	ctx := context.Background()
	opts := Options{Options: registry.Options{Credentials: registry.Credentials{Keychain: noCreds}, Backoff: fastBackoff}}
	clean := func(what, s string) {
		t.Helper()
		assert.Check(t, !strings.ContainsFunc(s, func(r rune) bool { return r != ' ' && !unicode.IsPrint(r) }), "%s: %q", what, s)
		assert.Check(t, is.Contains(s, `\x1b[2K\x1b[31mred\x1b]0;owned\x07 \u202etxet`), what)
	}
	printable := func(what, s string) {
		t.Helper()
		assert.Check(t, !strings.ContainsFunc(s, func(r rune) bool { return r != ' ' && !unicode.IsPrint(r) }), "%s: %q", what, s)
	}
	_, notes := cache.Read(ctx, []name.Reference{ref(t, reg.Host+"/x/img:v1")}, opts.Options)
	assert.Assert(t, len(notes) > 0)
	clean("cache note", notes[0].String())
	_, err := mergeOne(ctx, mustTarget(t, reg.Host+"/x/img", "v1"), []string{"sha256:" + strings.Repeat("1", 64)}, opts)
	assert.Assert(t, err != nil)
	clean("merge", err.Error())
	_, err = Push(ctx, mustTarget(t, reg.Host+"/x/img", "v1"), cachedIndex(t, "escaped"), opts)
	assert.Assert(t, err != nil)
	printable("push", err.Error())
}
