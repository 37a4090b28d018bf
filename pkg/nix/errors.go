package nix

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

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
	Headline string // Nix's first "error:" line, if any
	Tail     string // Nix's last stderr lines, each on its own indented line
	Err      error  // how the process ended
}

func (e *CommandError) Error() string {
	if msg := missingBuilder(e.Headline + "\n" + e.Tail); msg != "" {
		return fmt.Sprintf("%s failed: %s", e.What, msg)
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
	if e.Tail == "" {
		return fmt.Sprintf("%s failed: %s", e.What, head)
	}
	return fmt.Sprintf("%s failed: %s\n  Nix said:%s", e.What, head, e.Tail)
}

func (e *CommandError) Unwrap() error { return e.Err }

// The ways Nix says that it must build a derivation for a system it cannot
// build for (no builder for it is configured), by version:
//   - Nix 2.8 to 2.32 (src/libstore/build/local-derivation-goal.cc, later
//     src/libstore/unix/build/...): one line, "a 'x86_64-linux' with
//     features {} is required to build '/nix/store/…drv', but I am a
//     'aarch64-darwin' with features {…}";
//   - Nix 2.33 and 2.34 (src/libstore/build/derivation-building-goal.cc):
//     "Cannot build '…drv'." then "Required system: 'x86_64-linux' with
//     features {}" and "Current system: 'aarch64-darwin' with features {…}";
//   - Nix 2.35: the same lines without "with features".
var (
	requiredOneLine = regexp.MustCompile(`a '([^']+)' with features \{[^}]*\} is required to build '([^']+)', but I am a '([^']+)'`)
	cannotBuild     = regexp.MustCompile(`Cannot build '([^']+)'`)
	requiredSystem  = regexp.MustCompile(`Required system: '([^']+)'`)
	currentSystem   = regexp.MustCompile(`Current system: '([^']+)'`)
)

// missingBuilder returns the one-line explanation of Nix's refusal to build
// a derivation for another system, or "" when stderr holds none.
func missingBuilder(stderr string) string {
	stderr = string(stripANSI([]byte(stderr)))
	var drv, required, current string
	if m := requiredOneLine.FindStringSubmatch(stderr); m != nil {
		required, drv, current = m[1], m[2], m[3]
	} else if r, c := requiredSystem.FindStringSubmatch(stderr), currentSystem.FindStringSubmatch(stderr); r != nil && c != nil {
		required, current = r[1], c[1]
		if m := cannotBuild.FindStringSubmatch(stderr); m != nil {
			drv = m[1]
		}
	} else {
		return ""
	}
	what := "a derivation"
	if drv != "" {
		what = drv
	}
	return fmt.Sprintf("Nix must build %s for %s, but this machine is %s and has no %s builder: configure one (builders in nix.conf; on a Mac, e.g. nix-darwin's nix.linux-builder), or run nixery on a machine of that system", what, required, current, required)
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
