// Package nix realises nixpkgs packages with the Nix command line and
// reads their closures. For each system it evaluates the requested
// attribute paths of a flake's legacyPackages (one process, names passed
// as data), builds or substitutes them with `nix build`, and returns each
// package's output paths with the raw `nix path-info --json --recursive
// --closure-size` of all of them, which pkg/layers parses.
//
// It works with Nix 2.8 and later: it uses `nix build --json` (not
// --print-out-paths), builds each package's default output on every Nix
// (see found.Select), asks path-info for its version-1 JSON on Nix
// versions that version it, and, from Nix 2.13 on, builds the derivations
// its evaluation found by path, so each system's flake is evaluated once.
package nix

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nixery-action/nixery-action/pkg/flakeref"

	"github.com/nixery-action/nixery-action/pkg/spec"
)

// Builder realises packages of one nixpkgs flake. Its methods may be
// called concurrently, for different systems.
type Builder struct {
	// Flake is the nixpkgs flake reference: a path, path:/abs/dir,
	// github:NixOS/nixpkgs/<rev>, nixpkgs, ... It is locked once (see
	// Resolve), so every system builds from the same revision.
	Flake string
	// Timeout limits each Build call; zero means no limit.
	Timeout time.Duration
	// Log receives Nix's progress (its stderr) line by line as it runs,
	// each line prefixed with the system, e.g. "[aarch64-linux] ". Nil
	// discards it.
	Log io.Writer
	// Label names a system in those prefixes (e.g. linux/arm64 for
	// aarch64-linux, as the caller names it elsewhere); nil uses the
	// system's own name.
	Label func(system string) string
	// PrintBuildLogs passes -L, so that builders' own output is logged too.
	PrintBuildLogs bool
	// Nix is the program to run; empty means "nix" from PATH.
	Nix string
	// Env is the environment Nix's is taken from; nil means this
	// process's. Only the variables Nix needs reach it (see nixEnv), with
	// NO_COLOR=1.
	Env []string

	logMu sync.Mutex

	maxOutput int64 // MaxOutputBytes; tests lower it

	// Locked, when set, is Flake's lock taken before (a server keys its
	// images by it): Lock gives it without asking Nix again.
	Locked *Locked

	// Caseless matches a name of an attribute path that nixpkgs lacks
	// against the names of its set regardless of case, taking the one
	// that matches (python3packages.requests is
	// python3Packages.requests), and gives suggestions in lowercase: for
	// names from registry clients, which send only lowercase.
	Caseless bool

	// Installables are packages of other flakes to realise with the
	// nixpkgs attributes of every Build (see LockFlake).
	Installables []spec.Installable

	mu     sync.Mutex
	locked Locked
	flakes map[string]Locked // other flakes, by reference as given

	// The build's GC-roots child, shared by its platforms, and the
	// Results (and builds running) that use it (see sharedRoots).
	rootsMu   sync.Mutex
	roots     *Roots
	rootsUses int
}

// Package is one requested package, realised.
type Package struct {
	Attr    string            // attribute path, e.g. python3Packages.requests; for an installable, as given (.#app)
	DrvPath string            // its derivation
	Outputs map[string]string // output name → store path: its default output (outputName) alone, e.g. bin for curl, dev for curl.dev
	Meta    *Meta             // licences, homepage, description; nil when meta failed to evaluate
	// Installable is set for a package of another flake than nixpkgs,
	// with Flake its flake's lock and Installed the attribute it was
	// found at (packages.x86_64-linux.app).
	Installable *spec.Installable
	Flake       *Locked
	Installed   string
}

// Program is the path of what nix run would start from the package: its
// bin output's (else its out output's) bin/MainProgram; "" when meta
// did not evaluate.
func (p Package) Program() string {
	if p.Meta == nil || p.Meta.MainProgram == "" {
		return ""
	}
	if m := p.Meta.MainProgram; strings.Contains(m, "/") || m == "." || m == ".." {
		return "" // a name in bin/, nothing else (a meta says "../../x")
	}
	dir, ok := p.Outputs["bin"]
	if !ok {
		dir = p.Outputs["out"]
	}
	if dir == "" {
		return ""
	}
	return dir + "/bin/" + p.Meta.MainProgram
}

// Paths returns the package's output paths, sorted.
func (p Package) Paths() []string {
	var out []string
	for _, path := range p.Outputs {
		out = append(out, path)
	}
	sort.Strings(out)
	return out
}

// Result is what Build realised for one system.
type Result struct {
	System   string
	Flake    string    // the locked flake reference built from (Locked.URL)
	Locked   Locked    // what it is locked to
	Packages []Package // one per requested attribute, in the order requested
	// Closure is the output of `nix path-info --json --recursive
	// --closure-size` for every output of Packages: a JSON list (Nix 2.18
	// and older) or an object keyed by store path (newer). Give it to
	// layers.ParseGraph, with Roots as the graph's roots.
	Closure []byte

	release func() // lets the GC roots go (see Release)
}

// Release lets the garbage collector have the packages' outputs (and
// their closure) again, once every platform's Result of the build is
// released: call it once they are read into layers.
func (r *Result) Release() {
	if r != nil && r.release != nil {
		r.release()
	}
}

// Roots returns every output path of every package, sorted and
// de-duplicated: the paths the image is asked for.
func (r *Result) Roots() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range r.Packages {
		for _, path := range p.Outputs {
			if !seen[path] {
				seen[path] = true
				out = append(out, path)
			}
		}
	}
	sort.Strings(out)
	return out
}

// logf writes one line of our own to the log.
func (b *Builder) logf(prefix, format string, args ...any) {
	l := &lineWriter{mu: &b.logMu, w: b.Log, prefix: prefix}
	fmt.Fprintf(l, format+"\n", args...)
}

// Validate checks the builder's settings: a negative timeout would
// otherwise mean no limit.
func (b *Builder) Validate() error {
	if b.Timeout < 0 {
		return fmt.Errorf("Nix timeout %s is negative: give a positive duration such as 30m, or 0 for no limit", b.Timeout)
	}
	return nil
}

// Version runs `nix --version`: whether Nix is there and runs at all,
// apart from any flake or package. Its answer is Nix's one line.
func (b *Builder) Version(ctx context.Context) (string, error) {
	out, err := b.run(ctx, nil, "nix --version", "", "--version")
	if err == nil {
		b.knowVersion(string(out)) // not asked again beside the first command
	}
	return strings.TrimSpace(string(out)), err
}

// Build realises the packages named by attrs (nixpkgs attribute paths,
// checked with spec.CheckAttr) for a Nix system such as aarch64-linux, and
// reads their closure. Missing packages are reported together in a
// *NotFoundError before anything is built; a build that outlasts Timeout
// ends with a *TimeoutError; other Nix failures are *CommandErrors quoting
// the end of Nix's stderr.
func (b *Builder) Build(ctx context.Context, system string, attrs []string) (*Result, error) {
	return b.BuildLogged(ctx, system, attrs, b.Log)
}

// prefix starts each of system's log lines.
func (b *Builder) prefix(system string) string {
	if b.Label != nil {
		return "[" + b.Label(system) + "] "
	}
	return "[" + system + "] "
}

// BuildLogged is Build with this system's progress written to log
// instead of b.Log, so that one Builder (one lock) can serve several
// systems whose logs are kept apart.
func (b *Builder) BuildLogged(ctx context.Context, system string, attrs []string, log io.Writer) (*Result, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	if err := checkSystem(system); err != nil {
		return nil, err
	}
	attrs = unique(attrs)
	if len(attrs) == 0 && len(b.Installables) == 0 {
		return nil, fmt.Errorf("nix build for %s: no packages to build", system)
	}
	for _, a := range attrs {
		if err := spec.CheckAttr(a); err != nil {
			return nil, err
		}
	}

	b.askVersionSoon()
	parent := ctx
	if b.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.Timeout)
		defer cancel()
	}
	res, err := b.build(ctx, system, attrs, log)
	if err != nil {
		switch {
		case parent.Err() != nil:
			return nil, fmt.Errorf("nix build for %s interrupted: %w", system, parent.Err())
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return nil, &TimeoutError{System: system, After: b.Timeout}
		}
		return nil, err
	}
	return res, nil
}

func (b *Builder) build(ctx context.Context, system string, attrs []string, log io.Writer) (*Result, error) {
	// The build's GC-roots child starts beside the evaluation (a process
	// start, tens of milliseconds); this platform's derivations and
	// outputs are held from the evaluation's end until Result.Release.
	holdCtx, stopHold := context.WithCancel(ctx)
	defer stopHold()
	started := make(chan *Roots, 1)
	go func() { started <- b.sharedRoots(holdCtx) }()
	pending := started // where waitRoots takes the roots from
	var roots *Roots
	waited := false
	waitRoots := func() *Roots {
		if !waited {
			roots, waited = <-pending, true
		}
		return roots
	}
	ok := false
	defer func() {
		if !ok {
			stopHold() // a failed build does not wait for a slow nix-store
			waitRoots()
			b.dropRoots()
		}
	}()

	lock, err := b.Lock(ctx)
	if err != nil {
		return nil, err
	}
	locked := lock.nixRef()
	drvs := map[string]found{}
	if len(attrs) > 0 {
		if drvs, err = b.lookup(ctx, log, locked, system, attrs); err != nil {
			return nil, err
		}
	}
	apps, err := b.lookupAll(ctx, log, system)
	if err != nil {
		return nil, err
	}
	var held []string
	for _, f := range drvs {
		held = append(held, f.DrvPath, f.OutPath)
	}
	for _, a := range apps {
		held = append(held, a.found.DrvPath, a.found.OutPath)
	}
	// Held before nix build when the child is up (it started beside the
	// evaluation); else beside it: nix build does not wait for a child
	// slow to start, and roots what it reads itself while it runs.
	select {
	case roots = <-started:
		waited = true
		if _, err := roots.Hold(ctx, held); err != nil {
			roots = nil // unrooted, as before: the build goes on
		}
	default:
		holding := make(chan *Roots, 1)
		go func() {
			r := <-started
			if _, err := r.Hold(holdCtx, held); err != nil {
				r = nil
			}
			holding <- r
		}()
		pending = holding
	}

	prefix := b.prefix(system)
	args := []string{"build", "--no-link", "--json", "--no-write-lock-file"}
	if b.PrintBuildLogs {
		args = append(args, "--print-build-logs")
	}
	args = append(args, "--")
	// Each package's default output (outputName) alone, on every Nix
	// (found.Select), as Nixery and dockerTools take a package: an image
	// must not depend on the Nix that built it. Where Nix can, by the
	// derivation's path (found.installable).
	for _, a := range attrs {
		f := drvs[a]
		if f.Attr != "" {
			a = f.Attr // as nixpkgs spells it (see Caseless)
		}
		args = append(args, f.installable(locked+"#legacyPackages."+system+"."+a))
	}
	for _, a := range apps {
		args = append(args, a.found.installable(a.lock.nixRef()+"#"+a.installed(system)))
	}
	out, err := b.run(ctx, log, "nix build for "+system, prefix, args...)
	if err != nil {
		return nil, err
	}
	// Nix 2.8 does not list results in the order of the installables, so
	// they are matched to attributes by derivation path. Two outputs of
	// one derivation (curl curl.dev) are one result on Nix 2.8 and one
	// each on later Nix: the results of a derivation are merged, and
	// each package takes the output it names.
	var built []struct {
		DrvPath string            `json:"drvPath"`
		Outputs map[string]string `json:"outputs"`
	}
	if err := json.Unmarshal(out, &built); err != nil {
		return nil, fmt.Errorf("nix build for %s: unexpected output of nix build --json: %w", system, err)
	}
	outputs := map[string]map[string]string{}
	for _, r := range built {
		if outputs[r.DrvPath] == nil {
			outputs[r.DrvPath] = map[string]string{}
		}
		maps.Copy(outputs[r.DrvPath], r.Outputs)
	}
	res := &Result{System: system, Flake: lock.URL, Locked: lock}
	for _, a := range attrs {
		f := drvs[a]
		outs, ok := f.outputIn(outputs)
		if !ok {
			return nil, fmt.Errorf("nix build for %s: nix build did not report output %s of %s (%s)", system, f.Output, a, f.DrvPath)
		}
		res.Packages = append(res.Packages, Package{Attr: a, DrvPath: f.DrvPath, Outputs: outs, Meta: f.Meta})
	}
	for _, a := range apps {
		outs, ok := a.found.outputIn(outputs)
		if !ok {
			return nil, fmt.Errorf("nix build for %s: nix build did not report output %s of %s (%s)", system, a.found.Output, flakeref.Redacted(a.inst.Ref), a.found.DrvPath)
		}
		inst, lock := a.inst, a.lock
		res.Packages = append(res.Packages, Package{Attr: inst.Ref, DrvPath: a.found.DrvPath, Outputs: outs, Meta: a.found.Meta,
			Installable: &inst, Flake: &lock, Installed: a.installed(system)})
	}

	// The outputs by the paths nix build gave: a content-addressed one
	// was a placeholder until built, and one that nix build had ready
	// (its own roots gone as it ended) may be held only now.
	if valid, err := waitRoots().Hold(ctx, res.Roots()); err == nil && roots != nil {
		for _, p := range res.Roots() {
			if !valid[p] {
				return nil, fmt.Errorf("nix build for %s: %s was deleted as it was built (a garbage collection?): run the build again", system, p)
			}
		}
	}
	res.Closure, err = b.pathInfo(ctx, log, system, res.Roots())
	if err != nil {
		return nil, err
	}
	ok = true
	res.release = sync.OnceFunc(b.dropRoots)
	return res, nil
}

// app is an installable found for a system.
type app struct {
	inst  spec.Installable
	lock  Locked
	found found
}

// installed is the attribute nix build is given: SET.SYSTEM.ATTR,
// defaultPackage.SYSTEM, which is a package itself, or an attribute path
// of the flake's outputs, which nix build tries after those sets.
func (a app) installed(system string) string {
	if a.found.Set == "" {
		return a.found.Attr
	}
	if a.found.Attr == "" {
		return a.found.Set + "." + system
	}
	return a.found.Set + "." + system + "." + a.found.Attr
}

// lookupAll finds b.Installables for a system: each flake locked once
// (LockFlake), and evaluated once for all of its installables.
func (b *Builder) lookupAll(ctx context.Context, log io.Writer, system string) ([]app, error) {
	byFlake := map[string][]spec.Installable{}
	var flakes []string
	for _, inst := range b.Installables {
		if _, ok := byFlake[inst.Flake]; !ok {
			flakes = append(flakes, inst.Flake)
		}
		byFlake[inst.Flake] = append(byFlake[inst.Flake], inst)
	}
	sort.Strings(flakes)
	var apps []app
	for _, ref := range flakes {
		lock, err := b.LockFlake(ctx, ref)
		if err != nil {
			return nil, err
		}
		found, err := b.lookupInstallables(ctx, log, ref, lock.nixRef(), system, byFlake[ref])
		if err != nil {
			return nil, err
		}
		for _, inst := range byFlake[ref] {
			apps = append(apps, app{inst: inst, lock: lock, found: found[inst.Ref]})
		}
	}
	return apps, nil
}

// checkSystem accepts Nix system names such as x86_64-linux.
func checkSystem(s string) error {
	cpu, os, ok := strings.Cut(s, "-")
	valid := ok && cpu != "" && os != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			valid = false
		}
	}
	if !valid {
		return fmt.Errorf("invalid Nix system %q (expected e.g. x86_64-linux)", s)
	}
	return nil
}

func unique(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
