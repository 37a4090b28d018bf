package publish

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/nixery-action/nixery-action/pkg/cache"
	"gotest.tools/v3/assert"
)

func TestNewTarget(t *testing.T) {
	cases := []struct {
		name     string
		image    string
		tags     []string
		insecure bool
		repo     string
		wantTags []string
		scheme   string
		err      string
	}{
		{name: "ghcr", image: "ghcr.io/owner/name", tags: []string{"v1", "latest"},
			repo: "ghcr.io/owner/name", wantTags: []string{"v1", "latest"}, scheme: "https"},
		{name: "loopback", image: "127.0.0.1:5000/a/b", tags: []string{"v1"},
			repo: "127.0.0.1:5000/a/b", wantTags: []string{"v1"}, scheme: "http"},
		{name: "localhost", image: "localhost:5000/a", repo: "localhost:5000/a", wantTags: []string{}, scheme: "http"},
		{name: "localhost without port", image: "localhost/a", repo: "localhost/a", wantTags: []string{}, scheme: "http"},
		{name: "ipv6 loopback", image: "[::1]:5000/a", repo: "[::1]:5000/a", wantTags: []string{}, scheme: "http"},
		{name: "insecure", image: "registry.lan:5000/a", insecure: true, repo: "registry.lan:5000/a", wantTags: []string{}, scheme: "http"},
		{name: "secure by default", image: "registry.lan:5000/a", repo: "registry.lan:5000/a", wantTags: []string{}, scheme: "https"},
		{name: "tag on the image", image: "ghcr.io/o/n:v1", tags: []string{"v2", "v1"},
			repo: "ghcr.io/o/n", wantTags: []string{"v1", "v2"}, scheme: "https"},
		{name: "duplicate tags", image: "ghcr.io/o/n", tags: []string{"a", "b", "a"},
			repo: "ghcr.io/o/n", wantTags: []string{"a", "b"}, scheme: "https"},
		{name: "docker hub", image: "docker.io/user/n", repo: "index.docker.io/user/n", wantTags: []string{}, scheme: "https"},

		{name: "spaces and capitals", image: "Not A/Reference", err: `bad image reference "Not A/Reference": repository can only contain`},
		{name: "capitals", image: "ghcr.io/Owner/tools:V1", err: `repository can only contain the characters ` + "`abcdefghijklmnopqrstuvwxyz0123456789_-./`" + `; repository names must be lowercase`},
		{name: "no registry", image: "hello", err: `bad image reference "hello": name the registry too, e.g. ghcr.io/OWNER/hello`},
		{name: "no registry with namespace", image: "user/hello:v1", err: `name the registry too, e.g. ghcr.io/OWNER/hello or docker.io/USER/hello`},
		{name: "loopback registry alone", image: "127.0.0.1:5000", err: `bad image reference "127.0.0.1:5000" names a registry but no repository: add the repository: 127.0.0.1:5000/NAME`},
		{name: "registry alone", image: "ghcr.io", err: `add the repository: ghcr.io/NAME`},
		{name: "registry with port alone", image: "registry.example.com:5000", err: `add the repository: registry.example.com:5000/NAME`},
		{name: "dotless registry with port alone", image: "myregistry:5000", err: `add the repository: myregistry:5000/NAME`},
		{name: "localhost alone", image: "localhost:5000", err: `add the repository: localhost:5000/NAME`},
		{name: "name with a dotted tag", image: "hello:v1.2", err: `name the registry too, e.g. ghcr.io/OWNER/hello`},
		{name: "digest", image: "ghcr.io/o/n@sha256:0000000000000000000000000000000000000000000000000000000000000000", err: "not a digest"},
		{name: "empty", image: "", err: `bad image reference ""`},
		{name: "bad tag", image: "ghcr.io/o/n", tags: []string{"ok", "no good"}, err: `bad tag "no good"`},
		{name: "tag starting with a dot", image: "ghcr.io/o/n", tags: []string{".v1"}, err: `bad tag ".v1"`},
		{name: "long tag", image: "ghcr.io/o/n", tags: []string{string(make([]byte, 129))}, err: "bad tag"},
		{name: "empty tag", image: "ghcr.io/o/n", tags: []string{"v1", ""}, err: "empty tag"},
		{name: "referrers fallback tag", image: "ghcr.io/o/n", tags: []string{"v1", "sha256-" + strings.Repeat("ab", 32)},
			err: `tag "sha256-abab`},
		{name: "referrers fallback tag on the image", image: "ghcr.io/o/n:sha256-" + strings.Repeat("0f", 32),
			err: "is the OCI referrers fallback tag of the image sha256:0f0f"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NewTarget(tc.image, tc.tags, tc.insecure)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			assert.NilError(t, err)
			assert.Equal(t, got.Repo.Name(), tc.repo)
			assert.DeepEqual(t, got.TagNames(), tc.wantTags)
			assert.Equal(t, got.Repo.Scheme(), tc.scheme)
			for _, tag := range got.Tags {
				assert.Equal(t, tag.Scheme(), tc.scheme)
			}
		})
	}
}

func TestCheckTags(t *testing.T) {
	cases := []struct {
		tags []string
		err  string
	}{
		{tags: nil},
		{tags: []string{"v1", "latest", "1.2.3-rc_1", "A"}},
		{tags: []string{"no good"}, err: `bad tag "no good"`},
		{tags: []string{"-x"}, err: `bad tag "-x"`},
		{tags: []string{"a:b"}, err: `bad tag "a:b"`},
		{tags: []string{""}, err: "empty tag"},
		{tags: []string{"v1", "sha256-" + strings.Repeat("a1", 32)}, err: "is the OCI referrers fallback tag of the image sha256:a1a1"},
		// Only the exact form is the fallback tag's.
		{tags: []string{"sha256-" + strings.Repeat("a1", 31), "sha256-" + strings.Repeat("A1", 32), "sha256-latest", "sha512-" + strings.Repeat("a1", 32)}},
		// The cache record's tag, for layouts and archives too.
		{tags: []string{"v1", "nixery-cache"}, err: `tag "nixery-cache" is where builds keep the repository's cache record`},
	}
	for _, tc := range cases {
		err := CheckTags(tc.tags)
		if tc.err == "" {
			assert.NilError(t, err, "%q", tc.tags)
		} else {
			assert.ErrorContains(t, err, tc.err, "%q", tc.tags)
		}
	}
}

func TestParseOutput(t *testing.T) {
	// A directory named with a colon that exists already is a layout
	// someone named so, not skopeo's DIR:TAG.
	existing := filepath.Join(t.TempDir(), "image:v1")
	assert.NilError(t, os.Mkdir(existing, 0o755))
	cases := []struct {
		in   string
		want Output
		err  string
	}{
		{in: "oci:out/image", want: Output{Kind: OCILayout, Path: "out/image"}},
		{in: "oci:/abs/dir:with:colons", err: `bad output "oci:/abs/dir:with:colons": a tag goes in --tags, not after the directory: write --output=oci:/abs/dir:with --tags=colons`},
		{in: "oci:out/image:v1", err: `bad output "oci:out/image:v1": a tag goes in --tags, not after the directory: write --output=oci:out/image --tags=v1`},
		{in: "oci:out/image:", err: "write --output=oci:out/image --tags=TAG"},
		{in: "oci:/a:b/image", want: Output{Kind: OCILayout, Path: "/a:b/image"}},
		{in: "oci:" + existing, want: Output{Kind: OCILayout, Path: existing}},
		{in: "docker:out/image:v1.tar", want: Output{Kind: DockerArchive, Path: "out/image:v1.tar"}},
		{in: "docker:hello.tar", want: Output{Kind: DockerArchive, Path: "hello.tar"}},
		{in: "oci:", err: "the path after oci: is empty"},
		{in: "docker:", err: "the path after docker: is empty"},
		{in: "docker:-", err: `bad output "docker:-": the image cannot go to stdout, which carries the result: name a path`},
		{in: "oci:-", err: `bad output "oci:-": the image cannot go to stdout, which carries the result: name a path`},
		{in: "tar:x", err: `bad output "tar:x": write oci:DIR`},
		{in: "out/image", err: "write oci:DIR for an OCI layout or docker:FILE.tar"},
		{in: "", err: "bad output"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseOutput(tc.in)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			assert.NilError(t, err)
			assert.Equal(t, got, tc.want)
			assert.Equal(t, got.String(), tc.in)
		})
	}
}

// TestMergeDigest: merge takes bare digests and NAME@DIGEST of the
// target's repository, and refuses other repositories and non-digests.
func TestMergeDigest(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	target, err := NewTarget("127.0.0.1:5000/team/tools", []string{"v1"}, false)
	assert.NilError(t, err)
	for _, ok := range []string{d, " " + d + "\n", "127.0.0.1:5000/team/tools@" + d} {
		got, err := MergeDigest(target, ok)
		assert.NilError(t, err, ok)
		assert.Equal(t, got, d)
	}
	for in, want := range map[string]string{
		"127.0.0.1:5000/team/other@" + d:         "127.0.0.1:5000/team/other, not in 127.0.0.1:5000/team/tools",
		"ghcr.io/team/tools@" + d:                "ghcr.io/team/tools, not in",
		"127.0.0.1:5000/team/tools:v1":           "is not a digest",
		"127.0.0.1:5000/team/tools@sha256:abc":   "is not NAME@DIGEST",
		"sha256:xyz":                             "is not a digest",
		"https://127.0.0.1:5000/team/tools@" + d: `merge digest "https://127.0.0.1:5000/team/tools@` + d + `": give REGISTRY/NAME, not a URL: drop "https://"`,
	} {
		_, err := MergeDigest(target, in)
		assert.ErrorContains(t, err, want, in)
	}
}

// Platforms are named as they are requested: arm64's only variant is
// left out, other variants are kept.
func TestPlatformName(t *testing.T) {
	for _, tc := range []struct {
		p    v1.Platform
		want string
	}{
		{v1.Platform{OS: "linux", Architecture: "amd64"}, "linux/amd64"},
		{v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, "linux/arm64"},
		{v1.Platform{OS: "linux", Architecture: "arm64"}, "linux/arm64"},
		{v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, "linux/arm/v7"},
		{v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v9"}, "linux/arm64/v9"},
	} {
		assert.Equal(t, PlatformName(tc.p), tc.want)
	}
}

// TestNewTargetRefusesRecordTag keeps the record's tag for the record.
func TestNewTargetRefusesRecordTag(t *testing.T) {
	_, err := NewTarget("127.0.0.1:5000/app", []string{"v1", cache.RecordTag}, false)
	assert.ErrorContains(t, err, `tag "nixery-cache" is where builds keep`)
}

func TestSplitTag(t *testing.T) {
	for _, tc := range []struct{ image, repo, tag string }{
		{"example/hi:v1", "example/hi", "v1"},
		{"example/hi", "example/hi", ""},
		{"localhost:5000/hi", "localhost:5000/hi", ""},
		{"localhost:5000/team/hi:v1.2", "localhost:5000/team/hi", "v1.2"},
		{"", "", ""},
	} {
		repo, tag := SplitTag(tc.image)
		assert.Equal(t, repo, tc.repo, tc.image)
		assert.Equal(t, tag, tc.tag, tc.image)
	}
}
