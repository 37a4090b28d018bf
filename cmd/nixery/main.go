// Command nixery turns Nix packages into container images: it plans the
// layers of a closure, packs them into reproducible tarballs and builds and
// pushes multi-arch images. Under GitHub Actions it reads the action's inputs.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"syscall"

	"github.com/nixery-action/nixery-action/pkg/suggest"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// command is one subcommand: its flags are registered by setup, and run
// receives the arguments left after flag parsing.
type command struct {
	name    string
	summary string
	usage   string // the arguments after the command name
	help    string // more about the arguments, printed before the flags
	setup   func(fs *flag.FlagSet) func(args []string) error
}

// commands is nixery's command tree, built here and only here.
var commands = byName(
	buildCommand(),
	mergeCommand(),
	actionCommand(),
	layersCommand(),
	packCommand(),
	popcountCommand(),
	serveCommand(),
)

func byName(cs ...*command) map[string]*command {
	m := map[string]*command{}
	for _, c := range cs {
		m[c.name] = c
	}
	return m
}

// usageError marks errors caused by how the command was called; they are
// followed by a hint to use --help.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
}

func main() {
	holdSecrets()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "version" {
		fmt.Fprintln(stdout, "nixery", version)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "nixery: unknown command %q (run nixery --help for the list)\n", args[0])
		return 2
	}
	fs := flag.NewFlagSet("nixery "+c.name, flag.ContinueOnError)
	// The flag package prints the usage on every error: silenced here, so
	// --help prints it once, to stdout, and a bad flag gives one line.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	runCmd := c.setup(fs)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printCommandUsage(stdout, c, fs)
			return 0
		}
		fmt.Fprintf(stderr, "nixery %s: %s\n", c.name, flagError(err, fs, c.name))
		return 2
	}
	err := withHints(runCmd(fs.Args()), func(name string) bool { return fs.Lookup(name) != nil }, false)
	if sig := interrupted(); err != nil && sig != 0 {
		// What the command said about being cancelled is noise here. A
		// signal that came after the work was done changes nothing.
		fmt.Fprintf(stderr, "nixery %s: interrupted by %s\n", c.name, signalName(sig))
		return 128 + int(sig)
	}
	if err != nil {
		fmt.Fprintf(stderr, "nixery %s: %v\n", c.name, err)
		var ue usageError
		if errors.As(err, &ue) {
			// The action's user sets inputs: its --help is no help.
			if c.name != "action" {
				fmt.Fprintf(stderr, "Run 'nixery %s --help' for usage.\n", c.name)
			}
			return 2
		}
		return 1
	}
	return 0
}

// printCommandUsage prints a command's usage and flags.
func printCommandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: nixery %s %s\n\n%s\n", c.name, c.usage, c.summary)
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(c.help, "\n"))
	}
	fmt.Fprintf(w, "\nFlags:\n")
	printFlags(w, fs)
}

// printFlags lists the flags as flag.PrintDefaults does, but written
// --name as the rest of the help and the README write them.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if len(f.Name) == 1 {
			line = "  -" + f.Name // -L, as Nix writes it
		}
		if arg != "" {
			line += " " + arg
		}
		line += "\n    \t" + strings.ReplaceAll(usage, "\n", "\n    \t")
		if !zeroDefault(f.DefValue) {
			if arg == "string" {
				line += fmt.Sprintf(" (default %q)", f.DefValue)
			} else {
				line += fmt.Sprintf(" (default %v)", f.DefValue)
			}
		}
		fmt.Fprintln(w, line)
	})
}

// zeroDefault reports whether a flag's default is its type's zero value,
// which the help leaves out.
func zeroDefault(v string) bool {
	switch v {
	case "", "false", "0", "0s":
		return true
	}
	return false
}

// parseError is the flag package's error for a value that does not
// parse, which names neither what would do nor the range.
var parseError = regexp.MustCompile(`^invalid value (".*") for flag -(\S+): parse error$`)

// flagError makes the flag package's parse error one line: an unknown
// flag is named with the closest flags of the command.
func flagError(err error, fs *flag.FlagSet, cmd string) string {
	msg := err.Error()
	if m := parseError.FindStringSubmatch(msg); m != nil {
		if fl := fs.Lookup(m[2]); fl != nil {
			kind, what := takes(fl)
			return fmt.Sprintf("--%s takes %s, not %s: %s", fl.Name, kind, m[1], what)
		}
	}
	name, ok := strings.CutPrefix(msg, "flag provided but not defined: ")
	if !ok {
		// "invalid value ... for flag -x: ...", "flag needs an argument: -x"
		return strings.ReplaceAll(msg, " -", " --")
	}
	name = strings.TrimLeft(name, "-")
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	close := suggest.Closest(name, names, 2)
	if len(close) == 0 {
		return fmt.Sprintf("unknown flag --%s (run 'nixery %s --help' for the flags)", name, cmd)
	}
	for i := range close {
		close[i] = "--" + close[i]
	}
	return fmt.Sprintf("unknown flag --%s%s", name, suggest.Hint(close))
}

// signalName is the conventional name of a signal: SIGINT, SIGTERM.
func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGPIPE:
		return "SIGPIPE (its output pipe was closed)"
	}
	return sig.String()
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, "nixery %s: container images from Nix packages\n\nUsage: nixery COMMAND [flags] [args]\n\nCommands:\n", version)
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'nixery COMMAND --help' for a command's flags; 'nixery --version' for the version.")
}
