package main

import (
	"fmt"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/pkg/build"
	"github.com/nixery-action/nixery-action/pkg/publish"
)

// pushedTwice is an index pushed to two repositories, each with its tags.
func pushedTwice() *publish.Result {
	d := "sha256:" + strings.Repeat("1", 64)
	return &publish.Result{
		Image: "reg/z/r1", Digest: d, Reference: "reg/z/r1@" + d, Tags: []string{"v1"}, Pushed: true,
		Manifests: []publish.ManifestResult{{Platform: "linux/amd64", Layers: []publish.LayerResult{{Size: 10, Uploaded: true, Packages: []string{"hello"}}}}},
		Repositories: []publish.RepositoryResult{
			{Image: "reg/z/r1", Reference: "reg/z/r1@" + d, Tags: []string{"v1"}},
			{Image: "reg/z/r2", Reference: "reg/z/r2@" + d, Tags: []string{"v2", "latest"}},
		},
	}
}

// Pushed to several repositories, the result line and the summary name
// every one with its tags, not only the first.
func TestEveryRepositoryShown(t *testing.T) {
	res := pushedTwice()
	d := res.Digest
	assert.Equal(t, resultLine(res), "pushed reg/z/r1@"+d+" as v1; reg/z/r2@"+d+" as v2, latest (1 layer uploaded to reg/z/r1, 0 already there)")

	md := summary(&build.Result{Result: res}, "")
	assert.Check(t, strings.HasPrefix(md, "### reg/z/r1 and 1 more\n"), md)
	assert.Check(t, is.Contains(md, "Pushed to 2 repositories (the uploads below are to the first):\n\n- `reg/z/r1@"+d+"`: `v1`\n- `reg/z/r2@"+d+"`: `v2`, `latest`\n"), md)
	assert.Check(t, !strings.Contains(md, "Tags:"), md)

	// One repository: as before.
	res.Repositories = nil
	assert.Equal(t, resultLine(res), "pushed reg/z/r1@"+d+" as v1 (1 layer uploaded, 0 already there)")
	md = summary(&build.Result{Result: res}, "")
	assert.Check(t, strings.HasPrefix(md, "### reg/z/r1\n"), md)
	assert.Check(t, is.Contains(md, "`reg/z/r1@"+d+"`\n\nTags: `v1`\n"), md)
}

// Not pushed (push: false) with tags naming several repositories, the
// result line and the summary say where each would have gone, as for a
// push, and claim no push.
func TestEveryRepositoryShownNotPushed(t *testing.T) {
	res := pushedTwice()
	d := res.Digest
	res.Pushed, res.Reference = false, ""
	for i := range res.Repositories {
		res.Repositories[i].Reference = ""
	}
	res.Manifests[0].Layers[0].Uploaded = false
	assert.Check(t, is.Equal(resultLine(res), "built, not pushed: "+d+" (would be pushed to reg/z/r1 as v1; to reg/z/r2 as v2, latest; 1 layer)"))

	md := summary(&build.Result{Result: res}, "")
	assert.Check(t, strings.HasPrefix(md, "### reg/z/r1 and 1 more\n"), md)
	assert.Check(t, is.Contains(md, "Would have been pushed to 2 repositories (push: false):\n\n- `reg/z/r1@"+d+"`: `v1`\n- `reg/z/r2@"+d+"`: `v2`, `latest`\n"), md)
	assert.Check(t, is.Contains(md, "Built and checked, not pushed (push: false): `"+d+"`"), md)
	assert.Check(t, !strings.Contains(md, "Pushed to"), md)
	assert.Check(t, !strings.Contains(md, "uploaded") && !strings.Contains(md, "already present"), md)
	assert.Check(t, !strings.Contains(md, "Tags"), md)

	// Markdown in a repository's name stays in its code span.
	res.Repositories[1].Image = "reg/z/`r2"
	md = summary(&build.Result{Result: res}, "")
	assert.Check(t, !strings.Contains(md, "- `reg/z/`r2"), md)
}

// Written to an output, the layers are "written" or "already there", as
// the result line says, not "uploaded".
func TestSummaryOutputWords(t *testing.T) {
	d := "sha256:" + strings.Repeat("1", 64)
	res := &publish.Result{Image: "oci:/tmp/x/layout", Digest: d, Tags: []string{"v1"}, Pushed: true,
		Manifests: []publish.ManifestResult{{Platform: "linux/amd64", Layers: []publish.LayerResult{
			{Size: 10, Uploaded: true, Packages: []string{"hello"}},
			{Size: 20, Packages: []string{"glibc"}},
		}}},
	}
	assert.Equal(t, resultLine(res), "wrote oci:/tmp/x/layout: "+d+" as v1 (1 layer written, 1 already there)")
	md := summary(&build.Result{Result: res}, "")
	assert.Check(t, is.Contains(md, "| 1 | 10 B | hello | written |\n| 2 | 20 B | glibc | already there |\n"), md)
	assert.Check(t, !strings.Contains(md, "uploaded") && !strings.Contains(md, "already present"), md)
}

// The heading of a summary without an image names flake references with
// their credentials hidden: escaped for markdown ('_' as '\_'), a token
// would not match the runner's mask.
func TestSummaryHeadingHidesTokens(t *testing.T) {
	res := &build.Result{Result: &publish.Result{Digest: "sha256:" + strings.Repeat("1", 64)}}
	md := summary(res, packageNames("hello, http://127.0.0.1:1/a.tar.gz?access_token=s3cr3t_t0ken#app\ngit+https://oauth2:tok_en@example.com/x.git#y"))
	assert.Check(t, !strings.Contains(md, "s3cr3t") && !strings.Contains(md, "tok_en") && !strings.Contains(md, `tok\_en`), md)
	assert.Check(t, strings.HasPrefix(md, "### hello http://127.0.0.1:1/a.tar.gz?access\\_token=REDACTED\\#app git+https://REDACTED@example.com/x.git\\#y\n"), md)
}

// A summary stays far below GitHub's 1 MiB for a step however many
// packages the layers hold: a row lists a dozen and counts the rest.
func TestSummaryBounded(t *testing.T) {
	var layers []publish.LayerResult
	for i := range 125 {
		var pkgs []string
		for j := range 80 {
			pkgs = append(pkgs, fmt.Sprintf("python3.12-package-number-%d-of-layer-%d-1.0.0", j, i))
		}
		layers = append(layers, publish.LayerResult{Size: 1, Packages: pkgs})
	}
	var manifests []publish.ManifestResult
	for _, p := range []string{"linux/amd64", "linux/arm64", "linux/arm/v7", "linux/386", "linux/riscv64", "linux/ppc64le", "linux/s390x"} {
		manifests = append(manifests, publish.ManifestResult{Platform: p, Layers: layers})
	}
	md := summary(&build.Result{Result: &publish.Result{Digest: "sha256:" + strings.Repeat("1", 64), Manifests: manifests}}, "x")
	assert.Check(t, len(md) < 768<<10, "%d bytes", len(md))
	assert.Check(t, is.Contains(md, "python3.12-package-number-11-of-layer-0-1.0.0 and 68 more |"))
	assert.Check(t, !strings.Contains(md, "python3.12-package-number-12-of-layer-0-1.0.0"))
}
