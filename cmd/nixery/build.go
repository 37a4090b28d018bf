package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/nixery-action/nixery-action/internal/limit"
	"github.com/nixery-action/nixery-action/pkg/account"
	"github.com/nixery-action/nixery-action/pkg/archive"
	"github.com/nixery-action/nixery-action/pkg/build"
	"github.com/nixery-action/nixery-action/pkg/cache"
	"github.com/nixery-action/nixery-action/pkg/flakeref"
	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/nix"
	"github.com/nixery-action/nixery-action/pkg/popularity"
	"github.com/nixery-action/nixery-action/pkg/publish"
	"github.com/nixery-action/nixery-action/pkg/registry"
	"github.com/nixery-action/nixery-action/pkg/spec"
)

// defaultNixpkgs is the flake reference of the nixpkgs pinned by the
// project's flake.lock, github:NixOS/nixpkgs/<rev>?narHash=<hash>; the
// flake and scripts/build-release.sh set it with -ldflags, to the same
// string. Nix reads its tree from the store when it is there (pkg/nix).
var defaultNixpkgs string

// buildFlags are the options of `nixery build`. The action's inputs have
// the same names.
type buildFlags struct {
	nixpkgs    string
	platforms  listFlag
	image      string
	tags       listFlag
	output     string
	insecure   bool
	push       bool
	byDigest   bool
	budget     int
	strategy   string
	popularity string
	noDefaults bool
	level      int
	compress   string
	jobs       int
	timeout    time.Duration
	regTimeout time.Duration
	buildLogs  bool

	entrypoint string
	cmd        string
	env        listFlag
	workdir    string
	user       string
	labels     listFlag
	annots     listFlag

	login     loginFlags
	json      bool
	cacheFrom listFlag
	noCache   bool
	sbom      bool
	sbomFile  string
}

// buildCommand is `nixery build`.
func buildCommand() *command {
	return &command{
		name:    "build",
		summary: "build an image of Nix packages for each platform and push it (or write it to disk)",
		usage:   "[--nixpkgs FLAKEREF] [--platforms LIST] (--image REF [--tags LIST] | --output DEST) [flags] PACKAGE...",
		help:    buildHelp,
		setup: func(fs *flag.FlagSet) func([]string) error {
			f := newBuildFlags()
			f.register(fs)
			return func(args []string) error { return runBuild(f, args, os.Stdout, os.Stderr) }
		},
	}
}

// newBuildFlags are build's flags before parsing.
func newBuildFlags() *buildFlags {
	return &buildFlags{
		platforms: listFlag{commas: true, ifEmpty: "no platform in it: name one or more, e.g. linux/amd64,linux/arm64"},
		tags:      listFlag{commas: true},
	}
}

func (f *buildFlags) register(fs *flag.FlagSet) {
	nixpkgsDefault := defaultNixpkgs
	fs.StringVar(&f.nixpkgs, "nixpkgs", nixpkgsDefault, "nixpkgs `FLAKEREF` to take packages from (a path, github:NixOS/nixpkgs/REV, ...)")
	fs.Var(&f.platforms, "platforms", "platforms to build, a comma separated `LIST`: linux/amd64, linux/arm64, linux/arm/v7, linux/386, linux/riscv64, linux/ppc64le, linux/s390x (default linux/amd64)")
	fs.StringVar(&f.image, "image", "", "repository `REF` to push to, e.g. ghcr.io/OWNER/NAME (a :TAG on it adds a tag); with --output docker:FILE, the name the archive gives the image")
	fs.Var(&f.tags, "tags", "`LIST` of tags to push, comma or newline separated (default latest): bare tags for --image, or full references REGISTRY/NAME:TAG (docker/metadata-action's tags output), which push the same index to each repository named; --image may then be left out")
	fs.StringVar(&f.output, "output", "", "write the image to `DEST` instead of pushing it: oci:DIR (OCI layout) or docker:FILE.tar (one platform, for docker/podman load)")
	fs.BoolVar(&f.push, "push", true, "push to --image; false builds and checks the image without pushing it")
	fs.BoolVar(&f.byDigest, "push-by-digest", false, "push without tags, by digest only (for per-platform jobs joined later by nixery merge)")
	fs.BoolVar(&f.insecure, "insecure", false, "talk plain HTTP to the registry (loopback registries always are)")
	fs.IntVar(&f.budget, "layer-budget", layers.DefaultBudget, fmt.Sprintf("most layers (`N`) for the packages' store paths, 1 to %d: with the customisation layer on top, an image has at most %d, Docker's limit", layers.MaxBudget, layers.MaxImageLayers))
	fs.StringVar(&f.strategy, "strategy", "", "layering strategy `NAME`: "+strings.Join(layers.Strategies(), ", ")+" (default "+layers.DefaultStrategy+"); help lists them")
	fs.StringVar(&f.popularity, "popularity", "", "popularity data `FILE` (Nixery's format, at most "+limit.Size(popularity.MaxBytes)+") for the layering strategy")
	fs.BoolVar(&f.noDefaults, "no-default-packages", false, "do not add cacert and iana-etc")
	fs.StringVar(&f.compress, "compression", string(archive.Gzip), compressionUsage)
	fs.Var((*levelFlag)(&f.level), "level", "`LEVEL` of the layers' compression, as --compression ALGO:LEVEL gives it (gzip 1 (fastest) to 9, default "+fmt.Sprint(archive.DefaultLevel)+")")
	fs.IntVar(&f.jobs, "jobs", publish.DefaultJobs, "`N` concurrent uploads")
	fs.DurationVar(&f.timeout, "timeout", 60*time.Minute, "give up on Nix after this long (`DURATION`, e.g. 30m), per platform")
	fs.BoolVar(&f.buildLogs, "print-build-logs", false, "show the build logs of what Nix builds (not only its progress)")
	fs.BoolVar(&f.buildLogs, "L", false, "short for --print-build-logs")
	fs.DurationVar(&f.regTimeout, "registry-timeout", registry.DefaultRegistryTimeout, "give up reading a registry (the cache, its manifests and configs) after this long; one that does not answer at all is given this long or "+registry.CheckTimeout.String()+", the shorter (`DURATION`)")
	fs.StringVar(&f.entrypoint, "entrypoint", "", "image entrypoint `COMMAND`: words (no quotes: they are not a shell's), or a JSON array")
	fs.StringVar(&f.cmd, "cmd", "", "image `COMMAND`: words (no quotes: they are not a shell's), or a JSON array (default bash with the shell meta-package)")
	fs.Var(&f.env, "env", "extra environment `KEY=VALUE` (repeat, or one per line); keys of --env, --labels and --annotations are "+image.KeyRule+"; values are UTF-8 without NUL")
	fs.StringVar(&f.workdir, "workdir", "", "working directory `DIR` of the image: an absolute path without . or .. parts, e.g. /work")
	fs.StringVar(&f.user, "user", "", "non-root `USER` the image runs as: NAME, NAME:GROUP, UID, UID:GID or NAME:UID:GID; the image gets its /etc/passwd and /etc/group entries and a home directory (a NAME alone is uid and gid "+fmt.Sprint(account.DefaultID)+", a UID alone is named "+account.DefaultName+")")
	fs.Var(&f.labels, "labels", "image labels `KEY=VALUE` (repeat, or one per line; keys as for --env)")
	fs.Var(&f.annots, "annotations", "annotations `[LEVEL:]KEY=VALUE` (repeat, or one per line; keys as for --env), as docker/build-push-action takes them: LEVEL is index, manifest (the default), manifest-descriptor or index-descriptor (an OCI layout's index.json), or several joined by commas")
	f.login.register(fs)
	fs.BoolVar(&f.json, "json", false, "print the result as JSON")
	fs.Var(&f.cacheFrom, "cache-from", "also reuse layers of this image `REF` (repeat); the target tags always are")
	fs.BoolVar(&f.noCache, "no-cache", false, "pack every layer, reusing nothing from the registry")
	fs.BoolVar(&f.sbom, "sbom", true, "attach a CycloneDX SBOM and SLSA provenance to each platform image; false makes neither")
	fs.StringVar(&f.sbomFile, "sbom-file", "", "also write the SBOM to `FILE` (several platforms: FILE with the platform before its extension, e.g. sbom.linux-amd64.cdx.json; not -: stdout carries the result)")
}

// buildHelp explains the package arguments in build's --help.
const buildHelp = `Packages are nixpkgs attribute names, separated by spaces, commas or
newlines, or joined by slashes as in Nixery's URLs (shell/git/htop), and
packages of your own flakes:
  hello git                  top-level packages of nixpkgs
  python3Packages.requests   an attribute path into a package set
  shell                      bashInteractive, coreutils, moreutils and nano;
                             bash becomes the command
  arm64                      build linux/arm64: alone, instead of the default
                             linux/amd64; with --platforms, in addition to them
  .#app  .                   a package of the flake in the working directory
                             (. is its default package), found as nix build
                             finds it: packages.SYSTEM.app, then
                             legacyPackages.SYSTEM.app (., the default:
                             packages.SYSTEM.default, else the older
                             defaultPackage.SYSTEM)
  path:../x#pkg  github:owner/repo#pkg  git+https://host/r.git?ref=v1#pkg
                             a package of any flake Nix can fetch
With exactly one flake package and no --entrypoint or --cmd, the image runs
that package's main program, the one nix run would start (meta.mainProgram,
else its name): docker run IMAGE runs the app.
cacert and iana-etc are always added (--no-default-packages leaves them out).
Names are sorted: their order never changes the image.`

// buildJob is a checked build request with what the CLI needs to report
// on it: everything that can be wrong with the input is found here,
// before Nix runs.
type buildJob struct {
	req      build.Request
	targets  []publish.Target // pushed to once credentials are known, --image's first
	jobs     int
	registry string // of --image: the credentials' registry
	notes    []string
	layout   string // the OCI layout written to (--output oci:DIR), or ""
}

func (f *buildFlags) check(args []string) (*buildJob, error) {
	j := &buildJob{req: build.Request{Nixpkgs: f.nixpkgs}}
	var err error
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			return nil, usagef("%s comes after the package names: put every flag before them", a)
		}
	}
	if err := f.conflicts(); err != nil {
		return nil, err
	}
	if j.req.Spec, err = spec.Parse(args, spec.Options{NoDefaults: f.noDefaults}); err != nil {
		return nil, usageError{err.Error()}
	}
	requested, err := spec.ParsePlatforms(f.platforms.items...)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	j.req.Platforms = j.req.Spec.SelectPlatforms(requested)
	if strings.HasPrefix(f.nixpkgs, "-") {
		return nil, usagef("--nixpkgs %q looks like an option, not a flake reference: give --nixpkgs a value, e.g. --nixpkgs github:NixOS/nixpkgs/nixos-26.05", f.nixpkgs)
	}
	if f.nixpkgs == "" {
		return nil, usagef("no nixpkgs to take packages from: pass --nixpkgs FLAKEREF, e.g. github:NixOS/nixpkgs/nixos-26.05")
	}
	if err := checkNixpkgsDirectory(f.nixpkgs); err != nil {
		return nil, err
	}

	// Annotations at their levels, as build-push-action takes them.
	levels, err := image.ParseAnnotations(f.annots.items)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	if err := image.CheckKeyValues("annotation", levels[image.LevelIndexDescriptor]); err != nil {
		return nil, usageError{err.Error()}
	}
	if len(levels[image.LevelIndexDescriptor]) > 0 && !strings.HasPrefix(f.output, string(publish.OCILayout)+":") {
		return nil, usagef("index-descriptor annotations go on the index's entry in an OCI layout's index.json: write one with --output=oci:DIR, or use the index level")
	}

	switch {
	case f.output != "":
		out, err := publish.ParseOutput(f.output)
		if err != nil {
			return nil, usageError{err.Error()}
		}
		repository, tags := f.image, f.tags.items
		if out.Kind == publish.DockerArchive {
			// A :TAG on --image adds a tag, as it does to a push.
			var tag string
			if repository, tag = publish.SplitTag(f.image); tag != "" {
				tags = append([]string{tag}, tags...)
			}
		}
		if len(tags) == 0 {
			tags = []string{"latest"}
		}
		if ref := fullReference(tags); ref != "" {
			return nil, usagef("--tags=%s is a full reference, which only a push to a registry can use: give bare tags with --output, or push with --image", ref)
		}
		if out.Kind == publish.DockerArchive && len(j.req.Platforms) > 1 {
			return nil, usagef("a docker archive holds one platform, but %d were asked for: pass one platform in --platforms, or use --output=oci:DIR", len(j.req.Platforms))
		}
		// With --output, --image only names the image of a docker archive.
		wo := publish.WriteOptions{Tags: tags, Repository: repository, DescriptorAnnotations: levels[image.LevelIndexDescriptor]}
		if err := wo.Validate(out.Kind); err != nil {
			return nil, usageError{err.Error()}
		}
		j.req.Destination = publish.NewLayout(out, wo)
		if out.Kind == publish.OCILayout {
			j.layout = out.Path
		}
	case f.image != "" || fullReference(f.tags.items) != "":
		tags := f.tags.items
		if f.byDigest && (len(tags) > 0 || hasTag(f.image)) {
			return nil, usagef("--push-by-digest pushes no tags, but tags were given: drop one or the other")
		}
		// Full references in the tags (docker/metadata-action's output)
		// may name other repositories: the same index goes to each.
		targets, err := publish.NewTargets(f.image, tags, f.insecure)
		if err != nil {
			return nil, usageError{err.Error()}
		}
		if !f.byDigest && len(targets[0].Tags) == 0 {
			targets[0].Tags = []name.Tag{targets[0].Repo.Tag("latest")}
		}
		j.registry = targets[0].Repo.RegistryStr()
		if !f.push {
			// Nothing will be pushed: the result says where it would
			// have gone, and the targets' tags are no cache to read.
			j.req.Destination = publish.Discard{Targets: targets}
			break
		}
		j.targets, j.jobs = targets, f.jobs
	case !f.push:
		// Build and check only.
	default:
		return nil, usagef("say where the image goes: --image=REGISTRY/NAME to push, or --output=oci:DIR or --output=docker:FILE.tar")
	}

	j.req.Layers = layers.Options{Strategy: f.strategy, Budget: f.budget}
	if err := layerOptions(j.req.Layers, "--layer-budget"); err != nil {
		return nil, usageError{err.Error()}
	}
	created, err := build.CreatedTime(getenv)
	if err != nil {
		return nil, err
	}
	compression, level, err := compressionOptions(f.compress, f.level)
	if err != nil {
		return nil, err
	}
	j.req.Pack = archive.Options{Compression: compression, Level: level}
	j.req.NoCache = f.noCache
	for _, s := range f.cacheFrom.items {
		s, note, err := cacheFromRef(s)
		if err != nil {
			return nil, err
		}
		if note != "" {
			j.notes = append(j.notes, note)
		}
		ref, err := cache.ParseRef(s, f.insecure)
		if err != nil {
			return nil, usageError{err.Error()}
		}
		j.req.CacheFrom = append(j.req.CacheFrom, ref)
	}
	entrypoint, err := commandLine("--entrypoint", f.entrypoint)
	if err != nil {
		return nil, err
	}
	cmd, err := commandLine("--cmd", f.cmd)
	if err != nil {
		return nil, err
	}
	labels, err := keyValues("label", f.labels.items)
	if err != nil {
		return nil, err
	}
	user, err := account.Parse(f.user)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	j.req.User = user
	j.req.Image = image.Options{
		Created: created, Entrypoint: entrypoint, Cmd: cmd, Env: f.env.items,
		WorkingDir: f.workdir, Labels: labels,
	}
	if user != nil {
		j.req.Image.User = user.Config()
	} // root (root, 0, root:0:0): the image as without --user, whose User is empty

	if err := j.req.Image.Validate(); err != nil {
		return nil, usageError{err.Error()}
	}
	if err := (&nix.Builder{Timeout: f.timeout}).Validate(); err != nil {
		return nil, usageError{err.Error()}
	}

	annots := image.GitHubAnnotations(getenv)
	if annots == nil {
		annots = map[string]string{}
	}
	for k, v := range levels[image.LevelIndex] {
		annots[k] = v
	}
	j.req.Annotations = annots
	j.req.Image.Annotations = levels[image.LevelManifest]
	j.req.Image.DescriptorAnnotations = levels[image.LevelManifestDescriptor]
	if j.req.SBOM, err = f.sbomOptions(); err != nil {
		return nil, err
	}
	if err := j.req.Validate(); err != nil {
		return nil, usageError{err.Error()}
	}
	return j, nil
}

// cacheFromRef reads a --cache-from value written as build-push-action
// takes it, type=registry,ref=REF, as REF: nixery reuses layers of
// images only, so its other keys (mode, ...) mean nothing here and are
// ignored with a note, and other types (gha, local, s3, ...) are
// refused. A plain image reference is returned as it is. Messages name
// the type and the keys but no value other than the reference: the
// other keys of a cache may be its credentials (s3's secret_access_key).
func cacheFromRef(s string) (ref, note string, err error) {
	if !strings.Contains(s, "=") { // no image reference holds one
		return s, "", refWithoutCredentials(s)
	}
	var keys, ignored []string
	kind := "registry"
	for _, field := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(field), "=")
		keys = append(keys, k)
		switch k {
		case "type":
			kind = v
		case "ref":
			ref = v
		default:
			ignored = append(ignored, k)
		}
	}
	switch {
	case kind != "registry":
		return "", "", usagef("--cache-from type=%s (keys %s): nixery's cache-from takes image references (REGISTRY/NAME:TAG, or type=registry,ref=REF), whose layers it reuses; there is no type=%s cache", kind, strings.Join(keys, ","), kind)
	case ref == "":
		return "", "", usagef("--cache-from with keys %s names no image: write type=registry,ref=REGISTRY/NAME:TAG, or the reference alone", strings.Join(keys, ","))
	}
	if err := refWithoutCredentials(ref); err != nil {
		return "", "", err
	}
	if len(ignored) > 0 {
		note = fmt.Sprintf("cache-from %s: ignoring %s (nixery reuses the layers of the image, nothing else)", ref, strings.Join(ignored, ","))
	}
	return ref, note, nil
}

// refWithoutCredentials refuses an image reference that carries a user
// or password (USER:PASSWORD@REGISTRY/NAME), naming it without them.
func refWithoutCredentials(ref string) error {
	if shown := registry.RedactedRef(ref); shown != ref {
		return usagef("--cache-from %s: an image reference holds no user or password: drop them and log in to the registry instead (docker login)", shown)
	}
	return nil
}

// conflicts refuses flags that ask for opposite things, rather than
// follow one and silently ignore the other.
func (f *buildFlags) conflicts() error {
	switch {
	case f.output != "" && f.byDigest:
		return usagef("--push-by-digest pushes to a registry, but --output writes the image to %s: drop one of them", f.output)
	case f.output != "" && !f.push:
		return usagef("--push=false writes the image nowhere, but --output writes it to %s: drop one of them", f.output)
	case !f.push && f.image == "" && f.output == "" && len(f.tags.items) > 0 && fullReference(f.tags.items) == "":
		// Bare tags name an image of --image's repository (or in
		// --output's layout, which --push=false refuses): here, none.
		return usagef("--tags=%s tag nothing: --push=false without --image builds an image no tag names; add --image=REGISTRY/NAME (nothing is pushed there), or drop --tags", f.tags.String())
	case f.noCache && len(f.cacheFrom.items) > 0:
		return usagef("--no-cache reuses no layers, but --cache-from names images to reuse them from: drop one of them")
	}
	return nil
}

// hasTag reports whether an image reference ends in a tag (name:tag).
// fullReference is the first of tags that is a full reference
// (REGISTRY/NAME:TAG) rather than a bare tag, or "".
func fullReference(tags []string) string {
	for _, t := range tags {
		if strings.Contains(t, "/") {
			return t
		}
	}
	return ""
}

func hasTag(ref string) bool { return strings.Contains(ref[strings.LastIndexByte(ref, '/')+1:], ":") }

func runBuild(f *buildFlags, args []string, stdout, stderr io.Writer) error {
	if f.strategy == "help" {
		return printStrategies(stdout)
	}
	ctx, stop := interruptContext()
	defer stop()
	display := newProgress(stderr)
	res, err := f.execute(ctx, args, display)
	display.stop()
	if err != nil {
		return nixErrorOnce(err)
	}
	defer res.Close()
	fmt.Fprintf(stderr, "timings: %s\n", formatTimings(res.Timings))
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return printResult(stdout, res.Result)
}

// execute checks the flags and runs the build, showing its progress.
func (f *buildFlags) execute(ctx context.Context, args []string, display progress) (*build.Result, error) {
	job, err := f.check(args)
	if err != nil {
		return nil, err
	}
	if f.popularity != "" {
		// Read here, where a signal can stop the wait for a FIFO's writer.
		if job.req.Layers.Popularity, err = readPopularity(ctx, f.popularity); err != nil {
			return nil, err
		}
	}
	job.readLayoutCache(f.noCache)
	for _, note := range job.notes {
		w, end := display.logs()("")
		fmt.Fprintln(w, note)
		end()
	}
	var creds registry.Credentials
	if job.registry != "" || len(job.req.CacheFrom) > 0 {
		if creds, err = f.login.credentials(job.registry, stdin, getenv); err != nil {
			return nil, err
		}
	}
	ropts := publish.Options{Options: registry.Options{Credentials: creds, RegistryTimeout: f.regTimeout}, Jobs: job.jobs, OnUpload: display.upload, OnRetry: logLine(display.logs())}
	if err := ropts.Validate(); err != nil {
		return nil, usagef("--registry-timeout/--jobs: %v", err)
	}
	switch len(job.targets) {
	case 0:
	case 1:
		job.req.PushTo(publish.NewRegistry(job.targets[0], ropts))
	default:
		job.req.PushTo(publish.NewRegistries(job.targets, ropts))
	}
	res, err := build.Build(ctx, job.req, build.Options{
		Log:            display.logs(),
		Progress:       display.layer,
		NixTimeout:     f.timeout,
		PrintBuildLogs: f.buildLogs,
		NixEnv:         nixEnviron(), // pkg/nix passes on only what Nix needs
		Registry:       ropts,
	})
	if err != nil {
		return nil, err
	}
	if err := writeSBOMs(f.sbomFile, res, display.logs()); err != nil {
		res.Close()
		return nil, err
	}
	return res, nil
}

// logLine writes a line of its own to the log.
func logLine(logs logSink) func(string) {
	return func(line string) {
		w, end := logs("")
		fmt.Fprintln(w, line)
		end()
	}
}

// readLayoutCache makes the layers of the OCI layout written to a cache:
// an image built into it again packs only what changed. Like any cache
// it is a hint: a layout that cannot be read as one is noted and every
// layer packed (one that is no layout at all is refused by the write).
func (j *buildJob) readLayoutCache(noCache bool) {
	if j.layout == "" || noCache {
		return
	}
	c, err := cache.ReadLayout(j.layout)
	if err != nil {
		j.notes = append(j.notes, fmt.Sprintf("cache: the layout %s cannot be read as a cache (%v); packing every layer", j.layout, err))
		return
	}
	j.req.LocalCache = c
}

// checkNixpkgsDirectory refuses a --nixpkgs directory written so that Nix
// would look it up in the flake registry instead (testdata/nixpkgs).
func checkNixpkgsDirectory(ref string) error {
	if flakeref.ReadAsRegistryName(ref) {
		return usagef("--nixpkgs %s", flakeref.RegistryNameAdvice(ref, ""))
	}
	return nil
}

// nixErrorOnce shortens a Nix failure whose output was already shown as
// it came: its headline, not Nix's last lines again.
func nixErrorOnce(err error) error {
	var ce *nix.CommandError
	if !errors.As(err, &ce) || ce.Tail == "" {
		return err
	}
	return retext(err, strings.Replace(err.Error(), ce.Error(), ce.Short()+" (Nix's output is above)", 1))
}

// retextedError is an error shown with other words, keeping its cause
// for errors.Is and errors.As.
type retextedError struct {
	text  string
	cause error
}

func (e *retextedError) Error() string { return e.text }
func (e *retextedError) Unwrap() error { return e.cause }

// retext is err shown as text.
func retext(err error, text string) error { return &retextedError{text: text, cause: err} }
