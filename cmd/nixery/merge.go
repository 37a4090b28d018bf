package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/nixery-action/nixery-action/pkg/build"
	"github.com/nixery-action/nixery-action/pkg/publish"
	"github.com/nixery-action/nixery-action/pkg/registry"
)

// mergeFlags are the options of `nixery merge`, which joins images that
// per-platform jobs pushed by digest into one index under the tags.
type mergeFlags struct {
	image    string
	tags     listFlag
	insecure bool
	push     bool
	login    loginFlags
	json     bool
	// warn, when set, takes the merge's warning lines instead of the
	// log (the action makes them annotations).
	warn func(line string)
}

// mergeCommand is `nixery merge`.
func mergeCommand() *command {
	return &command{
		name:    "merge",
		summary: "put one multi-platform index over per-platform images pushed by digest",
		usage:   "(--image REF [--tags LIST] | --tags REGISTRY/NAME:TAG,...) (DIGEST | NAME@DIGEST)...",
		setup: func(fs *flag.FlagSet) func([]string) error {
			f := &mergeFlags{tags: listFlag{commas: true}}
			f.register(fs)
			return func(args []string) error {
				ctx, stop := interruptContext()
				defer stop()
				res, err := f.execute(ctx, args, prefixLogs(os.Stderr))
				if err != nil {
					return err
				}
				if f.json {
					enc := json.NewEncoder(os.Stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(res)
				}
				return printResult(os.Stdout, res.Result)
			}
		},
	}
}

func (f *mergeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.image, "image", "", "repository `REF` the per-platform images were pushed to, e.g. ghcr.io/OWNER/NAME (default: the first repository the tags name)")
	fs.Var(&f.tags, "tags", "`LIST` of tags to put the index under, comma or newline separated (default latest): bare tags for --image, or full references REGISTRY/NAME:TAG (docker/metadata-action's tags output), which put the same index, with copies of the images, in each repository named; --image may then be left out")
	fs.BoolVar(&f.insecure, "insecure", false, "talk plain HTTP to the registry (loopback registries always are)")
	fs.BoolVar(&f.push, "push", true, "write the index and its tags; false reads the images and gives the index's digest, writing nothing")
	f.login.register(fs)
	fs.BoolVar(&f.json, "json", false, "print the result as JSON")
}

func (f *mergeFlags) execute(ctx context.Context, digests []string, logs logSink) (*build.Result, error) {
	if f.image == "" && fullReference(f.tags.items) == "" {
		return nil, usagef("--image is required: the repository the per-platform images were pushed to")
	}
	if len(digests) == 0 {
		return nil, usagef("name the digests to merge: the digest (or NAME@DIGEST image) output of each per-platform build")
	}
	targets, err := publish.NewTargets(f.image, f.tags.items, f.insecure)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	// The first repository is where the per-platform images are; the
	// index goes to every one, each under its own tags.
	t := &targets[0]
	if len(t.Tags) == 0 {
		t.Tags = []name.Tag{t.Repo.Tag("latest")}
	}
	for _, d := range digests {
		// Checked before any credentials are read or registry asked.
		if _, err := publish.MergeDigest(*t, d); err != nil {
			return nil, usageError{err.Error()}
		}
	}
	creds, err := f.login.credentials(t.Repo.RegistryStr(), stdin, getenv)
	if err != nil {
		return nil, err
	}
	o := publish.Options{Options: registry.Options{Credentials: creds}, OnRetry: logLine(logs)}
	o.OnWarning = f.warn
	if o.OnWarning == nil {
		o.OnWarning = logLine(logs)
	}
	o.OnMerging = func(platforms []string) {
		into := "into"
		if !f.push {
			into = "for" // nothing is written there
		}
		// Counted once read: the same image may be given twice over.
		var repos []string
		for _, t := range targets {
			repos = append(repos, t.Repo.String())
		}
		logLine(logs)(fmt.Sprintf("merging %s (%s) %s %s", plural(len(platforms), "image", "images"), strings.Join(platforms, ", "), into, strings.Join(repos, ", ")))
	}
	return build.Merge(ctx, targets, digests, o, f.push)
}
