//go:build integration

package e2e

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// scrubCase is a flake reference whose token Nix quotes in an encoding of
// its own (QTokB/x2 as QTokB%2fx2), the forms of the token that must show
// nowhere, and a mask the action registers for each form Nix may print.
type scrubCase struct {
	name, ref string
	leaks     []string
	masks     []string
}

func scrubCases(server string) []scrubCase {
	host := strings.TrimPrefix(server, "http://")
	return []scrubCase{
		{"query", server + "/missing.tar.gz?access_token=QTokB/x2",
			[]string{"QTokB/x2", "QTokB%2fx2", "QTokB%2Fx2", "QTokB"},
			[]string{"access_token=QTokB/x2", "access_token=QTokB%2fx2", "access_token=QTokB%2Fx2"}},
		{"userinfo", "http://pk-user:a%2fTok9@" + host + "/x.tar.gz",
			[]string{"a/Tok9", "a%2fTok9", "a%2FTok9", "Tok9"},
			[]string{"pk-user:a%2fTok9@", "pk-user:a%2FTok9@", "pk-user:a/Tok9@"}},
		{"userinfo-plus", "http://pk-user:a%2Bb%3DTok8@" + host + "/x.tar.gz",
			[]string{"a+b=Tok8", "a%2Bb%3DTok8", "a%2bb%3dTok8", "Tok8"},
			[]string{"pk-user:a%2Bb%3DTok8@", "pk-user:a+b=Tok8@"}},
	}
}

// Nix quotes a flake reference in its own encoding when it cannot fetch
// it: neither the CLI's output nor the action's log, summary or outputs
// show the token in any encoding, and the action masks the forms Nix
// prints.
func TestFlakeTokenHiddenInAnyEncoding(t *testing.T) {
	testenv.Require(t, "nix")
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)

	for _, c := range scrubCases(srv.URL) {
		t.Run(c.name, func(t *testing.T) {
			noLeak := func(where, text string) {
				t.Helper()
				for _, leak := range c.leaks {
					assert.Check(t, !strings.Contains(text, leak), "%q is in the %s:\n%s", leak, where, text)
				}
			}

			r := run(t, []string{"HOME=" + t.TempDir()}, "build", "--push=false", "--nixpkgs", standIn(), c.ref+"#hello")
			assert.Equal(t, r.code, 1, "%s%s", r.stdout, r.stderr)
			// Nix did quote the URL, and it was scrubbed.
			assert.Check(t, is.Contains(r.stderr, "[nix] error: unable to download"), r.stderr)
			assert.Check(t, is.Contains(r.stderr, "REDACTED"), r.stderr)
			noLeak("CLI's output", r.stdout+r.stderr)

			dir := t.TempDir()
			r = run(t, runnerEnv(dir, "INPUT_PACKAGES="+c.ref+"#hello", "INPUT_NIXPKGS="+standIn(), "INPUT_PUSH=false", "INPUT_SBOM=false"), "action")
			assert.Equal(t, r.code, 1, "%s%s", r.stdout, r.stderr)
			assert.Check(t, is.Contains(r.stdout, "[nix] error: unable to download"), r.stdout)
			var log []string
			for _, line := range strings.Split(r.stdout, "\n") {
				if !strings.HasPrefix(line, "::add-mask::") {
					log = append(log, line)
				}
			}
			noLeak("action's log", strings.Join(log, "\n")+r.stderr)
			for _, mask := range c.masks {
				assert.Check(t, is.Contains(r.stdout, "::add-mask::"+dataEscape.Replace(mask)+"\n"), "no mask of %q:\n%s", mask, r.stdout)
			}
			ownCommands(t, r.stdout, maskedForms(r.stdout)...)
			for _, name := range []string{"summary", "output"} {
				raw, err := os.ReadFile(filepath.Join(dir, name))
				if !os.IsNotExist(err) {
					assert.NilError(t, err)
				}
				noLeak(name, string(raw))
			}
		})
	}
}

// maskedForms are the secrets the masks in log register, unescaped as the
// runner does, for ownCommands.
func maskedForms(log string) []string {
	unescape := strings.NewReplacer("%25", "%", "%0D", "\r", "%0A", "\n")
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if mask, ok := strings.CutPrefix(line, "::add-mask::"); ok {
			out = append(out, unescape.Replace(mask))
		}
	}
	return out
}
