//go:build integration

package flaketest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// service is the part of a NixOS systemd.services entry the module sets.
type service struct {
	Description   string
	Documentation []string
	WantedBy      []string
	Wants         []string
	After         []string
	Environment   map[string]string
	ServiceConfig map[string]any
}

// moduleHarness evaluates the flake's nixosModules.default with
// nixpkgs' own lib (testdata/nixpkgs-lib.tar.gz: lib/ of
// github:nix-community/nixpkgs.lib at de42d442, nixpkgs 26.11pre, MIT,
// COPYING inside) beside declarations of the few NixOS options the module
// sets, as NixOS declares them, so that the module system checks every
// option type and default. The whole of NixOS is not available offline.
const moduleHarness = `
{ flake, lib, services, nixBin, gitBin }:
let
  stubs = { lib, ... }: {
    options.systemd.services = lib.mkOption {
      type = lib.types.attrsOf (lib.types.submodule { freeformType = lib.types.attrsOf lib.types.anything; });
      default = { };
    };
    options.assertions = lib.mkOption { type = lib.types.listOf lib.types.unspecified; default = [ ]; };
    options.nix.package = lib.mkOption { type = lib.types.package; };
    config.nix.package = { type = "derivation"; name = "nix"; outPath = nixBin; };
    config._module.args.pkgs = {
      stdenv.hostPlatform.system = builtins.currentSystem;
      git = { type = "derivation"; name = "git"; outPath = gitBin; };
    };
  };
  eval = lib.evalModules { modules = [ stubs flake.nixosModules.default { services.nixery = services; } ]; };
  failed = map (a: a.message) (builtins.filter (a: !a.assertion) eval.config.assertions);
  s = eval.config.systemd.services.nixery or { };
in
if failed != [ ] then throw (builtins.concatStringsSep "; " failed)
else {
  inherit (s) description documentation wantedBy wants after environment serviceConfig;
  path = map toString s.path;
}
`

// evalModule returns the systemd service the module makes of services
// (services.nixery's settings, a Nix expression), or Nix's error.
func (f *flake) evalModule(t *testing.T, lib, services string) (service, string, error) {
	t.Helper()
	dir := t.TempDir()
	harness := filepath.Join(dir, "harness.nix")
	assert.NilError(t, os.WriteFile(harness, []byte(moduleHarness), 0o644))
	expr := fmt.Sprintf(`import %s { flake = builtins.getFlake %s; lib = import %s; services = %s; nixBin = %s; gitBin = %s; }`,
		harness, nixString("git+file://"+f.dir), filepath.Join(lib, "lib"), services, nixString("/usr"), nixString("/git"))
	stdout, stderr, err := f.nixErr("eval", "--impure", "--json", "--expr", expr)
	if err != nil {
		return service{}, stderr, err
	}
	var raw struct {
		service
		Path []string
	}
	assert.NilError(t, json.Unmarshal([]byte(stdout), &raw), stdout)
	s := raw.service
	// NixOS puts the service's path into PATH.
	var bins []string
	for _, p := range raw.Path {
		bins = append(bins, p+"/bin")
	}
	if s.Environment == nil {
		s.Environment = map[string]string{}
	}
	s.Environment["PATH"] = strings.Join(bins, ":")
	return s, "", nil
}

// unitFile renders s as NixOS does: a list is a line per value, a boolean
// true or false.
func (s service) unitFile() string {
	var b strings.Builder
	line := func(k string, v any) {
		switch v := v.(type) {
		case []any:
			for _, e := range v {
				fmt.Fprintf(&b, "%s=%v\n", k, e)
			}
		case float64:
			fmt.Fprintf(&b, "%s=%d\n", k, int64(v))
		default:
			fmt.Fprintf(&b, "%s=%v\n", k, v)
		}
	}
	b.WriteString("[Unit]\n")
	line("Description", s.Description)
	line("Documentation", strings.Join(s.Documentation, " "))
	line("Wants", strings.Join(s.Wants, " "))
	line("After", strings.Join(s.After, " "))
	b.WriteString("\n[Service]\n")
	for _, k := range sortedKeys(s.Environment) {
		fmt.Fprintf(&b, "Environment=%q\n", k+"="+s.Environment[k])
	}
	for _, k := range sortedKeys(s.ServiceConfig) {
		line(k, s.ServiceConfig[k])
	}
	b.WriteString("\n[Install]\n")
	line("WantedBy", strings.Join(s.WantedBy, " "))
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// systemdWords is what systemd runs for an ExecStart line: specifiers
// (%S state, %C cache, %d credentials, %% a percent sign) expanded from
// dirs, $$ a dollar sign, words split at blanks outside single quotes.
func systemdWords(t *testing.T, line string, dirs map[byte]string) []string {
	t.Helper()
	var words []string
	var word strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '%':
			i++
			assert.Assert(t, i < len(line), "ExecStart ends in %%: %s", line)
			if line[i] == '%' {
				word.WriteByte('%')
			} else {
				dir, ok := dirs[line[i]]
				assert.Assert(t, ok, "ExecStart uses specifier %%%c: %s", line[i], line)
				word.WriteString(dir)
			}
			inWord = true
		case c == '$':
			assert.Assert(t, i+1 < len(line) && line[i+1] == '$', "ExecStart expands a variable: %s", line)
			i++
			word.WriteByte('$')
			inWord = true
		case c == '\'':
			quoted = !quoted
			inWord = true
		case c == ' ' && !quoted:
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	assert.Assert(t, !quoted, "unbalanced quote in ExecStart: %s", line)
	if inWord {
		words = append(words, word.String())
	}
	return words
}

// testNixOSModule: nixosModules.default makes a service systemd accepts,
// whose command line, run as systemd would run it (its credentials and
// state directory given), is a nixery serve that requires the login.
func testNixOSModule(t *testing.T, f *flake, out string) {
	testenv.Require(t, "systemd-analyze", "tar")
	lib := t.TempDir()
	testenv.Run(t, "tar", "-xzf", filepath.Join(repoRoot(t), "internal", "flaketest", "testdata", "nixpkgs-lib.tar.gz"), "-C", lib)

	addr := testenv.FreePort(t)
	s, stderr, err := f.evalModule(t, lib, `{
		enable = true;
		listen = "`+addr+`";
		htpasswdFile = "/etc/nixery/htpasswd";
		platforms = [ "linux/amd64" ];
		maxImages = 3;
		maxConnections = 64;
		extraArgs = [ "--nixpkgs-refresh" "10m" ];
	}`)
	assert.NilError(t, err, stderr)

	t.Run("systemd accepts the unit", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "nixery.service")
		assert.NilError(t, os.WriteFile(file, []byte(s.unitFile()), 0o644))
		got, err := exec.Command("systemd-analyze", "verify", "--man=no", file).CombinedOutput()
		assert.NilError(t, err, "%s\n%s", got, s.unitFile())
		assert.Equal(t, strings.TrimSpace(string(got)), "", "systemd warns about\n%s", s.unitFile())
		assert.Check(t, is.Contains(s.ServiceConfig["LoadCredential"], "htpasswd:/etc/nixery/htpasswd"))
		assert.Check(t, is.Equal(s.ServiceConfig["DynamicUser"], true))
		assert.Check(t, is.Equal(s.Environment["XDG_CACHE_HOME"], "%C/nixery"))
		assert.Check(t, is.Equal(s.Environment["PATH"], "/usr/bin"), "the service's path is config.nix.package")
		// The same service as deploy/nixery-serve.service: its settings
		// but those naming files and flags are the module's too.
		raw, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "nixery-serve.service"))
		assert.NilError(t, err)
		unit := s.unitFile()
		section := ""
		for _, line := range strings.Split(string(raw), "\n") {
			if strings.HasPrefix(line, "[") {
				section = line
			}
			key, value, ok := strings.Cut(line, "=")
			if section != "[Service]" || !ok || strings.HasPrefix(key, "#") || key == "ExecStart" || key == "LoadCredential" || key == "Environment" {
				continue
			}
			for _, v := range strings.Fields(value) {
				v = strings.NewReplacer("yes", "true").Replace(v)
				assert.Check(t, strings.Contains(unit, "\n"+key+"="+v+"\n") || strings.Contains(unit, "\n"+key+"="+value+"\n"), "%s=%s of the unit file is not the module's", key, value)
			}
		}
	})

	t.Run("its command line serves", func(t *testing.T) {
		root := t.TempDir()
		dirs := map[byte]string{'S': filepath.Join(root, "state"), 'C': filepath.Join(root, "cache"), 'd': filepath.Join(root, "credentials")}
		for _, d := range dirs {
			assert.NilError(t, os.MkdirAll(d, 0o700))
		}
		// systemd copies each credential into the credentials directory.
		hash, err := bcrypt.GenerateFromPassword([]byte("team-s3cret"), bcrypt.MinCost)
		assert.NilError(t, err)
		assert.NilError(t, os.WriteFile(filepath.Join(dirs['d'], "htpasswd"), []byte("team:"+string(hash)+"\n"), 0o400))

		words := systemdWords(t, s.ServiceConfig["ExecStart"].(string), dirs)
		assert.Equal(t, words[0], filepath.Join(out, "bin", "nixery"), "the default package is the flake's")
		assert.DeepEqual(t, words[1:], []string{"serve", "--listen", addr,
			"--storage", filepath.Join(dirs['S'], "nixery"), "--platforms", "linux/amd64", "--max-images", "3",
			"--max-connections", "64", "--htpasswd", filepath.Join(dirs['d'], "htpasswd"), "--nixpkgs-refresh", "10m"})

		cmd := exec.Command(words[0], words[1:]...)
		cmd.Env = []string{"NIX_CONFIG=" + testenv.NixConfig, "HOME=" + root}
		for k, v := range s.Environment {
			if k == "NIX_REMOTE" {
				continue // no daemon here: the store is this process's own
			}
			cmd.Env = append(cmd.Env, k+"="+strings.ReplaceAll(v, "%C", dirs['C']))
		}
		var log strings.Builder
		cmd.Stderr = &log
		assert.NilError(t, cmd.Start())
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

		url := "http://" + addr + "/v2/"
		var resp *http.Response
		for i := 0; ; i++ {
			if resp, err = http.Get(url); err == nil {
				break
			}
			assert.Assert(t, i < 200, "the service did not start: %v\n%s", err, log.String())
			time.Sleep(50 * time.Millisecond)
		}
		resp.Body.Close()
		assert.Equal(t, resp.StatusCode, http.StatusUnauthorized, "the htpasswd credential is not in force")
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.SetBasicAuth("team", "team-s3cret")
		resp, err = http.DefaultClient.Do(req)
		assert.NilError(t, err)
		resp.Body.Close()
		assert.Equal(t, resp.StatusCode, http.StatusOK)
	})

	t.Run("values reach nixery as written", func(t *testing.T) {
		// systemd would read % and $ in them as specifiers and variables.
		s, stderr, err := f.evalModule(t, lib, `{ enable = true; nixpkgs = "github:o/r?dir=a%2Fb"; extraArgs = [ "--timeout" "$x" ]; tokenFile = "/run/keys/n$x%y"; }`)
		assert.NilError(t, err, stderr)
		words := systemdWords(t, s.ServiceConfig["ExecStart"].(string), map[byte]string{'S': "/var/lib", 'd': "/run/credentials"})
		line := strings.Join(words, " ")
		assert.Check(t, is.Contains(line, "--nixpkgs github:o/r?dir=a%2Fb "))
		assert.Check(t, is.Contains(line, " --timeout $x"))
		assert.Check(t, !strings.Contains(s.Environment["PATH"], "/git/bin"), "git on the path for a github: nixpkgs")
		s, stderr, err = f.evalModule(t, lib, `{ enable = true; nixpkgs = "git+https://example.com/nixpkgs"; }`)
		assert.NilError(t, err, stderr)
		assert.Check(t, is.Equal(s.Environment["PATH"], "/usr/bin:/git/bin"), "git on the path for a git+ nixpkgs")
		s, _, err = f.evalModule(t, lib, `{ enable = true; tokenFile = "/run/keys/n$x%y"; }`)
		assert.NilError(t, err)
		// LoadCredential= expands specifiers, not variables.
		assert.Check(t, is.DeepEqual(s.ServiceConfig["LoadCredential"], []any{"token:/run/keys/n$x%%y"}))
	})

	t.Run("bad settings are refused", func(t *testing.T) {
		for settings, want := range map[string]string{
			`{ enable = true; htpasswdFile = "/a"; tokenFile = "/b"; }`: "set htpasswdFile or tokenFile, not both",
			`{ enable = true; publicURL = "https://x"; }`:               "publicURL needs tokenFile",
			`{ enable = true; storage = "/srv/nixery"; }`:               "services.nixery.storage",
			`{ enable = true; htpasswdFile = "htpasswd"; }`:             "services.nixery.htpasswdFile",
			`{ enable = true; platforms = [ ]; }`:                       "services.nixery.platforms",
			`{ enable = true; maxConnections = -1; }`:                   "services.nixery.maxConnections",
		} {
			_, stderr, err := f.evalModule(t, lib, settings)
			assert.Check(t, err != nil, "%s was accepted", settings)
			assert.Check(t, is.Contains(stderr, want), settings)
		}
	})
}
