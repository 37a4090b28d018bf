package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/nixery-action/nixery-action/pkg/archive"
	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/popularity"
	"github.com/nixery-action/nixery-action/pkg/push"
	"github.com/nixery-action/nixery-action/pkg/spec"
)

// defaultNixpkgs is the flake reference of the nixpkgs pinned by the
// project's flake.lock; the flake sets it with -ldflags.
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
	jobs       int
	timeout    time.Duration

	entrypoint string
	cmd        string
	env        listFlag
	workdir    string
	user       string
	labels     listFlag
	annots     listFlag

	username  string
	password  string
	json      bool
	cacheFrom listFlag
	noCache   bool
}

func init() {
	register(&command{
		name:    "build",
		summary: "build an image of Nix packages for each platform and push it (or write it to disk)",
		usage:   "[--nixpkgs FLAKEREF] [--platforms LIST] (--image REF [--tags LIST] | --output DEST) [flags] PACKAGE...",
		setup: func(fs *flag.FlagSet) func([]string) error {
			f := &buildFlags{platforms: listFlag{commas: true}, tags: listFlag{commas: true}}
			f.register(fs)
			return func(args []string) error { return runBuild(f, args, os.Stdout, os.Stderr) }
		},
	})
}

func (f *buildFlags) register(fs *flag.FlagSet) {
	nixpkgsDefault := defaultNixpkgs
	fs.StringVar(&f.nixpkgs, "nixpkgs", nixpkgsDefault, "nixpkgs `FLAKEREF` to take packages from (a path, github:NixOS/nixpkgs/REV, ...)")
	fs.Var(&f.platforms, "platforms", "platforms to build, comma separated: linux/amd64, linux/arm64, linux/arm/v7, linux/386, linux/riscv64, linux/ppc64le, linux/s390x (default linux/amd64)")
	fs.StringVar(&f.image, "image", "", "repository to push to, e.g. ghcr.io/OWNER/NAME")
	fs.Var(&f.tags, "tags", "tags to push, comma or newline separated (default latest)")
	fs.StringVar(&f.output, "output", "", "write the image instead of pushing it: oci:DIR (OCI layout) or docker:FILE.tar (one platform, for docker/podman load)")
	fs.BoolVar(&f.push, "push", true, "push to --image; false builds and checks the image without pushing it")
	fs.BoolVar(&f.byDigest, "push-by-digest", false, "push without tags, by digest only (for per-platform jobs joined later by nixery merge)")
	fs.BoolVar(&f.insecure, "insecure", false, "talk plain HTTP to the registry (loopback registries always are)")
	fs.IntVar(&f.budget, "layer-budget", layers.DefaultBudget, fmt.Sprintf("most layers for the packages' store paths (1 to %d)", layers.MaxBudget))
	fs.StringVar(&f.strategy, "strategy", "", "layering strategy: "+strings.Join(layers.Strategies(), ", ")+" (default "+layers.DefaultStrategy+")")
	fs.StringVar(&f.popularity, "popularity", "", "popularity data `FILE` (Nixery's format) for the layering strategy")
	fs.BoolVar(&f.noDefaults, "no-default-packages", false, "do not add cacert and iana-etc")
	fs.IntVar(&f.level, "level", 0, "gzip level of the layers, 1 (fastest) to 9 (default: "+fmt.Sprint(archive.DefaultLevel)+")")
	fs.IntVar(&f.jobs, "jobs", push.DefaultJobs, "concurrent uploads")
	fs.DurationVar(&f.timeout, "timeout", 60*time.Minute, "give up on Nix after this long, per platform")
	fs.StringVar(&f.entrypoint, "entrypoint", "", "image entrypoint: words, or a JSON array")
	fs.StringVar(&f.cmd, "cmd", "", "image command: words, or a JSON array (default bash with the shell meta-package)")
	fs.Var(&f.env, "env", "extra environment `KEY=VALUE` (repeat, or one per line)")
	fs.StringVar(&f.workdir, "workdir", "", "working directory of the image")
	fs.StringVar(&f.user, "user", "", "user (and group) the image runs as")
	fs.Var(&f.labels, "labels", "image labels `KEY=VALUE` (repeat, or one per line)")
	fs.Var(&f.annots, "annotations", "index annotations `KEY=VALUE` (repeat, or one per line)")
	fs.StringVar(&f.username, "username", "", "registry user name")
	fs.StringVar(&f.password, "password", "", "registry password or token (prefer the NIXERY_PASSWORD environment variable)")
	fs.BoolVar(&f.json, "json", false, "print the result as JSON")
	fs.Var(&f.cacheFrom, "cache-from", "also reuse layers of this image `REF` (repeat); the target tags always are")
	fs.BoolVar(&f.noCache, "no-cache", false, "pack every layer, reusing nothing from the registry")
}

// buildJob is a checked build request: everything that can be wrong with
// the input is found here, before Nix runs.
type buildJob struct {
	spec      *spec.Spec
	platforms []spec.Platform
	target    *push.Target
	output    *push.Output
	tags      []string
	layerOpts layers.Options
	packOpts  archive.Options
	imageOpts image.Options
	annots    map[string]string
	cacheRefs []name.Reference
}

func (f *buildFlags) check(args []string) (*buildJob, error) {
	j := &buildJob{}
	var err error
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			return nil, usagef("%s comes after the package names: put every flag before them", a)
		}
	}
	if j.spec, err = spec.Parse(args, spec.Options{NoDefaults: f.noDefaults}); err != nil {
		return nil, usageError{err.Error()}
	}
	requested, err := spec.ParsePlatforms(f.platforms.items...)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	j.platforms = j.spec.SelectPlatforms(requested)
	if f.nixpkgs == "" {
		return nil, usagef("no nixpkgs to take packages from: pass --nixpkgs FLAKEREF, e.g. github:NixOS/nixpkgs/nixos-26.05")
	}

	switch {
	case f.image != "" && f.output != "":
		return nil, usagef("--image and --output exclude each other: push to a registry or write to disk")
	case f.image != "":
		tags := f.tags.items
		if f.byDigest {
			if len(tags) > 0 || hasTag(f.image) {
				return nil, usagef("--push-by-digest pushes no tags, but tags were given: drop one or the other")
			}
		} else if len(tags) == 0 && !hasTag(f.image) {
			tags = []string{"latest"}
		}
		t, err := push.NewTarget(f.image, tags, f.insecure)
		if err != nil {
			return nil, usageError{err.Error()}
		}
		j.tags = t.TagNames()
		if f.push {
			j.target = &t
		}
		if !f.noCache {
			for _, tag := range t.Tags {
				j.cacheRefs = append(j.cacheRefs, tag)
			}
		}
	case f.output != "":
		out, err := push.ParseOutput(f.output)
		if err != nil {
			return nil, usageError{err.Error()}
		}
		j.tags = f.tags.items
		if len(j.tags) == 0 {
			j.tags = []string{"latest"}
		}
		if err := push.CheckTags(j.tags); err != nil {
			return nil, usageError{err.Error()}
		}
		if out.Kind == push.DockerArchive && len(j.platforms) > 1 {
			return nil, usagef("a docker archive holds one platform, but %d were asked for: pass one --platforms value, or use --output oci:DIR", len(j.platforms))
		}
		j.output = &out
	case !f.push:
		// Build and check only.
	default:
		return nil, usagef("say where the image goes: --image REGISTRY/NAME to push, or --output oci:DIR / docker:FILE.tar")
	}

	if (f.username == "") != (f.password == "") {
		return nil, usagef("--username and --password go together: give both or neither")
	}
	if f.budget < 1 || f.budget > layers.MaxBudget {
		return nil, usagef("--layer-budget %d is out of range: use 1 to %d", f.budget, layers.MaxBudget)
	}
	j.layerOpts = layers.Options{Strategy: f.strategy, Budget: f.budget}
	if f.strategy != "" && !contains(layers.Strategies(), f.strategy) {
		return nil, usagef("unknown --strategy %q: use one of %s", f.strategy, strings.Join(layers.Strategies(), ", "))
	}
	if f.popularity != "" {
		file, err := os.Open(f.popularity)
		if err != nil {
			return nil, fmt.Errorf("read popularity data: %w", err)
		}
		defer file.Close()
		if j.layerOpts.Popularity, err = popularity.Load(file); err != nil {
			return nil, fmt.Errorf("%s: %w", f.popularity, err)
		}
	}
	if f.level != 0 && (f.level < 1 || f.level > 9) {
		return nil, usagef("--level %d is out of range: use 1 to 9", f.level)
	}
	j.packOpts = archive.Options{Level: f.level}
	if !f.noCache {
		for _, s := range f.cacheFrom.items {
			ref, err := push.ParseCacheRef(s, f.insecure)
			if err != nil {
				return nil, usageError{err.Error()}
			}
			j.cacheRefs = append(j.cacheRefs, ref)
		}
	}

	created, err := image.SourceDateEpoch(os.Getenv)
	if err != nil {
		return nil, err
	}
	entrypoint, err := commandLine("--entrypoint", f.entrypoint)
	if err != nil {
		return nil, err
	}
	cmd, err := commandLine("--cmd", f.cmd)
	if err != nil {
		return nil, err
	}
	if cmd == nil && entrypoint == nil && j.spec.Shell {
		cmd = []string{"bash"}
	}
	if err := checkEnv(f.env.items); err != nil {
		return nil, err
	}
	labels, err := keyValues("label", f.labels.items)
	if err != nil {
		return nil, err
	}
	j.imageOpts = image.Options{
		Created: created, Entrypoint: entrypoint, Cmd: cmd, Env: f.env.items,
		WorkingDir: f.workdir, User: f.user, Labels: labels,
	}

	j.annots = image.GitHubAnnotations(os.Getenv)
	if j.annots == nil {
		j.annots = map[string]string{}
	}
	j.annots[image.AnnotationCreated] = image.FormatCreated(created)
	j.annots[image.AnnotationTitle] = j.spec.Name()
	extra, err := keyValues("annotation", f.annots.items)
	if err != nil {
		return nil, err
	}
	for k, v := range extra {
		j.annots[k] = v
	}
	return j, nil
}

// credentials are the flags' user and password, with the workflow token
// for ghcr.io.
func credentials(user, password string) push.Credentials {
	return push.Credentials{
		Username: user, Password: password,
		GitHubToken: os.Getenv("GITHUB_TOKEN"), GitHubActor: os.Getenv("GITHUB_ACTOR"),
	}
}

// hasTag reports whether an image reference ends in a tag (name:tag).
func hasTag(ref string) bool { return strings.Contains(ref[strings.LastIndexByte(ref, '/')+1:], ":") }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// buildResult is the --json output: what was pushed, and how long each
// phase took.
type buildResult struct {
	*push.Result
	Timings map[string]float64 `json:"timings"` // seconds per phase
	Packed  int                `json:"packed"`  // layers packed by this run
	Reused  int                `json:"reused"`  // layers found in the registry instead

	timings *timings
}

func runBuild(f *buildFlags, args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := f.execute(ctx, args, prefixLogs(stderr))
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "timings: %s\n", res.timings)
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return printResult(stdout, res.Result)
}

// execute checks the flags, builds the index and pushes or writes it.
// logs gives the writer for a platform's progress ("" for the rest).
func (f *buildFlags) execute(ctx context.Context, args []string, logs logSink) (*buildResult, error) {
	if f.password == "" {
		f.password = os.Getenv("NIXERY_PASSWORD")
	}
	job, err := f.check(args)
	if err != nil {
		return nil, err
	}
	creds := credentials(f.username, f.password)
	p := &pipeline{job: job, nixpkgs: f.nixpkgs, timeout: f.timeout, logs: logs, timings: newTimings()}
	if len(job.cacheRefs) > 0 {
		// The registry is read while Nix works; packing waits for it.
		p.cacheDone = make(chan struct{})
		go func() {
			defer close(p.cacheDone)
			done := p.timings.start("cache")
			var notes []string
			p.cache, notes = push.ReadCache(ctx, job.cacheRefs, push.Options{Credentials: creds})
			done()
			w, end := logs("")
			for _, n := range notes {
				fmt.Fprintln(w, n)
			}
			end()
		}()
	}
	idx, cleanup, err := p.buildIndex(ctx)
	defer cleanup()
	if err != nil {
		return nil, err
	}

	var res *push.Result
	done := p.timings.start("upload")
	switch {
	case job.target != nil:
		w, end := logs("")
		fmt.Fprintf(w, "pushing to %s\n", job.target.Repo)
		end()
		res, err = push.Push(ctx, *job.target, idx, push.Options{Jobs: f.jobs, Credentials: creds})
	case job.output != nil:
		res, err = push.Write(ctx, *job.output, idx, push.WriteOptions{Tags: job.tags, Repository: f.image})
	default:
		res, err = push.Describe(idx)
	}
	done()
	if err != nil {
		return nil, err
	}
	return &buildResult{Result: res, Timings: p.timings.seconds(), Packed: int(p.packed.Load()), Reused: int(p.reused.Load()), timings: p.timings}, nil
}

func printResult(w io.Writer, res *push.Result) error {
	sent, present := 0, 0
	for _, m := range res.Manifests {
		for _, l := range m.Layers {
			if l.Uploaded {
				sent++
			} else {
				present++
			}
		}
	}
	ref := res.Reference
	if ref == "" {
		ref = res.Image + "@" + res.Digest
	}
	_, err := fmt.Fprintf(w, "%s\ntags: %s; %s written, %s already there\n", ref,
		strings.Join(res.Tags, ", "), plural(sent, "layer", "layers"), plural(present, "layer", "layers"))
	return err
}
