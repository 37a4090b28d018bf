//go:build integration

package build

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/publish"
	"github.com/nixery-action/nixery-action/pkg/spec"
)

// TestBuildCollisionWarning: three packages of a small flake provide
// bin/tool: the team's flake package (an installable) wins over the two
// nixpkgs packages, the image's /bin/tool is its file, and the build log
// has one warning line per file dropped, naming the path, both packages
// and the rule.
func TestBuildCollisionWarning(t *testing.T) {
	testenv.Require(t, "nix")
	dir, err := filepath.Abs("../../testdata/collide")
	assert.NilError(t, err)
	app := "path:" + dir + "#app"
	s, err := spec.Parse([]string{"beta", "alpha", app}, spec.Options{NoDefaults: true})
	assert.NilError(t, err)
	plats, err := spec.ParsePlatforms("linux/amd64")
	assert.NilError(t, err)
	out := filepath.Join(t.TempDir(), "layout")
	req := Request{
		Nixpkgs: "path:" + dir, Spec: s, Platforms: s.SelectPlatforms(plats),
		Destination: publish.NewLayout(publish.Output{Kind: publish.OCILayout, Path: out}, publish.WriteOptions{}),
	}
	req.Image.Cmd = []string{"tool"}
	var log bytes.Buffer
	res, err := Build(context.Background(), req, Options{Log: logTo(&log)})
	assert.NilError(t, err)
	defer res.Close()

	var warnings []string
	for _, line := range strings.Split(log.String(), "\n") {
		if strings.Contains(line, "warning:") {
			warnings = append(warnings, line)
		}
	}
	assert.Assert(t, is.Len(warnings, 2), log.String())
	for i, dropped := range []string{"alpha", "beta"} { // nixpkgs packages by name
		w := warnings[i]
		assert.Check(t, strings.HasPrefix(w, "[linux/amd64] warning: /bin/tool is provided by more than one package: kept "+app+"'s /nix/store/"), w)
		assert.Check(t, is.Contains(w, "-app/bin/tool, dropped "+dropped+"'s /nix/store/"), w)
		assert.Check(t, strings.HasSuffix(w, "-"+dropped+"/bin/tool (the earlier package wins: your own flake packages first, then nixpkgs packages by name)"), w)
	}

	// The image's /bin/tool is the app's; the others' own files are there.
	links := customisationLinks(t, out, res.Digest, res.Manifests[0].Digest)
	assert.Check(t, strings.HasSuffix(links["bin/tool"], "-app/bin/tool"), "%v", links)
	for _, name := range []string{"alpha", "beta", "app"} {
		assert.Check(t, strings.HasSuffix(links["bin/"+name+"-only"], "-"+name+"/bin/"+name+"-only"), "%v", links)
	}
}

// customisationLinks reads the last layer of a platform image in an OCI
// layout: its symlinks, by path without a leading "./" or "/".
func customisationLinks(t *testing.T, dir, index, manifest string) map[string]string {
	t.Helper()
	idx := readLayoutIndex(t, dir, index)
	im, err := idx.IndexManifest()
	assert.NilError(t, err)
	for _, m := range im.Manifests {
		if m.Digest.String() != manifest {
			continue
		}
		img, err := idx.Image(m.Digest)
		assert.NilError(t, err)
		ls, err := img.Layers()
		assert.NilError(t, err)
		rc, err := ls[len(ls)-1].Uncompressed()
		assert.NilError(t, err)
		defer rc.Close()
		links := map[string]string{}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				return links
			}
			assert.NilError(t, err)
			if h.Typeflag == tar.TypeSymlink {
				links[strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/")] = h.Linkname
			}
		}
	}
	t.Fatalf("no manifest %s in %s", manifest, dir)
	return nil
}
