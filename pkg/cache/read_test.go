package cache

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/hostile"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// A cache read says it ran out of time only when RegistryTimeout passed,
// not when the build stopped it (another failure, a signal).
func TestReadWarnings(t *testing.T) {
	stop := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer hanging.Close()
	defer close(stop)
	ref, err := name.ParseReference(strings.TrimPrefix(hanging.URL, "http://") + "/x:latest")
	assert.NilError(t, err)
	o := registry.Options{RegistryTimeout: 100 * time.Millisecond}

	_, reports := Read(context.Background(), []name.Reference{ref}, o)
	assert.Assert(t, is.Len(reports, 1))
	assert.Check(t, is.Error(reports[0].Err, "cache "+ref.String()+": not read within 100ms; its layers will be packed"))

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, reports = Read(ctx, []name.Reference{ref}, o)
	assert.Assert(t, is.Len(reports, 1))
	assert.Check(t, is.Error(reports[0].Err, "cache "+ref.String()+": not read, the build stopped first"))
}

// A registry that echoes the login in its errors, with escape sequences
// to rewrite the terminal: the cache warning shows neither.
func TestReadWarningHidesLoginAndEscapes(t *testing.T) {
	const pw = "p4ssw0rd-echoed"
	h := hostile.Start(hostile.Behaviour{RequireAuth: true, ErrorMessage: "bad login alice:" + pw + " \x1b]0;pwned\x07\x1b[2K\x1b[1Apushed OK"})
	defer h.Close()
	ref, err := name.ParseReference(h.Host+"/x:latest", name.Insecure)
	assert.NilError(t, err)
	o := registry.Options{Credentials: registry.Credentials{Username: "alice", Password: pw, Registry: h.Host}}
	_, reports := Read(context.Background(), []name.Reference{ref}, o)
	assert.Assert(t, is.Len(reports, 1))
	msg := reports[0].Err.Error()
	assert.Check(t, is.Contains(msg, "bad login alice:***"), msg)
	assert.Check(t, !strings.Contains(msg, pw), msg)
	assert.Check(t, !strings.ContainsAny(msg, "\x1b\x07\n"), "%q", msg)
	assert.Check(t, is.Contains(msg, `\x1b]0;pwned\x07`), msg)
}

// A cache image written as a URL or a layout is refused in one line
// rather than read from a registry named "https:" or "oci:".
func TestParseRefForm(t *testing.T) {
	_, err := ParseRef("https://ghcr.io/me/tools:v1", false)
	assert.Error(t, err, `--cache-from "https://ghcr.io/me/tools:v1": give REGISTRY/NAME, not a URL: drop "https://"`)
	_, err = ParseRef("oci:cache", false)
	assert.ErrorContains(t, err, `--cache-from "oci:cache": give REGISTRY/NAME, not a transport (oci:)`)
	_, err = ParseRef("ghcr.io/me/tools:v1", false)
	assert.NilError(t, err)
}
