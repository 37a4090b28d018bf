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

// versionChecks hold, by the path of each Nix program, whether it is new
// enough: asked once per process, when a command first fails.
var versionChecks sync.Map // path → *versionCheck

type versionCheck struct {
	once sync.Once
	err  error
}

// checkVersion refuses a Nix older than 2.8, which knows none of the
// flags every command is given (--extra-experimental-features): one line
// naming its version and where it is, rather than Nix's "unrecognised
// flag". A Nix that cannot say its version is left for its own error to
// report.
func (b *Builder) checkVersion(env []string) error {
	path, err := exec.LookPath(b.nix())
	if err != nil {
		return nil // run says that Nix is missing
	}
	c, _ := versionChecks.LoadOrStore(path, &versionCheck{})
	check := c.(*versionCheck)
	check.once.Do(func() { check.err = askVersion(path, env) })
	return check.err
}

// askVersion runs `nix --version` once. Not under the caller's context:
// its answer is kept for the whole process.
func askVersion(path string, env []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), versionTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "--version")
	cmd.Env = nixEnv(env)
	cmd.WaitDelay = time.Second
	out := &outputBuffer{max: versionOutputMax}
	cmd.Stdout = out
	if err := cmd.Run(); err != nil {
		return nil
	}
	version, major, minor, ok := parseVersion(out.buf.String())
	if !ok || !tooOld(major, minor) {
		return nil
	}
	return fmt.Errorf("Nix %s is too old: nixery needs Nix %d.%d or later (found at %s)", version, minMajor, minMinor, path)
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

// tooOld tells whether Nix major.minor is older than 2.8.
func tooOld(major, minor int) bool {
	return major < minMajor || major == minMajor && minor < minMinor
}
