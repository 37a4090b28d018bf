package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sethvargo/go-githubactions"

	"github.com/nixery-action/nixery-action/pkg/build"
	"github.com/nixery-action/nixery-action/pkg/flakeref"
	"github.com/nixery-action/nixery-action/pkg/ghaction"
	"github.com/nixery-action/nixery-action/pkg/publish"
	"github.com/nixery-action/nixery-action/pkg/spec"
)

// actionCommand is `nixery action`. The action reads its inputs from
// INPUT_* variables. action.yml passes them through each step's env;
// names there use underscores (INPUT_LAYER_BUDGET), since a shell cannot
// name a variable with a dash.
func actionCommand() *command {
	return &command{
		name:    "action",
		summary: "run as the GitHub Action: read the inputs, build and push, set the outputs and step summary",
		usage:   "",
		setup: func(*flag.FlagSet) func([]string) error {
			return func(args []string) error {
				if len(args) > 0 {
					return usagef("takes no arguments: it reads the action's inputs from INPUT_* variables")
				}
				return runAction(getenv, os.Stdout)
			}
		},
	}
}

// newActions returns go-githubactions' helper reading inputs with dashes
// as underscores.
func newActions(getenv func(string) string, w io.Writer) *githubactions.Action {
	return githubactions.New(
		githubactions.WithWriter(w),
		githubactions.WithGetenv(func(k string) string {
			return getenv(strings.ReplaceAll(k, "-", "_"))
		}),
	)
}

// runAction runs the action. Every line it prints passes through one
// rule, ghaction's: its own commands (groups, masks, the error) through
// ghaction.Command, which escapes their data; every other line (the
// result, which names inputs; Nix's and the registry's text) through
// ghaction.Line, which keeps it one line that issues no command.
func runAction(getenv func(string) string, stdout io.Writer) error {
	gh := newActions(getenv, stdout)
	// Masked before anything can print it: the passwords, and the
	// credentials of flake references (in the forms flakeref.Secrets
	// gives: as written in the reference, and decoded).
	secrets := []string{gh.GetInput("password"), getenv("GITHUB_TOKEN"), getenv("NIXERY_PASSWORD")}
	for _, ref := range append([]string{gh.GetInput("nixpkgs")}, spec.Words(gh.GetInput("packages"))...) {
		secrets = append(secrets, flakeref.Secrets(ref)...)
	}
	for _, secret := range secrets {
		if secret != "" {
			fmt.Fprintln(stdout, ghaction.Command("add-mask", secret))
		}
	}
	ctx, stop := interruptContext()
	defer stop()

	res, err := actionRun(ctx, gh, stdout)
	if err != nil {
		return actionError(stdout, inputWords(withHints(err, actionInput, true)))
	}
	defer res.Close()
	if _, err := fmt.Fprintln(stdout, ghaction.Line(resultLine(res.Result))); err != nil {
		return err
	}
	if err := writeOutputs(getenv, res); err != nil {
		what := "the image was built"
		if res.Pushed {
			what = imageRef(res.Result) + " was pushed"
		}
		return actionError(stdout, fmt.Errorf("%s, but %w", what, err))
	}
	return nil
}

// actionError prints err as the step's error annotation and returns it as
// one line for stderr: the message may hold an input's, a registry's or
// Nix's text, and escaped it cannot issue a command of its own there or
// on stderr, which the runner reads too.
func actionError(stdout io.Writer, err error) error {
	fmt.Fprintln(stdout, ghaction.Command("error", err.Error(), "title", "nixery"))
	return retext(err, ghaction.Line(err.Error()))
}

// writeOutputs sets the step's outputs and writes its summary through the
// runner's files; a missing or unwritable file is an error, after the
// result has been printed.
func writeOutputs(getenv func(string) string, res *build.Result) error {
	manifests := map[string]string{}
	for _, m := range res.Manifests {
		manifests[m.Platform] = m.Digest
	}
	metadata, err := json.Marshal(res)
	if err != nil {
		return err
	}
	platforms, err := json.Marshal(manifests)
	if err != nil {
		return err
	}
	sboms, err := sbomOutputs(res)
	if err != nil {
		return err
	}
	file := getenv("GITHUB_OUTPUT")
	for _, o := range append([][2]string{
		{"digest", res.Digest},
		{"image", imageRef(res.Result)},
		{"manifests", string(platforms)},
		{"metadata", string(metadata)},
	}, sboms...) {
		if err := ghaction.SetOutput(file, o[0], o[1]); err != nil {
			return err
		}
	}
	return ghaction.AppendSummary(getenv("GITHUB_STEP_SUMMARY"), summary(res, packageNames(getenv("INPUT_PACKAGES"))))
}

// actionRun maps the inputs onto the flags of build (or merge) and runs it.
func actionRun(ctx context.Context, gh *githubactions.Action, stdout io.Writer) (*build.Result, error) {
	groups := newGroups(stdout, func(platform string) (string, string) {
		return ghaction.Command("group", "Build "+platform) + "\n", "::endgroup::\n"
	})
	defer groups.finish()
	logs := safeLogs(groups.sink)

	digests, err := input(gh, "merge-digests")
	if err != nil {
		return nil, err
	}
	if digests != "" {
		f := &mergeFlags{tags: listFlag{commas: true}}
		fs := flag.NewFlagSet("merge", flag.ContinueOnError)
		f.register(fs)
		if err := buildOnlyInputs(gh, fs); err != nil {
			return nil, err
		}
		if err := setFromInputs(gh, fs); err != nil {
			return nil, err
		}
		if err := loginInputs(gh, &f.login, f.push, stdout); err != nil {
			return nil, err
		}
		f.warn = func(line string) {
			// A warning annotation, shown in the log too; the text is
			// the registry's, escaped so it issues no command.
			fmt.Fprintln(stdout, ghaction.Command("warning", strings.TrimPrefix(line, "warning: "), "title", "nixery"))
		}
		return f.execute(ctx, spec.Words(digests), logs)
	}

	f := newBuildFlags()
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.register(fs)
	if err := setFromInputs(gh, fs); err != nil {
		return nil, err
	}
	if err := loginInputs(gh, &f.login, f.push && f.output == "", stdout); err != nil {
		return nil, err
	}
	packages, err := input(gh, "packages")
	if err != nil {
		return nil, err
	}
	if packages == "" {
		// The runner gives an input set to an empty value as one not
		// set: a merge whose digests came out empty (a missing
		// artifact, say) lands here.
		return nil, fmt.Errorf("the packages and merge-digests inputs are both empty: one is needed; packages names the nixpkgs packages to build (e.g. packages: hello git), merge-digests the per-platform builds' digests to merge; if merge-digests was set, it came out empty: check that every build job's digest reached this job (its artifact was uploaded and downloaded)")
	}
	sbomDir, err := actionSBOMDir(f, gh.Getenv("RUNNER_TEMP"))
	if err != nil {
		return nil, err
	}
	res, err := f.execute(ctx, []string{packages}, newLines(logs, time.Now))
	if err != nil && sbomDir != "" {
		// A failed run sets no outputs: nothing names the directory.
		_ = os.RemoveAll(sbomDir)
	}
	return res, err
}

// setFromInputs sets every flag whose input is not empty. The action's
// inputs are the flags of the command, under the same names.
func setFromInputs(gh *githubactions.Action, fs *flag.FlagSet) error {
	var err error
	fs.VisitAll(func(fl *flag.Flag) {
		if err != nil || fl.Name == "json" {
			return
		}
		v, inErr := input(gh, fl.Name)
		if inErr != nil {
			err = inErr
			return
		}
		if v != "" {
			if setErr := fs.Set(fl.Name, v); setErr != nil {
				err = inputError(fl, v, setErr)
			}
		}
	})
	return err
}

// inputError says why an input's value is refused; the flag package's
// "parse error" names neither the value nor what would do.
func inputError(fl *flag.Flag, v string, err error) error {
	if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return fmt.Errorf("input %s: %q is not a boolean: use true or false", fl.Name, v)
	}
	if err.Error() == "parse error" {
		kind, what := takes(fl)
		return fmt.Errorf("input %s takes %s, not %q: %s", fl.Name, kind, v, what)
	}
	return fmt.Errorf("input %s: %v", fl.Name, err)
}

// buildOnlyInputs refuses, for a merge, the inputs only a build reads,
// rather than ignore them: a boolean one when it is not its default, any
// other when it is set. merge is the merge's flags.
func buildOnlyInputs(gh *githubactions.Action, merge *flag.FlagSet) error {
	build := flag.NewFlagSet("build", flag.ContinueOnError)
	newBuildFlags().register(build)
	for _, name := range actionInputs {
		if name == "merge-digests" || merge.Lookup(name) != nil {
			continue
		}
		v, err := input(gh, name)
		if err != nil {
			return err
		}
		if fl := build.Lookup(name); fl != nil && v != "" {
			if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
				on, err := strconv.ParseBool(v)
				if err != nil {
					return inputError(fl, v, err)
				}
				if strconv.FormatBool(on) == fl.DefValue {
					continue
				}
			}
		}
		if v != "" && name != "install-nix" { // action.yml's, not nixery's
			return fmt.Errorf("input %s is for building, which merge-digests replaces: a merge only takes image, tags, merge-digests, push, insecure and the login inputs (username, password); drop %s", name, name)
		}
	}
	return nil
}

// loginInputs deals with a username input whose password is empty, which
// is what a pull request from a fork sends (it gets no secrets). With
// nothing to push the build goes on anonymously, after a warning;
// pushing, it is an error that says so.
func loginInputs(gh *githubactions.Action, l *loginFlags, pushes bool, stdout io.Writer) error {
	if l.username == "" || l.password != "" || gh.Getenv("NIXERY_PASSWORD") != "" {
		return nil
	}
	if pushes {
		return errors.New("the username input is set but the password input is empty: set password (e.g. password: ${{ secrets.REGISTRY_TOKEN }}); pull requests from forks get no secrets, so push only on other events, e.g. push: ${{ github.event_name != 'pull_request' }}")
	}
	fmt.Fprintln(stdout, ghaction.Command("warning", "the username input is set but the password input is empty (a pull request from a fork gets no secrets): nothing is pushed, so this goes on without logging in", "title", "nixery"))
	l.username = ""
	return nil
}

// input reads an input, at most ghaction.MaxInputBytes long.
func input(gh *githubactions.Action, name string) (string, error) {
	v := gh.GetInput(name)
	return v, ghaction.CheckInput(name, v)
}

// imageRef is the image pinned by digest, or "" when it has no
// repository (built without image, not pushed, or written to an
// output: oci:DIR@sha256:… names nothing a client reads).
func imageRef(res *publish.Result) string {
	switch {
	case res.Reference != "":
		return res.Reference
	case res.Image == "":
		return ""
	}
	if _, err := publish.ParseOutput(res.Image); err == nil {
		return ""
	}
	return res.Image + "@" + res.Digest
}

// packageNames is the packages input on one line, for a summary's
// heading when there is no image to name, with the credentials of flake
// references hidden: the summary's markdown escapes would keep the
// runner's masks from matching them.
func packageNames(packages string) string {
	names := spec.Words(packages)
	for i, n := range names {
		names[i] = flakeref.Redacted(n)
	}
	return strings.Join(names, " ")
}

// summary is the step summary: per platform a table of its layers, then
// the time each phase took. Text that came from the inputs, the registry
// or Nix is escaped for markdown, so that it stays in its heading or
// cell (a merged index's platforms are the registry's text); digests and
// figures are nixery's own.
// packages names the image when it has no repository.
func summary(res *build.Result, packages string) string {
	var b strings.Builder
	heading := res.Image
	switch {
	case heading == "":
		heading = packages
	case len(res.Repositories) > 1:
		heading += fmt.Sprintf(" and %d more", len(res.Repositories)-1)
	}
	fmt.Fprintf(&b, "### %s\n\n", ghaction.MarkdownText(heading))
	if len(res.Repositories) > 1 {
		if res.Pushed {
			fmt.Fprintf(&b, "Pushed to %d repositories (the uploads below are to the first):\n\n", len(res.Repositories))
		} else {
			fmt.Fprintf(&b, "Would have been pushed to %d repositories (push: false):\n\n", len(res.Repositories))
		}
		for _, r := range res.Repositories {
			ref := r.Reference
			if ref == "" { // not pushed: the reference it would have had
				ref = r.Image + "@" + res.Digest
			}
			fmt.Fprintf(&b, "- %s: %s\n", ghaction.MarkdownCode(ref), markdownTags(r.Tags))
		}
		b.WriteString("\n")
	} else if ref := imageRef(res.Result); ref != "" {
		fmt.Fprintf(&b, "%s\n\n", ghaction.MarkdownCode(ref))
	}
	if !res.Pushed {
		fmt.Fprintf(&b, "Built and checked, not pushed (push: false): %s\n\n", ghaction.MarkdownCode(res.Digest))
	}
	if len(res.Tags) > 0 && len(res.Repositories) <= 1 {
		label := "Tags"
		if !res.Pushed {
			label = "Tags it would have had"
		}
		fmt.Fprintf(&b, "%s: %s\n\n", label, markdownTags(res.Tags))
	}
	if res.Created != "" {
		fmt.Fprintf(&b, "Created: %s\n\n", ghaction.MarkdownText(res.Created))
	}
	// An output (oci:DIR, docker:FILE), written to: told in the words of
	// the result line.
	written := res.Pushed && res.Reference == ""
	for _, m := range res.Manifests {
		var total int64
		for _, l := range m.Layers {
			total += l.Size
		}
		contents := contentsOf(res, m.Platform)
		unpacked := ""
		if contents != nil {
			unpacked = ", " + humanSize(int64(contents.Bytes)) + " unpacked"
		}
		fmt.Fprintf(&b, "#### %s (%s, %s compressed%s)\n\n", ghaction.MarkdownText(m.Platform), plural(len(m.Layers), "layer", "layers"), humanSize(total), unpacked)
		if contents != nil && len(contents.Largest) > 0 {
			var largest []string
			for _, p := range contents.Largest {
				largest = append(largest, fmt.Sprintf("%s (%s)", ghaction.MarkdownText(p.Package), humanSize(int64(p.Bytes))))
			}
			fmt.Fprintf(&b, "Largest packages: %s\n\n", strings.Join(largest, ", "))
		}
		b.WriteString("| # | size | packages | upload |\n|---:|---:|---|---|\n")
		for i, l := range m.Layers {
			status := "already present"
			switch {
			case !res.Pushed:
				status = "not pushed"
			case written && l.Uploaded:
				status = "written"
			case written:
				status = "already there"
			case l.Uploaded:
				status = "uploaded"
			}
			pkgs := ghaction.MarkdownText(packageCell(l.Packages))
			if l.Customisation || pkgs == "" {
				pkgs = "(customisation: symlinks, /tmp, CA bundle)"
			}
			fmt.Fprintf(&b, "| %d | %s | %s | %s |\n", i+1, humanSize(l.Size), pkgs, status)
		}
		b.WriteString("\n")
	}
	b.WriteString(sbomSummary(res))
	b.WriteString("| phase | platform | seconds |\n|---|---|---:|\n")
	for _, p := range res.Timings.Phases() {
		fmt.Fprintf(&b, "| %s | %s | %.2f |\n", p.Name, ghaction.MarkdownText(p.Platform), p.Seconds)
	}
	return b.String()
}

// cellPackages is the most package names a layer's row lists: GitHub
// drops a step summary of more than 1 MiB whole, and 125 layers of a
// closure of thousands of paths on several platforms would pass it.
const cellPackages = 12

// packageCell is a layer's packages for its row, the rest counted.
func packageCell(names []string) string {
	if len(names) <= cellPackages {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:cellPackages], ", "), len(names)-cellPackages)
}

// markdownTags are tags as code spans, "by digest, no tags" for none.
func markdownTags(tags []string) string {
	if len(tags) == 0 {
		return "by digest, no tags"
	}
	code := make([]string, len(tags))
	for i, t := range tags {
		code[i] = ghaction.MarkdownCode(t)
	}
	return strings.Join(code, ", ")
}

// contentsOf finds the contents of platform in res, or nil (merge).
func contentsOf(res *build.Result, platform string) *build.ContentsResult {
	for i := range res.Contents {
		if res.Contents[i].Platform == platform {
			return &res.Contents[i]
		}
	}
	return nil
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// actionInputs are the inputs of action.yml (a test keeps them equal).
// Each but packages, merge-digests and install-nix is a flag of build or
// merge under the same name.
var actionInputs = []string{
	"packages", "platforms", "image", "tags", "push", "push-by-digest", "merge-digests", "cache-from", "no-cache",
	"nixpkgs", "layer-budget", "strategy", "popularity", "compression", "labels", "annotations", "entrypoint", "cmd",
	"env", "workdir", "user", "username", "password", "insecure", "output", "sbom", "no-default-packages",
	"print-build-logs", "timeout", "install-nix",
}

// actionInput tells whether the action has an input named as the flag,
// for the hints of withHints.
func actionInput(name string) bool { return slices.Contains(actionInputs, name) }

// flagWord is a flag (--name, --name=VALUE) in a message.
var flagWord = regexp.MustCompile(`--([a-z][a-z0-9-]*)(=[^\s:;,]+)?`)

// inputWords is err with the flags it names written as the action's
// inputs (--push=false as push: false, --image as the image input),
// for a user who sets inputs, not flags. Flags with no input stay.
func inputWords(err error) error {
	if err == nil {
		return nil
	}
	text := strings.ReplaceAll(err.Error(), "--username/--password", "the username and password inputs")
	text = flagWord.ReplaceAllStringFunc(text, func(w string) string {
		m := flagWord.FindStringSubmatch(w)
		switch {
		case !actionInput(m[1]):
			return w
		case m[2] != "":
			return m[1] + ": " + m[2][1:]
		}
		return "the " + m[1] + " input"
	})
	return retext(err, text)
}
