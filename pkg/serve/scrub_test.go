package serve

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/pkg/nix"
)

// The credentials in --nixpkgs reach neither the person pulling nor the
// server's log, even where Nix's own messages quote them.
func TestServeHidesNixpkgsCredentials(t *testing.T) {
	const ref = "git+https://oauth2:glpat-SECRET1@git.example.org/nixpkgs?ref=main&access_token=tok-SECRET2"
	quoting := func(context.Context, string) (nix.Locked, error) {
		return nix.Locked{}, errors.New("error: unable to download 'https://oauth2:glpat-SECRET1@git.example.org/nixpkgs?access_token=tok-SECRET2': HTTP error 401")
	}
	var log bytes.Buffer
	s, err := New(Options{Lock: quoting, Nixpkgs: ref, Storage: t.TempDir(), Log: slog.New(slog.NewJSONHandler(&log, nil))})
	assert.NilError(t, err)
	s.o.Log.Info("attrs", "nixpkgs", ref, "error", errors.New(ref), slog.Group("g", "ref", ref))
	for _, tag := range []string{"latest", "nosuch"} {
		res, body := get(t, s, http.MethodGet, "/v2/hello/manifests/"+tag)
		assert.Equal(t, res.StatusCode, http.StatusNotFound, body)
		assert.Check(t, is.Contains(body, "cannot be locked"), body)
		assert.Check(t, is.Contains(body, "git.example.org/nixpkgs"), body)
		assert.Check(t, !strings.Contains(body, "SECRET"), body)
	}
	assert.Check(t, is.Contains(log.String(), "could not be locked"))
	assert.Check(t, !strings.Contains(log.String(), "SECRET"), log.String())

	tarball := "https://example.org/nixpkgs.tar.gz?access_token=SECRET3"
	s, err = New(Options{Lock: fakeLock, Nixpkgs: tarball, Storage: t.TempDir()})
	assert.NilError(t, err)
	res, body := get(t, s, http.MethodGet, "/v2/hello/manifests/v1")
	assert.Equal(t, res.StatusCode, http.StatusNotFound, body)
	assert.Check(t, is.Contains(body, "serves only the tag latest"), body)
	assert.Check(t, !strings.Contains(body, "SECRET"), body)
}
