//go:build integration

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// A Docker credential helper is a program of the user's: it gets the
// environment it needs (HOME, PATH, its cloud's settings) but none of the
// secrets nixery holds, which it might log or pass on.
func TestCredentialHelperGetsNoSecrets(t *testing.T) {
	testenv.Require(t, "docker-registry")
	host := testenv.StartRegistry(t)
	bin, cfg := t.TempDir(), t.TempDir()
	dump := filepath.Join(t.TempDir(), "env")
	script := "#!/bin/sh\nenv > '" + dump + "'\necho '{\"Username\":\"u\",\"Secret\":\"p\"}'\n"
	assert.NilError(t, os.WriteFile(filepath.Join(bin, "docker-credential-dump"), []byte(script), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{"credHelpers":{"`+host+`":"dump"}}`), 0o644))

	secrets := map[string]string{"GITHUB_TOKEN": "ghs_tokenvalue1", "INPUT_PASSWORD": "inputpassword2",
		"INPUT_NIXPKGS": "git+https://oauth2:flaketoken3@example.com/nixpkgs.git"}
	env := []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "DOCKER_CONFIG=" + cfg, "AWS_PROFILE=kept"}
	for k, v := range secrets {
		env = append(env, k+"="+v)
	}
	// (NIXERY_PASSWORD goes with --username, which logs in without a
	// helper; it is held back from children as these two are.)
	r := run(t, env, "merge", "--image", host+"/e2e/helper", "--tags", "x", "sha256:"+strings.Repeat("1", 64))
	assert.Assert(t, r.code != 0, r.stderr)
	seen, err := os.ReadFile(dump)
	assert.NilError(t, err, "the helper was not run: %s", r.stderr)
	for k, v := range secrets {
		assert.Assert(t, !strings.Contains(string(seen), v), "the credential helper got %s", k)
	}
	assert.Assert(t, strings.Contains(string(seen), "AWS_PROFILE=kept"), string(seen))
	assert.Assert(t, strings.Contains(string(seen), "DOCKER_CONFIG="+cfg), string(seen))
}

// helperBin puts docker-credential-NAME scripts on a new PATH directory
// and returns the environment naming them, per registry, in a docker
// config.
func helperBin(t *testing.T, helpers map[string]string, scripts map[string]string) []string {
	t.Helper()
	bin, cfg := t.TempDir(), t.TempDir()
	for name, body := range scripts {
		assert.NilError(t, os.WriteFile(filepath.Join(bin, "docker-credential-"+name), []byte("#!/bin/sh\n"+body+"\n"), 0o755))
	}
	var entries []string
	for host, name := range helpers {
		entries = append(entries, `"`+host+`":"`+name+`"`)
	}
	config := `{"credHelpers":{` + strings.Join(entries, ",") + `}}`
	assert.NilError(t, os.WriteFile(filepath.Join(cfg, "config.json"), []byte(config), 0o644))
	return []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "DOCKER_CONFIG=" + cfg}
}

// A credential helper logs in to a registry with htpasswd; it does not
// see NIX_CONFIG (access-tokens), which Nix still gets: Nix warns of the
// setting it does not know.
func TestCredentialHelperLogsInWithoutNixConfig(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "htpasswd", "skopeo")
	host, user, password := testenv.StartAuthRegistry(t)
	dump := filepath.Join(t.TempDir(), "env")
	env := helperBin(t, map[string]string{host: "good"}, map[string]string{
		"good": "env > '" + dump + "'\necho '{\"Username\":\"" + user + "\",\"Secret\":\"" + password + "\"}'",
	})
	nixConfig := testenv.NixConfig + "access-tokens = example.com=nixcfgtoken4\nnixery-e2e-marker = 1\n"
	env = append(env, "NIX_CONFIG="+nixConfig)

	r := run(t, env, "build", "--nixpkgs", standIn(), "--image", host+"/e2e/helperlogin", "--tags", "v1", "--platforms", "linux/arm64", "hello")
	assert.Equal(t, r.code, 0, r.stderr)
	assert.Check(t, strings.Contains(r.stderr, "unknown setting 'nixery-e2e-marker'"), "Nix did not get NIX_CONFIG: %s", r.stderr)
	out, err := runOutput("skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", user+":"+password, "docker://"+host+"/e2e/helperlogin:v1")
	assert.NilError(t, err, out)
	assert.Check(t, strings.Contains(out, `"architecture":"arm64"`), out)

	seen, err := os.ReadFile(dump)
	assert.NilError(t, err, "the helper was not run: %s", r.stderr)
	assert.Check(t, !strings.Contains(string(seen), "nixcfgtoken4"), "the credential helper got NIX_CONFIG")
	assert.Check(t, !strings.Contains(string(seen), "NIX_CONFIG="), "the credential helper got NIX_CONFIG")
}

// A second registry's helper fails, printing a workflow command and a
// secret: neither reaches nixery's output, which names the helper.
func TestFailingCredentialHelperStaysQuiet(t *testing.T) {
	testenv.Require(t, "docker-registry", "htpasswd")
	host, user, password := testenv.StartAuthRegistry(t)
	other, _, _ := testenv.StartAuthRegistry(t)
	env := helperBin(t, map[string]string{host: "good", other: "bad"}, map[string]string{
		"good": "echo '{\"Username\":\"" + user + "\",\"Secret\":\"" + password + "\"}'",
		"bad":  "echo '::notice::helper says token=HelperLeak55' >&2\necho 'token=HelperLeak55'\nexit 1",
	})
	r := run(t, env, "build", "--nixpkgs", standIn(), "--image", host+"/e2e/quiet", "--tags", "v1,"+other+"/e2e/quiet:v1", "hello")
	assert.Assert(t, r.code != 0, r.stderr)
	assert.Check(t, strings.Contains(r.stderr, "the credential helper docker-credential-bad failed (exit status 1"), r.stderr)
	for _, s := range []string{r.stdout, r.stderr} {
		assert.Check(t, !strings.Contains(s, "HelperLeak55"), s)
		assert.Check(t, !strings.Contains(s, "::notice::"), s)
	}
}

// --username's login is the --image registry's: another registry's
// refusal says to log in to it with docker login.
func TestLoginHintForAnotherRegistry(t *testing.T) {
	testenv.Require(t, "docker-registry", "htpasswd")
	host, user, password := testenv.StartAuthRegistry(t)
	other, _, _ := testenv.StartAuthRegistry(t)
	r := runStdin(t, password, []string{"DOCKER_CONFIG=" + t.TempDir()}, "build", "--nixpkgs", standIn(),
		"--image", host+"/t/sc", "--username", user, "--password-stdin", "--tags", "v1,"+other+"/evil/x:v1", "hello")
	assert.Assert(t, r.code != 0, r.stderr)
	assert.Check(t, strings.Contains(r.stderr, "--image registry only: run docker login "+other), r.stderr)
	assert.Check(t, !strings.Contains(r.stderr, "pass --username"), r.stderr)
}

// A credential helper that hangs stops with nixery: on SIGINT nixery
// exits promptly and leaves no helper (nor the helper's child) running.
func TestCredentialHelperStopsWithNixery(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry")
	host := testenv.StartRegistry(t)
	pids := filepath.Join(t.TempDir(), "pids")
	env := helperBin(t, map[string]string{host: "slow"}, map[string]string{
		"slow": "echo $$ >> '" + pids + "'\nsleep 120 &\necho $! >> '" + pids + "'\nwait",
	})
	cmd := exec.Command(nixery, "build", "--nixpkgs", standIn(), "--image", host+"/e2e/slowhelper", "--tags", "v1", "hello")
	cmd.Env = append(append(os.Environ(), "NIX_CONFIG="+testenv.NixConfig), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	assert.NilError(t, cmd.Start())
	deadline := time.Now().Add(30 * time.Second)
	for started := false; !started; time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(pids)
		started = len(strings.Fields(string(b))) >= 2
		assert.Assert(t, time.Now().Before(deadline), "the helper never ran: %s", stderr.String())
	}
	assert.NilError(t, cmd.Process.Signal(syscall.SIGINT))
	sent := time.Now()
	_ = cmd.Wait()
	assert.Check(t, time.Since(sent) < 10*time.Second, "stopping took %s", time.Since(sent))
	assert.Check(t, strings.Contains(stderr.String(), "interrupted by SIGINT"), stderr.String())

	time.Sleep(300 * time.Millisecond) // a helper started late would be in the file by now
	b, err := os.ReadFile(pids)
	assert.NilError(t, err)
	for _, pid := range strings.Fields(string(b)) {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err == nil && !strings.Contains(string(stat), ") Z ") {
			n, _ := strconv.Atoi(pid)
			_ = syscall.Kill(n, syscall.SIGKILL) // the test's own helper
			t.Errorf("helper process %s is still running: %s", pid, stat)
		}
	}
}
