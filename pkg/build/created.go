package build

import (
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/nixery-action/nixery-action/pkg/image"
)

// CreatedTime is the images' creation time: SOURCE_DATE_EPOCH when it is
// set; in a GitHub workflow without it, the commit time of the commit
// checked out (GITHUB_SHA in GITHUB_WORKSPACE), which is reproducible for
// that commit, as reproducible-build practice recommends; else the Unix
// epoch.
func CreatedTime(getenv func(string) string) (time.Time, error) {
	if strings.TrimSpace(getenv("SOURCE_DATE_EPOCH")) != "" || getenv("GITHUB_ACTIONS") != "true" {
		return image.SourceDateEpoch(getenv)
	}
	if t, ok := commitTime(getenv("GITHUB_WORKSPACE"), getenv("GITHUB_SHA")); ok {
		return t, nil
	}
	return image.SourceDateEpoch(getenv)
}

// commitTime asks git for the committer time of rev (HEAD when empty) in
// dir; ok is false where there is no such commit (no checkout, a shallow
// clone without it, no git).
func commitTime(dir, rev string) (time.Time, bool) {
	if dir == "" {
		return time.Time{}, false
	}
	if rev == "" || strings.HasPrefix(rev, "-") {
		rev = "HEAD"
	}
	// git gets PATH alone: no token or password reaches it. Reading a
	// commit's time is safe in any owner's checkout.
	cmd := exec.Command("git", "-c", "safe.directory=*", "-C", dir, "show", "-s", "--format=%ct", rev+"^{commit}", "--")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "GIT_CONFIG_NOSYSTEM=1", "HOME=/nonexistent"}
	out, err := cmd.Output()
	if err != nil {
		return time.Time{}, false
	}
	t, err := image.ParseSourceDateEpoch(strings.TrimSpace(string(out)))
	return t, err == nil && !t.IsZero()
}
