package registry

import (
	"context"
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

const helperHost = "127.0.0.1:5999"

// useHelper puts docker-credential-fake, a shell script with body, on
// PATH and names it in a docker config for helperHost; it returns a
// directory the script may write to ($OUT in body).
func useHelper(t *testing.T, body string) string {
	t.Helper()
	return useHelperConfig(t, `{"credHelpers":{"`+helperHost+`":"fake"}}`, body)
}

// useHelperConfig is useHelper with the docker config given. Answers
// kept from another test's helper are forgotten.
func useHelperConfig(t *testing.T, config, body string) string {
	t.Helper()
	forgetHelperAnswers()
	t.Cleanup(forgetHelperAnswers)
	bin, cfg, out := t.TempDir(), t.TempDir(), t.TempDir()
	script := "#!/bin/sh\nOUT='" + out + "'\n" + body + "\n"
	assert.NilError(t, os.WriteFile(filepath.Join(bin, "docker-credential-fake"), []byte(script), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(cfg, "config.json"), []byte(config), 0o644))
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	t.Setenv("DOCKER_CONFIG", cfg)
	t.Setenv("HOME", t.TempDir())
	return out
}

// captureStderr runs f with os.Stderr going to a file and returns what
// was written there.
func captureStderr(t *testing.T, f func()) string {
	t.Helper()
	file, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	assert.NilError(t, err)
	saved := os.Stderr
	os.Stderr = file
	defer func() { os.Stderr = saved }()
	f()
	_, err = file.Seek(0, io.SeekStart)
	assert.NilError(t, err)
	b, err := io.ReadAll(file)
	assert.NilError(t, err)
	return string(b)
}

func forgetHelperAnswers() { DockerKeychain.(*dockerKeychain).forget() }

func helperRepo(t *testing.T) name.Repository {
	repo, err := name.NewRepository(helperHost+"/o/n", name.Insecure)
	assert.NilError(t, err)
	return repo
}

func TestCredentialHelperLogin(t *testing.T) {
	out := useHelper(t, `cat > "$OUT/stdin"; echo '{"ServerURL":"x","Username":"helperuser","Secret":"HelperSecret42"}'`)
	l, err := Credentials{}.Login(context.Background(), helperRepo(t), true)
	assert.NilError(t, err)
	cfg, err := l.Authenticator().Authorization()
	assert.NilError(t, err)
	assert.Check(t, is.Equal(cfg.Username, "helperuser"))
	assert.Check(t, is.Equal(cfg.Password, "HelperSecret42"))
	assert.Check(t, is.Equal(l.source, "the docker config"))
	stdin, err := os.ReadFile(filepath.Join(out, "stdin"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(stdin), helperHost), "the helper is asked for the registry")

	// The Authorization header a registry may echo is hidden too.
	basic := base64.StdEncoding.EncodeToString([]byte("helperuser:HelperSecret42"))
	assert.Check(t, is.Error(l.Redact(errWithText("got Basic "+basic)), "got Basic ***"))
}

// The base64 of --username and --password, as sent, is a secret.
func TestFlagLoginHidesBasicAuth(t *testing.T) {
	repo := helperRepo(t)
	l, err := Credentials{Username: "bob", Password: "CliPassFlag77", Keychain: noCreds}.Login(context.Background(), repo, true)
	assert.NilError(t, err)
	echoed := errWithText("bad request: Authorization: Basic Ym9iOkNsaVBhc3NGbGFnNzc=")
	assert.Check(t, is.Error(l.Redact(echoed), "bad request: Authorization: Basic ***"))
}

func TestCredentialHelperNotFoundIsAnonymous(t *testing.T) {
	useHelper(t, `echo "credentials not found in native keychain"; exit 1`)
	l, err := Credentials{}.Login(context.Background(), helperRepo(t), true)
	assert.NilError(t, err)
	assert.Check(t, l.Authenticator() == authn.Anonymous)
	assert.Check(t, is.Equal(l.source, ""))
}

// A failing helper's output reaches neither the error nor stderr: it
// may hold a secret, and a runner acts on workflow commands in it.
func TestCredentialHelperOutputNeverShown(t *testing.T) {
	useHelper(t, `echo '::notice::helper says token=HelperLeak55' >&2; echo 'out token=HelperLeak55'; exit 1`)
	var err error
	stderr := captureStderr(t, func() {
		_, err = Credentials{}.Login(context.Background(), helperRepo(t), true)
	})
	assert.Check(t, is.Equal(stderr, ""))
	assert.ErrorContains(t, err, "the credential helper docker-credential-fake failed (exit status 1")
	assert.Check(t, !strings.Contains(err.Error(), "HelperLeak55"), err.Error())
	assert.Check(t, !strings.Contains(err.Error(), "::"), err.Error())
}

// startedChild is the pid a helper script wrote to $OUT/pid, waited for.
func startedChild(t *testing.T, out string) int {
	t.Helper()
	for range 200 {
		b, err := os.ReadFile(filepath.Join(out, "pid"))
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil {
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the helper did not start its child")
	return 0
}

// assertGone fails unless pid ends (or is a zombie) within a few seconds.
func assertGone(t *testing.T, pid int) {
	t.Helper()
	for range 300 {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	t.Errorf("the helper's child %d is still running", pid)
}

const hangingHelper = `sleep 120 & echo $! > "$OUT/pid"; wait`

func TestCredentialHelperTimesOut(t *testing.T) {
	out := useHelper(t, hangingHelper)
	saved := HelperTimeout
	HelperTimeout = 300 * time.Millisecond
	defer func() { HelperTimeout = saved }()

	start := time.Now()
	_, err := Credentials{}.Login(context.Background(), helperRepo(t), true)
	assert.ErrorContains(t, err, "the credential helper docker-credential-fake did not answer within 300ms")
	assert.Check(t, time.Since(start) < 5*time.Second, "took %s", time.Since(start))
	assertGone(t, startedChild(t, out))
}

func TestCredentialHelperStopsWithContext(t *testing.T) {
	out := useHelper(t, hangingHelper)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Credentials{}.Login(ctx, helperRepo(t), true)
		done <- err
	}()
	pid := startedChild(t, out)
	cancel()
	select {
	case err := <-done:
		assert.ErrorContains(t, err, "the credential helper docker-credential-fake was stopped: context canceled")
	case <-time.After(5 * time.Second):
		t.Fatal("Login did not return after its context ended")
	}
	assertGone(t, pid)
}

// Logins in the config's auths still work, and run no helper.
func TestDockerConfigAuths(t *testing.T) {
	cfg := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("alice:AuthsSecret9"))
	assert.NilError(t, os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{"auths":{"`+helperHost+`":{"auth":"`+auth+`"}}}`), 0o644))
	t.Setenv("DOCKER_CONFIG", cfg)
	t.Setenv("HOME", t.TempDir())
	l, err := Credentials{}.Login(context.Background(), helperRepo(t), true)
	assert.NilError(t, err)
	got, err := l.Authenticator().Authorization()
	assert.NilError(t, err)
	assert.Check(t, is.Equal(got.Username, "alice"))
	assert.Check(t, is.Equal(got.Password, "AuthsSecret9"))
	assert.Check(t, is.Error(l.Redact(errWithText("echo "+auth)), "echo ***"))
}

// loggingHelper logs each server it is asked for to $OUT/calls and
// answers as `docker login` leaves a store: a login for helperHost, the
// registry, and none for anything else.
const loggingHelper = `read server; echo "$server" >> "$OUT/calls"
if [ "$server" = "` + helperHost + `" ]; then echo '{"ServerURL":"x","Username":"storeuser","Secret":"StoreSecret3"}'; else echo "credentials not found in native keychain"; exit 1; fi`

// helperCalls are the servers the logging helper was asked for.
func helperCalls(t *testing.T, out string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, "calls"))
	if os.IsNotExist(err) {
		return nil
	}
	assert.NilError(t, err)
	return strings.Fields(string(b))
}

// A credsStore holds logins by registry, as docker login stores them: a
// lookup runs it once, for the registry.
func TestCredsStoreRunsOncePerLookup(t *testing.T) {
	out := useHelperConfig(t, `{"credsStore":"fake"}`, loggingHelper)
	l, err := Credentials{}.Login(context.Background(), helperRepo(t), true)
	assert.NilError(t, err)
	cfg, err := l.Authenticator().Authorization()
	assert.NilError(t, err)
	assert.Check(t, is.Equal(cfg.Username, "storeuser"))
	assert.Check(t, is.DeepEqual(helperCalls(t, out), []string{helperHost}))

	// A registry's own lookup asks once too (the answer kept forgotten).
	forgetHelperAnswers()
	reg, err := name.NewRegistry(helperHost, name.Insecure)
	assert.NilError(t, err)
	_, err = DockerKeychain.Resolve(reg)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(helperCalls(t, out), []string{helperHost, helperHost}))
}

// A credential helper named for the repository itself is still asked
// first, and the credsStore only when it has no login.
func TestCredHelperForRepository(t *testing.T) {
	repo := helperRepo(t).String()
	out := useHelperConfig(t, `{"credsStore":"fake","credHelpers":{"`+repo+`":"fake"}}`, loggingHelper)
	l, err := Credentials{}.Login(context.Background(), helperRepo(t), true)
	assert.NilError(t, err)
	cfg, err := l.Authenticator().Authorization()
	assert.NilError(t, err)
	assert.Check(t, is.Equal(cfg.Username, "storeuser"))
	assert.Check(t, is.DeepEqual(helperCalls(t, out), []string{repo, helperHost}))
}

// A helper's answer is kept for HelperAnswerKept: a build's several
// logins to one registry run the helper once, and one after that time
// runs it again. A failure is not kept.
func TestHelperAnswerKept(t *testing.T) {
	out := useHelperConfig(t, `{"credsStore":"fake"}`, loggingHelper)
	login := func() string {
		t.Helper()
		l, err := Credentials{}.Login(context.Background(), helperRepo(t), true)
		assert.NilError(t, err)
		cfg, err := l.Authenticator().Authorization()
		assert.NilError(t, err)
		return cfg.Username
	}
	assert.Check(t, is.Equal(login(), "storeuser"))
	assert.Check(t, is.Equal(login(), "storeuser"))
	assert.Check(t, is.DeepEqual(helperCalls(t, out), []string{helperHost}))

	saved := HelperAnswerKept
	HelperAnswerKept = 50 * time.Millisecond
	defer func() { HelperAnswerKept = saved }()
	time.Sleep(100 * time.Millisecond)
	assert.Check(t, is.Equal(login(), "storeuser"))
	assert.Check(t, is.DeepEqual(helperCalls(t, out), []string{helperHost, helperHost}))
}

func TestHelperFailureNotKept(t *testing.T) {
	out := useHelper(t, `echo x >> "$OUT/calls"; exit 1`)
	for range 2 {
		_, err := Credentials{}.Login(context.Background(), helperRepo(t), true)
		assert.ErrorContains(t, err, "the credential helper docker-credential-fake failed")
	}
	assert.Check(t, is.DeepEqual(helperCalls(t, out), []string{"x", "x"}))
}
