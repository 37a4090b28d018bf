package provenance

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"gotest.tools/v3/assert"
)

var (
	subject = v1.Hash{Algorithm: "sha256", Hex: "6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b"}
	sbomSum = v1.Hash{Algorithm: "sha256", Hex: "a3f5c6b1e2d4a3f5c6b1e2d4a3f5c6b1e2d4a3f5c6b1e2d4a3f5c6b1e2d4a3f5"}
	env     = map[string]string{
		"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "me/tools",
		"GITHUB_REPOSITORY_ID": "123", "GITHUB_REPOSITORY_OWNER_ID": "456", "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
		"GITHUB_REF": "refs/heads/main", "GITHUB_WORKFLOW_REF": "me/tools/.github/workflows/image.yml@refs/heads/main",
		"GITHUB_EVENT_NAME": "push", "GITHUB_RUN_ID": "789", "GITHUB_RUN_ATTEMPT": "2", "RUNNER_ENVIRONMENT": "github-hosted",
		"GITHUB_TOKEN": "secret-token",
	}
)

// parse checks the statement with the in-toto project's own Go bindings:
// strict decoding (no unknown fields) and their Validate methods.
func parse(t *testing.T, doc []byte) (*intoto.Statement, *slsa.Provenance) {
	t.Helper()
	var st intoto.Statement
	assert.NilError(t, protojson.Unmarshal(doc, &st))
	assert.NilError(t, st.Validate())
	raw, err := protojson.Marshal(st.GetPredicate())
	assert.NilError(t, err)
	var p slsa.Provenance
	assert.NilError(t, protojson.Unmarshal(raw, &p))
	assert.NilError(t, p.Validate())
	return &st, &p
}

func TestNewInGitHubActions(t *testing.T) {
	gh := GitHubFromEnv(func(k string) string { return env[k] })
	doc, err := New(Options{
		Name: "ghcr.io/me/tools", Subject: subject, Platform: "linux/arm64", Version: "v1.4.0",
		Nixpkgs:  "github:NixOS/nixpkgs/687f05a9184cad4eaf905c48b63649e3a86f5433?narHash=sha256-vZJZjLo513IeI8hjzHFc6TDezUd4uCE2Eq4SNO3DNNg%3D",
		Packages: []string{"hello", "cacert", "python3Packages.requests"}, SBOM: &sbomSum, GitHub: gh,
	})
	assert.NilError(t, err)
	st, p := parse(t, doc)

	assert.Equal(t, st.GetPredicateType(), "https://slsa.dev/provenance/v1")
	assert.Equal(t, st.GetSubject()[0].GetName(), "ghcr.io/me/tools")
	assert.DeepEqual(t, st.GetSubject()[0].GetDigest(), map[string]string{"sha256": subject.Hex})

	bd := p.GetBuildDefinition()
	ext := bd.GetExternalParameters().AsMap()
	assert.DeepEqual(t, ext["packages"], []any{"cacert", "hello", "python3Packages.requests"})
	assert.Equal(t, ext["platform"], "linux/arm64")
	assert.DeepEqual(t, ext["workflow"], map[string]any{"ref": "refs/heads/main", "repository": "https://github.com/me/tools", "path": ".github/workflows/image.yml"})
	deps := bd.GetResolvedDependencies()
	assert.Equal(t, len(deps), 2)
	assert.Equal(t, deps[0].GetName(), "nixpkgs")
	assert.DeepEqual(t, deps[0].GetDigest(), map[string]string{"gitCommit": "687f05a9184cad4eaf905c48b63649e3a86f5433"})
	assert.Equal(t, deps[0].GetAnnotations().AsMap()["narHash"], "sha256-vZJZjLo513IeI8hjzHFc6TDezUd4uCE2Eq4SNO3DNNg=")
	assert.Equal(t, deps[1].GetUri(), "git+https://github.com/me/tools@refs/heads/main")
	assert.DeepEqual(t, deps[1].GetDigest(), map[string]string{"gitCommit": env["GITHUB_SHA"]})
	assert.DeepEqual(t, bd.GetInternalParameters().AsMap()["github"], map[string]any{
		"event_name": "push", "repository_id": "123", "repository_owner_id": "456", "runner_environment": "github-hosted"})

	rd := p.GetRunDetails()
	assert.Equal(t, rd.GetBuilder().GetId(), "https://github.com/me/tools/.github/workflows/image.yml@refs/heads/main")
	assert.DeepEqual(t, rd.GetBuilder().GetVersion(), map[string]string{"nixery": "v1.4.0"})
	assert.Equal(t, rd.GetMetadata().GetInvocationId(), "https://github.com/me/tools/actions/runs/789/attempts/2")
	assert.Equal(t, rd.GetByproducts()[0].GetDigest()["sha256"], sbomSum.Hex)

	// Nothing secret and no time: the same inputs give the same bytes.
	assert.Assert(t, !bytes.Contains(doc, []byte("secret-token")))
	assert.Assert(t, !regexp.MustCompile(`\d{4}-\d\d-\d\dT`).Match(doc))
	again, err := New(Options{
		Name: "ghcr.io/me/tools", Subject: subject, Platform: "linux/arm64", Version: "v1.4.0",
		Nixpkgs:  "github:NixOS/nixpkgs/687f05a9184cad4eaf905c48b63649e3a86f5433?narHash=sha256-vZJZjLo513IeI8hjzHFc6TDezUd4uCE2Eq4SNO3DNNg%3D",
		Packages: []string{"python3Packages.requests", "hello", "cacert"}, SBOM: &sbomSum, GitHub: GitHubFromEnv(func(k string) string { return env[k] }),
	})
	assert.NilError(t, err)
	assert.Assert(t, bytes.Equal(doc, again))
}

func TestNewOutsideActions(t *testing.T) {
	assert.Assert(t, GitHubFromEnv(func(string) string { return "" }) == nil)
	doc, err := New(Options{Subject: subject, Nixpkgs: "path:/nix/store/abc-source?lastModified=1&narHash=sha256-x", Packages: []string{"hello"}})
	assert.NilError(t, err)
	st, p := parse(t, doc)
	assert.Equal(t, st.GetSubject()[0].GetName(), "image")
	assert.Equal(t, p.GetRunDetails().GetBuilder().GetId(), BuilderID)
	assert.Assert(t, p.GetRunDetails().GetMetadata() == nil)
	deps := p.GetBuildDefinition().GetResolvedDependencies()
	assert.Equal(t, len(deps), 1)
	assert.Assert(t, deps[0].GetDigest() == nil) // a path has no revision
	var plain map[string]any
	assert.NilError(t, json.Unmarshal(doc, &plain))
	assert.Equal(t, plain["_type"], "https://in-toto.io/Statement/v1")
}

func TestNewErrors(t *testing.T) {
	_, err := New(Options{Nixpkgs: "nixpkgs"})
	assert.ErrorContains(t, err, "must be a sha256 manifest digest")
	_, err = New(Options{Subject: subject})
	assert.ErrorContains(t, err, "no nixpkgs flake reference")
}

// Credentials in the flake references built from never reach the
// statement (it is pushed beside the image); the revisions still do.
func TestNewHidesCredentials(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	doc, err := New(Options{Subject: subject,
		Nixpkgs:  "git+https://oauth2:glpat-SECRET1@git.example.org/nixpkgs?ref=main&rev=" + rev,
		Packages: []string{"hello", "git+https://ghp_SECRET2@github.com/team/app#app"},
		Flakes:   []Flake{{Installable: "git+https://ghp_SECRET2@github.com/team/app#app", URL: "git+https://ghp_SECRET2@github.com/team/app?rev=" + rev}},
	})
	assert.NilError(t, err)
	for _, secret := range []string{"SECRET1", "SECRET2", "glpat", "ghp_"} {
		assert.Check(t, !bytes.Contains(doc, []byte(secret)), "%s in %s", secret, doc)
	}
	_, p := parse(t, doc)
	deps := p.GetBuildDefinition().GetResolvedDependencies()
	assert.Equal(t, len(deps), 2)
	for _, d := range deps {
		assert.Check(t, strings.Contains(d.GetUri(), "REDACTED@"), d.GetUri())
		assert.Check(t, d.GetDigest()["gitCommit"] == rev, "%v", d.GetDigest())
	}
}

// A revision is a git commit only for git's references: a Mercurial
// changeset is kept in the URI, not called a gitCommit.
func TestFlakeResourceRevisions(t *testing.T) {
	const rev = "89ab89ab89ab89ab89ab89ab89ab89ab89ab89ab"
	for ref, commit := range map[string]string{
		"git+https://git.example/x?ref=main&rev=" + rev: rev,
		"github:o/r/" + rev:                             rev,
		"hg+https://hg.example/x?rev=" + rev:            "",
		"path:/nix/store/x-source?narHash=sha256-x":     "",
	} {
		r := flakeResource("x", ref)
		assert.Equal(t, r.Digest["gitCommit"], commit, ref)
	}
}
