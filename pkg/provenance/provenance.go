// Package provenance writes what built an image as an in-toto Statement
// v1 with a SLSA provenance v1 predicate: the subject is a platform
// image's manifest digest; the build definition names the locked nixpkgs,
// the requested packages and nixery's version; the run details name the
// GitHub Actions run when there is one. The statement is unsigned;
// pkg/sbom attaches it to the image as a referrer.
//
// The types are plain structs encoded with encoding/json rather than the
// in-toto project's protobuf bindings, whose protojson output is
// deliberately unstable (it varies whitespace between runs), while the
// same build must give the same bytes and digest.
package provenance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nixery-action/nixery-action/pkg/flakeref"
)

const (
	// StatementType is the in-toto Statement v1 type.
	StatementType = "https://in-toto.io/Statement/v1"
	// PredicateType is the SLSA provenance v1 predicate type.
	PredicateType = "https://slsa.dev/provenance/v1"
	// BuildType names the shape of this tool's buildDefinition (README,
	// "Provenance").
	BuildType = "https://github.com/nixery-action/nixery-action/provenance/v1"
	// BuilderID names nixery as the builder outside GitHub Actions.
	BuilderID = "https://github.com/nixery-action/nixery-action"
)

// Options are what the statement records.
type Options struct {
	// Subject is the platform image's manifest digest, and Name what to
	// call it: the image's repository, e.g. ghcr.io/me/tools.
	Name    string
	Subject v1.Hash
	// Nixpkgs is the locked nixpkgs flake reference the packages were
	// built from (nix.Builder.Resolve), e.g. github:NixOS/nixpkgs/<rev>
	// or path:/nix/store/...?narHash=...
	Nixpkgs string
	// Packages are the requested attribute paths and installables;
	// Platform the image's.
	Packages []string
	// Flakes are the other flakes whose packages (installables) went in,
	// each as given and locked.
	Flakes   []Flake
	Platform string
	// Version is nixery's version.
	Version string
	// SBOM, when set, is the digest of the image's SBOM, listed as a
	// byproduct of the build.
	SBOM *v1.Hash
	// GitHub describes the GitHub Actions run; nil outside Actions.
	GitHub *GitHub
	// Settings are the other choices that shaped the image; nil leaves
	// them out.
	Settings *Settings
}

// Settings are what a user chose beyond the packages, nixpkgs and the
// platform: the image's config and how its layers were made. Env gives
// variable names only: a value may be a secret, and a provenance
// statement may be published where the image is not (a transparency
// log); the config in the subject holds the values.
type Settings struct {
	Entrypoint  []string          `json:"entrypoint,omitempty"`
	Cmd         []string          `json:"cmd,omitempty"`
	EnvNames    []string          `json:"envNames,omitempty"`
	WorkingDir  string            `json:"workingDir,omitempty"`
	User        string            `json:"user,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Created     string            `json:"created,omitempty"`
	// LayerBudget and Strategy are the layering's; Popularity the
	// sha256 of the popularity data it used (see PopularityDigest), if
	// any.
	LayerBudget int    `json:"layerBudget,omitempty"`
	Strategy    string `json:"strategy,omitempty"`
	Popularity  string `json:"popularity,omitempty"`
	// Compression is the layers' compression and level, e.g. gzip:4.
	Compression string `json:"compression,omitempty"`
}

// Flake is a flake other than nixpkgs that the image's packages came from.
type Flake struct {
	Installable string // as given, e.g. .#app
	URL         string // the locked flake reference
}

// GitHub is the GitHub Actions run that built the image, from the
// variables Actions sets (see GitHubFromEnv).
type GitHub struct {
	ServerURL         string // GITHUB_SERVER_URL, e.g. https://github.com
	Repository        string // GITHUB_REPOSITORY, owner/name
	RepositoryID      string // GITHUB_REPOSITORY_ID
	RepositoryOwnerID string // GITHUB_REPOSITORY_OWNER_ID
	SHA               string // GITHUB_SHA
	Ref               string // GITHUB_REF, e.g. refs/heads/main
	WorkflowRef       string // GITHUB_WORKFLOW_REF: owner/name/.github/workflows/x.yml@refs/heads/main
	EventName         string // GITHUB_EVENT_NAME
	RunID             string // GITHUB_RUN_ID
	RunAttempt        string // GITHUB_RUN_ATTEMPT
	RunnerEnvironment string // RUNNER_ENVIRONMENT: github-hosted or self-hosted
}

// GitHubFromEnv reads the GitHub Actions variables through getenv
// (os.Getenv in the program). Outside Actions (GITHUB_ACTIONS is not
// "true", or no run id) it returns nil.
func GitHubFromEnv(getenv func(string) string) *GitHub {
	if getenv("GITHUB_ACTIONS") != "true" || getenv("GITHUB_RUN_ID") == "" || getenv("GITHUB_REPOSITORY") == "" {
		return nil
	}
	server := strings.TrimSuffix(getenv("GITHUB_SERVER_URL"), "/")
	if server == "" {
		server = "https://github.com"
	}
	return &GitHub{
		ServerURL:         server,
		Repository:        getenv("GITHUB_REPOSITORY"),
		RepositoryID:      getenv("GITHUB_REPOSITORY_ID"),
		RepositoryOwnerID: getenv("GITHUB_REPOSITORY_OWNER_ID"),
		SHA:               getenv("GITHUB_SHA"),
		Ref:               getenv("GITHUB_REF"),
		WorkflowRef:       getenv("GITHUB_WORKFLOW_REF"),
		EventName:         getenv("GITHUB_EVENT_NAME"),
		RunID:             getenv("GITHUB_RUN_ID"),
		RunAttempt:        getenv("GITHUB_RUN_ATTEMPT"),
		RunnerEnvironment: getenv("RUNNER_ENVIRONMENT"),
	}
}

// Statement is an in-toto Statement v1.
type Statement struct {
	Type          string     `json:"_type"`
	Subject       []Resource `json:"subject"`
	PredicateType string     `json:"predicateType"`
	Predicate     Provenance `json:"predicate"`
}

// Resource is an in-toto ResourceDescriptor.
type Resource struct {
	Name        string            `json:"name,omitempty"`
	URI         string            `json:"uri,omitempty"`
	Digest      map[string]string `json:"digest,omitempty"`
	MediaType   string            `json:"mediaType,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Provenance is the SLSA provenance v1 predicate.
type Provenance struct {
	BuildDefinition BuildDefinition `json:"buildDefinition"`
	RunDetails      RunDetails      `json:"runDetails"`
}

type BuildDefinition struct {
	BuildType            string             `json:"buildType"`
	ExternalParameters   ExternalParameters `json:"externalParameters"`
	InternalParameters   map[string]any     `json:"internalParameters,omitempty"`
	ResolvedDependencies []Resource         `json:"resolvedDependencies,omitempty"`
}

// ExternalParameters are the inputs a user chose.
type ExternalParameters struct {
	Packages []string  `json:"packages"`
	Platform string    `json:"platform,omitempty"`
	Nixpkgs  string    `json:"nixpkgs"`
	Settings *Settings `json:"settings,omitempty"`
	Workflow *Workflow `json:"workflow,omitempty"`
}

// Workflow is the GitHub workflow that ran the build, as GitHub's own
// provenance names it.
type Workflow struct {
	Ref        string `json:"ref"`
	Repository string `json:"repository"`
	Path       string `json:"path"`
}

type RunDetails struct {
	Builder    Builder    `json:"builder"`
	Metadata   *Metadata  `json:"metadata,omitempty"`
	Byproducts []Resource `json:"byproducts,omitempty"`
}

type Builder struct {
	ID      string            `json:"id"`
	Version map[string]string `json:"version,omitempty"`
}

// Metadata has no times: the statement must not change between runs of
// the same build.
type Metadata struct {
	InvocationID string `json:"invocationId,omitempty"`
}

// New returns the statement's JSON. The same options give the same bytes.
func New(o Options) ([]byte, error) {
	if o.Subject.Algorithm != "sha256" || len(o.Subject.Hex) != 64 {
		return nil, fmt.Errorf("provenance: the subject must be a sha256 manifest digest, got %q", o.Subject)
	}
	if o.Nixpkgs == "" {
		return nil, fmt.Errorf("provenance: no nixpkgs flake reference given")
	}
	name := o.Name
	if name == "" {
		name = "image"
	}
	var pkgs []string
	for _, p := range o.Packages {
		pkgs = append(pkgs, flakeref.Redacted(p))
	}
	sort.Strings(pkgs)

	p := Provenance{
		BuildDefinition: BuildDefinition{
			BuildType:            BuildType,
			ExternalParameters:   ExternalParameters{Packages: pkgs, Platform: o.Platform, Nixpkgs: flakeref.Redacted(o.Nixpkgs), Settings: o.Settings},
			ResolvedDependencies: []Resource{flakeResource("nixpkgs", o.Nixpkgs)},
		},
		RunDetails: RunDetails{
			Builder: Builder{ID: BuilderID, Version: map[string]string{"nixery": o.Version}},
		},
	}
	for _, f := range o.Flakes {
		p.BuildDefinition.ResolvedDependencies = append(p.BuildDefinition.ResolvedDependencies, flakeResource(f.Installable, f.URL))
	}
	if o.Version == "" {
		p.RunDetails.Builder.Version = nil
	}
	if gh := o.GitHub; gh != nil {
		repoURL := gh.ServerURL + "/" + gh.Repository
		if path, ref, ok := workflowPath(gh.WorkflowRef, gh.Repository); ok {
			p.BuildDefinition.ExternalParameters.Workflow = &Workflow{Ref: ref, Repository: repoURL, Path: path}
			p.RunDetails.Builder.ID = gh.ServerURL + "/" + gh.WorkflowRef
		}
		internal := map[string]string{}
		for k, v := range map[string]string{"event_name": gh.EventName, "repository_id": gh.RepositoryID,
			"repository_owner_id": gh.RepositoryOwnerID, "runner_environment": gh.RunnerEnvironment} {
			if v != "" {
				internal[k] = v
			}
		}
		if len(internal) > 0 {
			p.BuildDefinition.InternalParameters = map[string]any{"github": internal}
		}
		if gh.SHA != "" {
			source := Resource{URI: "git+" + repoURL, Digest: map[string]string{"gitCommit": gh.SHA}}
			if gh.Ref != "" {
				source.URI += "@" + gh.Ref
			}
			p.BuildDefinition.ResolvedDependencies = append(p.BuildDefinition.ResolvedDependencies, source)
		}
		invocation := repoURL + "/actions/runs/" + gh.RunID
		if gh.RunAttempt != "" {
			invocation += "/attempts/" + gh.RunAttempt
		}
		p.RunDetails.Metadata = &Metadata{InvocationID: invocation}
	}
	if o.SBOM != nil {
		p.RunDetails.Byproducts = []Resource{{Name: "sbom.cdx.json", MediaType: "application/vnd.cyclonedx+json",
			Digest: map[string]string{o.SBOM.Algorithm: o.SBOM.Hex}}}
	}

	st := Statement{
		Type:          StatementType,
		Subject:       []Resource{{Name: name, Digest: map[string]string{"sha256": o.Subject.Hex}}},
		PredicateType: PredicateType,
		Predicate:     p,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(st); err != nil {
		return nil, fmt.Errorf("provenance: encoding the statement: %w", err)
	}
	return buf.Bytes(), nil
}

// flakeResource describes a locked flake reference as a resolved
// dependency: its revision as a git commit, its narHash as given.
func flakeResource(name, ref string) Resource {
	r := Resource{Name: flakeref.Redacted(name), URI: flakeref.Redacted(ref)}
	base, query, _ := strings.Cut(ref, "?")
	q, _ := url.ParseQuery(query)
	rev := q.Get("rev")
	if rev == "" {
		// github:owner/repo/<rev>, gitlab:..., sourcehut:...
		if scheme, path, ok := strings.Cut(base, ":"); ok && (scheme == "github" || scheme == "gitlab" || scheme == "sourcehut") {
			if parts := strings.Split(path, "/"); len(parts) == 3 && isHex(parts[2], 40) {
				rev = parts[2]
			}
		}
	}
	// A rev is a git commit only where the reference is git's: a
	// Mercurial changeset (hg+https://…?rev=) is not one.
	if scheme, _, _ := strings.Cut(base, ":"); rev != "" && !strings.HasPrefix(scheme, "hg") {
		r.Digest = map[string]string{"gitCommit": rev}
	}
	if h := q.Get("narHash"); h != "" {
		r.Annotations = map[string]string{"narHash": h}
	}
	return r
}

// workflowPath splits GITHUB_WORKFLOW_REF (owner/name/.github/workflows/
// x.yml@ref) into the workflow file's path and the ref.
func workflowPath(workflowRef, repo string) (path, ref string, ok bool) {
	rest, found := strings.CutPrefix(workflowRef, repo+"/")
	if !found {
		return "", "", false
	}
	path, ref, ok = strings.Cut(rest, "@")
	return path, ref, ok && path != "" && ref != ""
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
