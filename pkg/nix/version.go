package nix

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The oldest Nix this package works with (see the package comment).
const minMajor, minMinor = 2, 8

// versionTimeout bounds `nix --version`, which answers at once.
const versionTimeout = 10 * time.Second

// versionOutputMax bounds what is read of its answer, one short line.
const versionOutputMax = 4 << 10

// versionChecks hold, by the path of each Nix program, what it says of
// its version: asked once per process, in the background when a build
// starts (see askVersionSoon), so that neither a failure's check nor
// path-info's choice of flags waits for it.
var versionChecks sync.Map // path → *versionCheck

type versionCheck struct {
	once         sync.Once
	version      string
	major, minor int
	known        bool // the answer was read
}

// versionOf is what the Nix program at path says of its version.
func versionOf(path string, env []string) *versionCheck {
	c, _ := versionChecks.LoadOrStore(path, &versionCheck{})
	check := c.(*versionCheck)
	check.once.Do(func() { check.version, check.major, check.minor, check.known = askVersion(path, env) })
	return check
}

// knowVersion records out, what `nix --version` printed, as its answer
// for the Nix program run, unless it was asked already.
func (b *Builder) knowVersion(out string) {
	path, ok := b.nixPath()
	if !ok {
		return
	}
	c, _ := versionChecks.LoadOrStore(path, &versionCheck{})
	check := c.(*versionCheck)
	check.once.Do(func() { check.version, check.major, check.minor, check.known = parseVersion(out) })
}

// askVersionSoon starts asking Nix its version, if nothing has yet: one
// short process beside the first command, rather than one after a
// command that failed or refused a flag.
func (b *Builder) askVersionSoon() {
	if path, ok := b.nixPath(); ok {
		go versionOf(path, b.environ())
	}
}

// before tells whether the version is known and older than major.minor.
func (c *versionCheck) before(major, minor int) bool {
	return c.known && (c.major < major || c.major == major && c.minor < minor)
}

// checkVersion refuses a Nix older than 2.8, which knows none of the
// flags every command is given (--extra-experimental-features): one line
// naming its version and where it is, rather than Nix's "unrecognised
// flag". A Nix that cannot say its version is left for its own error to
// report.
func (b *Builder) checkVersion(env []string) error {
	path, ok := b.nixPath()
	if !ok {
		return nil // run says that Nix is missing
	}
	if v := versionOf(path, env); v.before(minMajor, minMinor) {
		return fmt.Errorf("Nix %s is too old: nixery needs Nix %d.%d or later (found at %s)", v.version, minMajor, minMinor, path)
	}
	return nil
}

// askVersion runs `nix --version`. Not under the caller's context: its
// answer is kept for the whole process.
func askVersion(path string, env []string) (version string, major, minor int, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), versionTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "--version")
	cmd.Env = nixEnv(env)
	cmd.WaitDelay = time.Second
	out := &outputBuffer{max: versionOutputMax}
	cmd.Stdout = out
	if err := cmd.Run(); err != nil {
		return "", 0, 0, false
	}
	return parseVersion(out.buf.String())
}

// nixVersion is the version `nix --version` ends its first line with:
// "nix (Nix) 2.3.7", "nix (Lix, like Nix) 2.91.1", "nix (Determinate
// Nix 3.8.2) 2.30.1", "nix (Nix) 2.18.0pre20230920_dirty".
var nixVersion = regexp.MustCompile(`^([0-9]+)\.([0-9]+)\S*$`)

// parseVersion reads that version, and its major and minor numbers.
func parseVersion(out string) (version string, major, minor int, ok bool) {
	line, _, _ := strings.Cut(out, "\n")
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return "", 0, 0, false
	}
	m := nixVersion.FindStringSubmatch(fields[len(fields)-1])
	if m == nil {
		return "", 0, 0, false
	}
	major, err1 := strconv.Atoi(m[1])
	minor, err2 := strconv.Atoi(m[2])
	return m[0], major, minor, err1 == nil && err2 == nil
}
