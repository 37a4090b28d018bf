package nix

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"sync"
)

// pathInfo runs nix path-info on the outputs. Nix 2.33 and later version
// their JSON and warn unless --json-format is given; older versions refuse
// the flag. The first call with a program finds out which kind of Nix it
// is, for the whole process (see jsonFormats): from its version when that
// is before 2.33, else by giving the flag (Lix, at 2.9x, refuses it).
func (b *Builder) pathInfo(ctx context.Context, log io.Writer, system string, paths []string) ([]byte, error) {
	what := "reading the closure for " + system
	prefix := b.prefix(system)
	base := []string{"path-info", "--json", "--recursive", "--closure-size"}
	program := b.program()
	if jsonFormat(program) == 0 && versionOf(program, b.environ()).before(2, 33) {
		jsonFormats.Store(program, -1) // no probe needed: the flag is new in 2.33
	}
	if jsonFormat(program) >= 0 {
		args := append(append(append([]string{}, base...), "--json-format", "1", "--"), paths...)
		// Quiet: an older Nix's complaint about the flag is expected.
		out, err := b.run(ctx, nil, what, prefix, args...)
		var ce *CommandError
		switch {
		case err == nil:
			jsonFormats.Store(program, 1)
			return out, nil
		case errors.As(err, &ce) && strings.Contains(ce.Headline, "json-format"):
			jsonFormats.Store(program, -1)
		default:
			return nil, err
		}
	}
	return b.run(ctx, log, what, prefix, append(append(base, "--"), paths...)...)
}

// jsonFormats remembers, by Nix program (its resolved path), whether
// path-info takes --json-format (1) or not (-1). A server and every build
// of the CLI make a Builder per build: each would pay a failed probe
// (about 20 ms) on a Nix older than 2.33. A Nix upgraded or downgraded in
// place is still served: a refused flag is dropped and remembered again,
// and a Nix that would take it works without it.
var jsonFormats sync.Map // string → int

// jsonFormat is what jsonFormats knows of program: 0 when nothing yet.
func jsonFormat(program string) int {
	v, ok := jsonFormats.Load(program)
	if !ok {
		return 0
	}
	return v.(int)
}

// program is the Nix program run: its path as exec resolves it, else its
// name.
func (b *Builder) program() string {
	if path, ok := b.nixPath(); ok {
		return path
	}
	return b.nix()
}

// nixPath is the path of the Nix program run, as exec resolves it; ok
// false when there is none.
func (b *Builder) nixPath() (string, bool) {
	path, err := exec.LookPath(b.nix())
	return path, err == nil
}

// nix is the Nix program to run: Nix, else nix from PATH.
func (b *Builder) nix() string {
	if b.Nix == "" {
		return "nix"
	}
	return b.Nix
}
