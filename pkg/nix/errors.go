package nix

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/nixery-action/nixery-action/pkg/flakeref"
	"github.com/nixery-action/nixery-action/pkg/suggest"
)

// NotFoundError reports every requested attribute a nixpkgs lacks for a
// system, and those that name something other than a package (such as
// python3Packages, a set of packages), all at once.
type NotFoundError struct {
	System      string
	Missing     []string // sorted
	NotPackages []string // sorted
	// Suggestions are, for a missing attribute, the closest attribute
	// paths nixpkgs has (from the same evaluation), nearest first.
	Suggestions map[string][]string
}

func (e *NotFoundError) Error() string {
	var parts []string
	if len(e.Missing) > 0 {
		missing := make([]string, len(e.Missing))
		for i, m := range e.Missing {
			missing[i] = m + suggest.Hint(e.Suggestions[m])
		}
		parts = append(parts, fmt.Sprintf("not found in nixpkgs for %s: %s", e.System, strings.Join(missing, ", ")))
	}
	if len(e.NotPackages) > 0 {
		parts = append(parts, fmt.Sprintf("not packages in nixpkgs for %s (name one inside, e.g. %s.NAME): %s",
			e.System, e.NotPackages[0], strings.Join(e.NotPackages, ", ")))
	}
	return strings.Join(parts, "; ")
}

// TimeoutError reports that realising a system's packages (or, when What
// is set, what it names) took longer than Builder.Timeout. It wraps
// context.DeadlineExceeded.
type TimeoutError struct {
	System string
	What   string // e.g. `locking the nixpkgs flake "path:/x"`; "" means nix build for System
	After  time.Duration
}

func (e *TimeoutError) Error() string {
	what := e.What
	if what == "" {
		what = "nix build for " + e.System
	}
	return fmt.Sprintf("%s timed out after %s; raise --timeout", what, shortDuration(e.After))
}

func (e *TimeoutError) Unwrap() error { return context.DeadlineExceeded }

// shortDuration prints 10m rather than 10m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// CommandError is a failure of a Nix command: what was being done and
// the end of Nix's stderr.
type CommandError struct {
	What     string // e.g. "nix build for x86_64-linux"
	Headline string // Nix's first error in one line (see headline), if any
	Tail     string // Nix's last stderr lines, each on its own indented line
	// Explanation is nixery's own account of the failure (such as a
	// missing builder), found in all of Nix's stderr that was kept, not
	// only in Tail; "" when there is none.
	Explanation string
	// NoBuilderFor is the system Nix has no builder for, when that is
	// why it failed ("" otherwise).
	NoBuilderFor string
	// Hint is nixery's advice from what it knows beyond Nix's output
	// (see untrackedFlakeHint), shown after the headline; "" for none.
	Hint string
	Err  error // how the process ended
}

// NewCommandError is the error for a Nix command that failed (what was
// being done), from the stderr kept of it.
func NewCommandError(what, stderr string, err error) *CommandError {
	head, tail := summarize(stderr)
	e := &CommandError{What: what, Headline: head, Tail: tail, Err: err}
	if r, ok := refusalIn(string(stripANSI([]byte(stderr)))); ok {
		e.Explanation = r.explanation()
		if r.required != r.current {
			e.NoBuilderFor = r.required
		}
	}
	return e
}

func (e *CommandError) Error() string {
	if e.Explanation != "" {
		return fmt.Sprintf("%s failed: %s", e.What, e.Explanation)
	}
	head := e.Headline
	if head == "" {
		head = e.Err.Error()
	}
	if strings.Contains(head, "flake input") && strings.Contains(head, "in pure mode") {
		// builtins.getFlake reads a flake purely: its inputs must be
		// locked, where nix build would lock them on the fly.
		head += " (the flake's flake.lock is missing or out of date: run nix flake lock in the flake and commit flake.lock)"
	}
	if e.Hint != "" {
		head += " (" + e.Hint + ")"
	}
	if e.Tail == "" {
		return fmt.Sprintf("%s failed: %s", e.What, head)
	}
	return fmt.Sprintf("%s failed: %s\n  Nix said:%s", e.What, head, e.Tail)
}

func (e *CommandError) Unwrap() error { return e.Err }

// Short is Error without the lines of Nix's output it quotes: one line.
func (e *CommandError) Short() string {
	short := *e
	short.Tail = ""
	return short.Error()
}

// storeFailures are how Nix says that it could not reach its store at
// all (its daemon down), whatever it was asked to do. A full disk is not
// among them: a closure too big for it is the request's failure too, and
// is remembered as one.
var storeFailures = []string{
	"cannot connect to socket at",
	"cannot open connection to remote store",
}

// StoreFailed tells whether Nix failed for want of its store rather than
// for what it was asked: the machine's fault, not the request's.
func (e *CommandError) StoreFailed() bool {
	for _, f := range storeFailures {
		if strings.Contains(e.Headline, f) {
			return true
		}
	}
	return false
}

// missingFlakeNix is Nix's failure to find flake.nix in its copy of a
// flake's source: "getting status of '/nix/store/…-source/flake.nix': No
// such file or directory" (Nix 2.8) or "path '/nix/store/…-source/flake.nix'
// does not exist" (2.26).
var missingFlakeNix = regexp.MustCompile(`(?:getting status of|path) '/nix/store/[0-9a-z]{32}-source(?:/[^']*)?/flake\.nix'(?:: No such file or directory| does not exist)`)

// untrackedFlakeHint says why a flake of a git work tree has no flake.nix
// in Nix's copy although one is on disk: Nix copies the files git tracks.
const untrackedFlakeHint = "flake.nix is not tracked by git: Nix reads only the files git tracks; run git add flake.nix and any file it reads"

// withUntrackedHint adds untrackedFlakeHint to err, a failure to read the
// flake ref, when Nix found no flake.nix in its copy of a git work tree
// that has one on disk.
func withUntrackedHint(ref string, err error) error {
	var ce *CommandError
	if errors.As(err, &ce) && missingFlakeNix.MatchString(ce.Headline) && flakeref.GitFlakeOnDisk(ref) {
		ce.Hint = untrackedFlakeHint
	}
	return err
}

// The ways Nix says that it cannot build a derivation here, for want of a
// builder for its system or of the system features it requires, by version:
//   - Nix 2.8 to 2.29 (src/libstore/build/local-derivation-goal.cc, later
//     src/libstore/unix/build/...): one line, "a 'x86_64-linux' with
//     features {} is required to build '/nix/store/…drv', but I am a
//     'aarch64-darwin' with features {…}";
//   - Nix 2.30 to 2.33 (src/libstore/unix/build/derivation-builder.cc,
//     later src/libstore/build/derivation-building-goal.cc): "Cannot build
//     '…drv'." then, on the lines after it, "Reason: required system or
//     feature not available", "Required system: 'x86_64-linux' with
//     features {}" and "Current system: 'aarch64-darwin' with features {…}";
//   - Nix 2.34 and later (derivation-building-goal.cc, reject()): "Cannot
//     build '…drv'." then "Reason: platform mismatch", "Required system:
//     'x86_64-linux'", "Current system: 'aarch64-darwin'" and/or "Reason:
//     missing system features", "Required features: {…}", "Available
//     features: {…}".
var (
	requiredOneLine   = regexp.MustCompile(`a '([^']+)' with features \{([^}]*)\} is required to build '([^']+)', but I am a '([^']+)'(?: with features \{([^}]*)\})?`)
	cannotBuild       = regexp.MustCompile(`^Cannot build '([^']+)'`)
	requiredSystem    = regexp.MustCompile(`^Required system: '([^']+)'(?: with features \{([^}]*)\})?`)
	currentSystem     = regexp.MustCompile(`^Current system: '([^']+)'(?: with features \{([^}]*)\})?`)
	requiredFeatures  = regexp.MustCompile(`^Required features: \{([^}]*)\}`)
	availableFeatures = regexp.MustCompile(`^Available features: \{([^}]*)\}`)
)

// refusal is what Nix says it lacks to build a derivation here.
type refusal struct {
	drv               string
	required, current string // systems; "" when Nix did not say
	features, have    string // required and available system features, as Nix lists them
}

// refusalIn finds Nix's first refusal in stderr, in any version's words.
func refusalIn(stderr string) (refusal, bool) {
	if m := requiredOneLine.FindStringSubmatch(stderr); m != nil {
		return refusal{drv: m[3], required: m[1], current: m[4], features: m[2], have: m[5]}, true
	}
	for _, b := range errorBlocks(strings.Split(stderr, "\n")) {
		var r refusal
		if m := cannotBuild.FindStringSubmatch(b.first); m != nil {
			r.drv = m[1]
		}
		for _, l := range b.more {
			if m := requiredSystem.FindStringSubmatch(l); m != nil {
				r.required, r.features = m[1], m[2]
			} else if m := currentSystem.FindStringSubmatch(l); m != nil {
				r.current, r.have = m[1], m[2]
			} else if m := requiredFeatures.FindStringSubmatch(l); m != nil {
				r.features = m[1]
			} else if m := availableFeatures.FindStringSubmatch(l); m != nil {
				r.have = m[1]
			}
		}
		if (r.required != "" && r.current != "") || r.features != "" {
			return r, true
		}
	}
	return refusal{}, false
}

func (r refusal) explanation() string {
	what := "a derivation"
	if r.drv != "" {
		what = r.drv
	}
	if r.required != r.current {
		return fmt.Sprintf("Nix must build %s for %s, but this machine is %s and has no %s builder: configure one (builders in nix.conf; on a Mac, e.g. nix-darwin's nix.linux-builder), or run nixery on a machine of that system", what, r.required, r.current, r.required)
	}
	missing := r.missingFeatures()
	return fmt.Sprintf("Nix must build %s with the system features {%s}, which this machine's Nix does not have: if the machine has them, add them to system-features in nix.conf; otherwise configure a remote builder that has them (builders in nix.conf)", what, strings.Join(missing, ", "))
}

// missingFeatures are the required system features Nix does not have,
// or all the required ones when it did not say which it has.
func (r refusal) missingFeatures() []string {
	have := map[string]bool{}
	for _, f := range splitFeatures(r.have) {
		have[f] = true
	}
	var missing []string
	for _, f := range splitFeatures(r.features) {
		if !have[f] {
			missing = append(missing, f)
		}
	}
	if len(missing) == 0 {
		return splitFeatures(r.features)
	}
	return missing
}

// splitFeatures reads Nix's list of features, "a, b".
func splitFeatures(list string) []string {
	var out []string
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// JoinNotFound reports several systems' missing packages in one line;
// systems that miss the same packages share one message ("not found in
// nixpkgs for x86_64-linux and aarch64-linux: foo").
func JoinNotFound(errs []*NotFoundError) error {
	var keys []string
	systems := map[string][]string{}
	first := map[string]*NotFoundError{}
	for _, e := range errs {
		c := *e
		c.System = ""
		key := c.Error()
		if _, ok := first[key]; !ok {
			keys = append(keys, key)
			first[key] = e
		}
		systems[key] = append(systems[key], e.System)
	}
	var parts []string
	for _, k := range keys {
		c := *first[k]
		c.System = strings.Join(systems[k], " and ")
		parts = append(parts, c.Error())
	}
	return errors.New(strings.Join(parts, "; "))
}
