//go:build integration

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/bcrypt"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// served is a running `nixery serve` and the lines it logged.
type served struct {
	host string
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  []string
	done chan error
}

// startServe runs nixery serve on a free loopback port over storage, and
// stops it (SIGTERM) when the test ends.
func startServe(t testing.TB, storage string, args ...string) *served {
	t.Helper()
	return startServeEnv(t, nil, storage, args...)
}

// startServeEnv is startServe with more environment variables.
func startServeEnv(t testing.TB, env []string, storage string, args ...string) *served {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	host := ln.Addr().String()
	ln.Close()
	s := &served{host: host, done: make(chan error, 1)}
	args = slices.Clone(args)
	for i := range args {
		args[i] = strings.ReplaceAll(args[i], "{host}", host) // the server's own address
	}
	s.cmd = exec.Command(nixery, append([]string{"serve", "--listen", host, "--nixpkgs", standIn(), "--storage", storage}, args...)...)
	s.cmd.Env = append(append(os.Environ(), "NIX_CONFIG="+testenv.NixConfig), env...)
	stderr, err := s.cmd.StderrPipe()
	assert.NilError(t, err)
	assert.NilError(t, s.cmd.Start())
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.mu.Lock()
			s.log = append(s.log, sc.Text())
			s.mu.Unlock()
		}
		s.done <- s.cmd.Wait()
	}()
	t.Cleanup(func() { s.stop(t) })
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + host + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		assert.Assert(t, i < 100, "nixery serve did not start: %v", s.lines())
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

// inspect is skopeo's raw manifest of ref (NAME:TAG) on the server, and
// skopeo's output and error when it fails.
func (s *served) inspect(ref string) (string, error) {
	out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+s.host+"/"+ref).CombinedOutput()
	return string(out), err
}

func (s *served) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// built waits for the server's "built" line of image and returns the
// layers it says were packed and reused: the log is read as it comes, so
// the line may follow the pull by a moment.
func (s *served) built(t *testing.T, image string) (packed, reused int) {
	t.Helper()
	for i := 0; ; i++ {
		for _, l := range s.lines() {
			if strings.Contains(l, `"msg":"built","image":"`+image+`"`) {
				var b struct{ Packed, Reused int }
				assert.NilError(t, json.Unmarshal([]byte(l), &b))
				return b.Packed, b.Reused
			}
		}
		assert.Assert(t, i < 100, "no built line for %s in the log: %v", image, s.lines())
		time.Sleep(50 * time.Millisecond)
	}
}

// builds counts the builds the server logged.
func (s *served) builds() int {
	n := 0
	for _, l := range s.lines() {
		if strings.Contains(l, `"msg":"build"`) {
			n++
		}
	}
	return n
}

// stop sends SIGTERM and waits for a clean exit.
func (s *served) stop(t testing.TB) {
	if s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		t.Errorf("nixery serve did not stop on SIGTERM")
	}
}

// TestServe pulls images from `nixery serve` with clients we did not
// write: a name is built on its first pull into a two-platform index
// (podman runs it), arm64 gives the arm64 image alone, concurrent pulls
// of one name wait for one build, an unknown package is an error docker
// and podman print, pushes are refused, blobs are read by range, and a
// restart serves what was built without building again.
func TestServe(t *testing.T) {
	testenv.Require(t, "nix", "skopeo", "podman", "runc")
	storage := t.TempDir()
	s := startServe(t, storage)

	raw, err := s.inspect("hello:latest")
	assert.NilError(t, err, raw)
	var idx v1.IndexManifest
	assert.NilError(t, json.Unmarshal([]byte(raw), &idx))
	var archs []string
	for _, m := range idx.Manifests {
		archs = append(archs, m.Platform.Architecture)
	}
	assert.DeepEqual(t, archs, []string{"amd64", "arm64"})
	assert.Equal(t, s.builds(), 1)
	assert.Equal(t, strings.TrimSpace(podmanRun(t, s.host+"/shell/hello", "hello")), "Hello, world!")
	assert.Equal(t, strings.TrimSpace(podmanRun(t, s.host+"/hello/jq", "jq", "-n", "1+1")), "2")

	raw, err = s.inspect("arm64/hello:latest")
	assert.NilError(t, err, raw)
	var m v1.Manifest
	assert.NilError(t, json.Unmarshal([]byte(raw), &m))
	assert.Equal(t, m.MediaType, types.OCIManifestSchema1)
	cfg, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--config", "docker://"+s.host+"/arm64/hello:latest").Output()
	assert.NilError(t, err)
	var c v1.ConfigFile
	assert.NilError(t, json.Unmarshal(cfg, &c))
	assert.Equal(t, c.Architecture, "arm64")

	// Ten pulls of a new name at once: one build, one digest.
	before := s.builds()
	var wg sync.WaitGroup
	errs := make([]error, 10)
	indexes := make([]string, 10)
	for i := range errs {
		wg.Go(func() { indexes[i], errs[i] = s.inspect("busybox/hello:latest") })
	}
	wg.Wait()
	for i, err := range errs {
		assert.NilError(t, err, indexes[i])
		assert.Equal(t, indexes[i], indexes[0])
	}
	assert.Equal(t, s.builds(), before+1)
	// Its layers of hello's closure came from the storage, not packed again.
	packed, reused := s.built(t, "busybox/hello")
	assert.Check(t, reused >= 4 && packed > 0, "packed %d, reused %d", packed, reused)

	out, err := s.inspect("helo:latest")
	assert.Assert(t, err != nil)
	assert.Check(t, is.Contains(out, "not found in nixpkgs"))
	assert.Check(t, is.Contains(out, "helo (did you mean hello?)"))
	// podman prints it too.
	pull := exec.Command("podman", append(podmanBase(t), "pull", "--tls-verify=false", s.host+"/helo")...)
	out2, err := pull.CombinedOutput()
	assert.Assert(t, err != nil, "%s", out2)
	assert.Check(t, is.Contains(string(out2), "helo (did you mean hello?)"))
	out, err = s.inspect("hello:v2")
	assert.Assert(t, err != nil)
	assert.Check(t, is.Contains(out, "serves only the tag latest"))

	// Pushes are refused; blobs are read by range.
	resp, err := http.Post("http://"+s.host+"/v2/hello/blobs/uploads/", "application/octet-stream", nil)
	assert.NilError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusMethodNotAllowed)
	assert.Check(t, is.Contains(string(body), "UNSUPPORTED"))
	req, err := http.NewRequest(http.MethodGet, "http://"+s.host+"/v2/hello/blobs/"+m.Layers[0].Digest.String(), nil)
	assert.NilError(t, err)
	req.Header.Set("Range", "bytes=0-9")
	resp, err = http.DefaultClient.Do(req)
	assert.NilError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusPartialContent)
	assert.Equal(t, len(body), 10)

	// A restart serves from the storage.
	s.stop(t)
	_, err = os.Stat(filepath.Join(storage, "index.json"))
	assert.NilError(t, err)
	s = startServe(t, storage)
	raw, err = s.inspect("hello:latest")
	assert.NilError(t, err, raw)
	assert.Check(t, is.Contains(raw, idx.Manifests[0].Digest.String()))
	assert.Equal(t, s.builds(), 0)
}

// TestServeAuth: with --htpasswd, skopeo needs the login; /metrics
// counts the build.
func TestServeAuth(t *testing.T) {
	testenv.Require(t, "nix", "skopeo")
	hash, err := bcrypt.GenerateFromPassword([]byte("team-s3cret"), bcrypt.MinCost)
	assert.NilError(t, err)
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	assert.NilError(t, os.WriteFile(htpasswd, []byte("team:"+string(hash)+"\n"), 0o600))
	s := startServe(t, t.TempDir(), "--htpasswd", htpasswd)
	ref := "docker://" + s.host + "/hello:latest"
	out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--raw", ref).CombinedOutput()
	assert.Assert(t, err != nil, "pulled without a login: %s", out)
	assert.Check(t, is.Contains(string(out), "log in to this registry first"), string(out))
	// A wrong password is told from none, and the answer echoes nothing.
	out, err = exec.Command("skopeo", "inspect", "--tls-verify=false", "--raw", "--creds", "team:guessed-pw", ref).CombinedOutput()
	assert.Assert(t, err != nil, "pulled with a wrong password: %s", out)
	assert.Check(t, is.Contains(string(out), "wrong user name, password or token"), string(out))
	assert.Check(t, !strings.Contains(string(out), "guessed-pw"), string(out))
	testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "--creds", "team:team-s3cret", ref)
	resp, err := http.Get("http://" + s.host + "/metrics")
	assert.NilError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Check(t, is.Contains(string(body), `nixery_serve_builds_total{result="ok"} 1`))
}

// TestServeTokenAuth: with --token-file, every client way of giving the
// token works: skopeo --registry-token (sent after the bearer challenge),
// skopeo --creds and podman login with the token as password (traded at
// the token endpoint), and a bearer header in any case; nothing without.
// A plain skopeo inspect (tag list, config) works too.
func TestServeTokenAuth(t *testing.T) {
	testenv.Require(t, "nix", "skopeo", "podman")
	const token = "team-token-0123456789"
	tokenFile := filepath.Join(t.TempDir(), "token")
	assert.NilError(t, os.WriteFile(tokenFile, []byte(token+"\n"), 0o600))
	// Without --public-url the challenge is basic: logins work, a bare
	// token is never sent.
	basic := startServe(t, t.TempDir(), "--token-file", tokenFile)
	testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "--creds", "x:"+token, "docker://"+basic.host+"/hello:latest")
	out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--raw", "--registry-token", token, "docker://"+basic.host+"/hello:latest").CombinedOutput()
	assert.Assert(t, err != nil, "a bare token went without a bearer challenge: %s", out)

	s := startServe(t, t.TempDir(), "--token-file", tokenFile, "--public-url", "http://{host}")
	ref := "docker://" + s.host + "/hello:latest"

	out, err = exec.Command("skopeo", "inspect", "--tls-verify=false", "--raw", ref).CombinedOutput()
	assert.Assert(t, err != nil, "pulled without the token: %s", out)
	assert.Check(t, is.Contains(strings.ToLower(string(out)), "unauthorized"), string(out))
	testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "--registry-token", token, ref)
	out2 := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "--creds", "x:"+token, ref)
	var info struct{ Name, Architecture string }
	assert.NilError(t, json.Unmarshal([]byte(out2), &info), out2)
	assert.Check(t, is.Equal(info.Architecture, "amd64"))

	authfile := filepath.Join(t.TempDir(), "auth.json")
	base := podmanBase(t)
	testenv.Run(t, "podman", append(base, "login", "--tls-verify=false", "--authfile", authfile, "-u", "x", "-p", token, s.host)...)
	testenv.Run(t, "podman", append(base, "pull", "--tls-verify=false", "--authfile", authfile, s.host+"/hello")...)

	req, err := http.NewRequest(http.MethodGet, "http://"+s.host+"/v2/hello/manifests/latest", nil)
	assert.NilError(t, err)
	req.Header.Set("Authorization", "bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Check(t, is.Equal(resp.StatusCode, http.StatusOK))
}

// TestServeCaseless: clients send names in lowercase only, so a package
// of a set with an uppercase name (python3Packages) is pulled by its
// lowercase name, and the names suggested are ones a client can send.
func TestServeCaseless(t *testing.T) {
	testenv.Require(t, "nix", "skopeo", "podman")
	s := startServe(t, t.TempDir())
	raw, err := s.inspect("python3packages.requests:latest")
	assert.NilError(t, err, raw)
	testenv.Run(t, "podman", append(podmanBase(t), "pull", "--tls-verify=false", s.host+"/python3packages.requests")...)
	// A plain skopeo inspect lists the tags first.
	out2 := testenv.Run(t, "skopeo", "inspect", "--tls-verify=false", "docker://"+s.host+"/python3packages.requests")
	var info struct{ RepoTags []string }
	assert.NilError(t, json.Unmarshal([]byte(out2), &info), out2)
	assert.Check(t, is.DeepEqual(info.RepoTags, []string{"latest"}))
	out, err := s.inspect("python3packages.reqests:latest")
	assert.Assert(t, err != nil, out)
	assert.Check(t, is.Contains(out, "python3packages.reqests (did you mean python3packages.requests?)"))
}

// TestServeSystemdUnit: deploy/nixery-serve.service is a unit systemd
// accepts, and its command line is one nixery serve takes.
func TestServeSystemdUnit(t *testing.T) {
	testenv.Require(t, "systemd-analyze")
	raw, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "nixery-serve.service"))
	assert.NilError(t, err)
	unit := strings.ReplaceAll(string(raw), "/usr/local/bin/nixery", nixery)
	dir := t.TempDir()
	file := filepath.Join(dir, "nixery-serve.service")
	assert.NilError(t, os.WriteFile(file, []byte(unit), 0o644))
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", file).CombinedOutput()
	assert.NilError(t, err, "%s", out)
	assert.Equal(t, strings.TrimSpace(string(out)), "", "systemd warns") // unknown keys are only warnings
	// A dynamic user's HOME is not writable: Nix's caches go to the
	// unit's cache directory.
	assert.Check(t, strings.Contains(unit, "\nCacheDirectory=nixery\n") && strings.Contains(unit, "XDG_CACHE_HOME=%C/nixery"), "no writable cache for Nix")

	var args []string
	for _, line := range strings.Split(unit, "\n") {
		if rest, ok := strings.CutPrefix(line, "ExecStart="); ok {
			args = strings.Fields(rest)[1:]
		}
	}
	assert.Assert(t, len(args) > 2, "no ExecStart")
	for i, a := range args {
		switch {
		case a == "--storage":
			args[i+1] = filepath.Join(dir, "storage")
		case strings.Contains(a, "${CREDENTIALS_DIRECTORY}"):
			args[i] = filepath.Join(dir, "htpasswd") // missing: the error names it
		}
	}
	// The unit takes the flake's built-in nixpkgs; the binary under test,
	// built by go build, has none.
	args = append(args, "--nixpkgs", "path:"+dir)
	r := run(t, nil, args...)
	assert.Equal(t, r.code, 1, "the unit's flags are not all nixery serve's: %s", r.stderr)
	assert.Check(t, is.Contains(r.stderr, filepath.Join(dir, "htpasswd")))
}

// TestServeSharedStorage: two servers share a registry repository as
// their storage. What one built, the other serves without building
// (podman runs it through the second); a new image on the second reuses
// the layers the first pushed (the repository's cache record).
func TestServeSharedStorage(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo", "podman", "runc")
	storage := "docker://" + testenv.StartRegistry(t) + "/nixery/store"
	a := startServe(t, storage)
	b := startServe(t, storage)
	inspect := func(s *served, ref string) string {
		out, err := s.inspect(ref)
		assert.NilError(t, err, out)
		return out
	}
	fromA := inspect(a, "hello:latest")
	assert.Equal(t, a.builds(), 1)
	fromB := inspect(b, "hello:latest")
	assert.Equal(t, fromB, fromA)
	assert.Equal(t, b.builds(), 0)
	assert.Equal(t, strings.TrimSpace(podmanRun(t, b.host+"/hello", "hello")), "Hello, world!")

	inspect(b, "busybox/hello:latest")
	assert.Equal(t, b.builds(), 1)
	packed, reused := b.built(t, "busybox/hello")
	assert.Check(t, reused >= 4, "packed %d, reused %d", packed, reused)
}

// TestServeDiskFull: a build that fills the storage's disk (a small
// tmpfs) is the server's failure: the client gets a server error that
// names no path, and the log says which disk and gives advice a serve
// operator can follow (its own options), not the CLI's.
func TestServeDiskFull(t *testing.T) {
	testenv.Require(t, "nix", "skopeo")
	storage := mountTmpfs(t, "2m")
	s := startServe(t, storage, "--platforms", "linux/amd64")
	out, err := s.inspect("largefile:latest")
	assert.Assert(t, err != nil, out)
	assert.Check(t, is.Contains(out, "500 Internal Server Error"))
	assert.Check(t, !strings.Contains(out, storage), out)
	want := "no space left on the disk holding " + storage
	advice := "free space or bound the storage with a lower --max-storage or --max-images, or give --storage a directory on a larger disk"
	log := strings.Join(s.lines(), "\n")
	assert.Check(t, is.Contains(log, want), log)
	assert.Check(t, is.Contains(log, advice), log)
	assert.Check(t, !strings.Contains(log, "layer blobs"), "the CLI's advice: %s", log)
}

// TestServeDrains: SIGTERM lets a blob transfer in flight finish, but
// cancels a build at once: the pull waiting for it gets 503 with a
// Retry-After, and the server exits within seconds (docker stop kills
// after 10), then takes no new connection.
func TestServeDrains(t *testing.T) {
	testenv.Require(t, "nix")
	s := startServe(t, t.TempDir(), "--platforms", "linux/amd64")
	layer := largestLayer(t, s, "largefile")

	// A transfer in flight: the response begun, most of it unread.
	conn, err := net.Dial("tcp", s.host)
	assert.NilError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "GET /v2/largefile/blobs/%s HTTP/1.1\r\nHost: %s\r\n\r\n", layer.Digest, s.host)
	assert.NilError(t, err)
	transfer := bufio.NewReader(conn)
	res, err := http.ReadResponse(transfer, nil)
	assert.NilError(t, err)
	assert.Equal(t, res.StatusCode, http.StatusOK)
	_, err = io.ReadFull(res.Body, make([]byte, 1024))
	assert.NilError(t, err)

	// A pull waiting for a build that would take an hour.
	pulled := make(chan *http.Response, 1)
	go func() {
		res, err := http.Get("http://" + s.host + "/v2/slow/manifests/latest")
		assert.Check(t, err)
		pulled <- res
	}()
	for i := 0; s.builds() < 2; i++ {
		assert.Assert(t, i < 500, "no build of slow started: %v", s.lines())
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // Nix is building
	stopped := time.Now()
	assert.NilError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	pull := <-pulled
	answered := time.Since(stopped)
	assert.Assert(t, pull != nil)
	body, _ := io.ReadAll(pull.Body)
	pull.Body.Close()
	assert.Check(t, is.Equal(pull.StatusCode, http.StatusServiceUnavailable), string(body))
	assert.Check(t, is.Contains(string(body), "UNAVAILABLE"))
	assert.Check(t, pull.Header.Get("Retry-After") != "")
	assert.Check(t, answered < 2*time.Second, "the pull waited %s", answered)

	time.Sleep(200 * time.Millisecond)
	n, err := io.Copy(io.Discard, res.Body)
	assert.NilError(t, err, "the transfer in flight was cut off")
	assert.Equal(t, n+1024, layer.Size, "the transfer in flight was cut short")
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatal("nixery serve did not exit after SIGTERM")
	}
	exited := time.Since(stopped)
	t.Logf("SIGTERM: the pull answered after %s, the server exited after %s", answered, exited)
	assert.Check(t, exited < 7*time.Second, "exited %s after SIGTERM", exited)
	_, err = http.Get("http://" + s.host + "/healthz")
	assert.Assert(t, err != nil, "still serving after SIGTERM")
}

// largestLayer pulls name:latest (a one-platform index) as a client
// does and returns its largest layer.
func largestLayer(t *testing.T, s *served, name string) v1.Descriptor {
	t.Helper()
	var idx v1.IndexManifest
	getJSON(t, "http://"+s.host+"/v2/"+name+"/manifests/latest", &idx)
	var m v1.Manifest
	getJSON(t, "http://"+s.host+"/v2/"+name+"/manifests/"+idx.Manifests[0].Digest.String(), &m)
	largest := m.Layers[0]
	for _, l := range m.Layers {
		if l.Size > largest.Size {
			largest = l
		}
	}
	return largest
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	res, err := http.Get(url)
	assert.NilError(t, err)
	defer res.Body.Close()
	assert.Equal(t, res.StatusCode, http.StatusOK, url)
	assert.NilError(t, json.NewDecoder(res.Body).Decode(v))
}

// TestServeTimeout: a build cut off by --timeout names it.
func TestServeTimeout(t *testing.T) {
	testenv.Require(t, "nix")
	s := startServe(t, t.TempDir(), "--platforms", "linux/amd64", "--timeout", "5s")
	res, err := http.Get("http://" + s.host + "/v2/slow/manifests/latest")
	assert.NilError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Check(t, is.Equal(res.StatusCode, http.StatusNotFound), string(body))
	assert.Check(t, is.Contains(string(body), "the build of slow took longer than the server's --timeout (5s)"))
}

// TestServeRevisions: with a git nixpkgs, a tag picks a branch or a
// commit of it, and both give one image (kept under the revision); a
// branch that does not exist is an error skopeo shows; latest follows
// its branch when it moves.
func TestServeRevisions(t *testing.T) {
	testenv.Require(t, "nix", "git", "skopeo")
	dir := filepath.Join(t.TempDir(), "nixpkgs")
	testenv.Run(t, "cp", "-r", filepath.Join(repoRoot, "testdata", "nixpkgs"), dir)
	git := func(args ...string) string {
		t.Helper()
		return mustRunIn(t, dir, "git", append([]string{"-c", "user.email=ci@example.org", "-c", "user.name=CI", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"}, args...)...)
	}
	// addPackage commits a package only this branch has.
	addPackage := func(name string) {
		t.Helper()
		file := filepath.Join(dir, "packages.nix")
		src, err := os.ReadFile(file)
		assert.NilError(t, err)
		pkg := fmt.Sprintf("inherit gotree;\n  %s = package %q \"mkdir -p $out/share; echo %s > $out/share/branch\";", name, name, name)
		assert.NilError(t, os.WriteFile(file, []byte(strings.Replace(string(src), "inherit gotree;", pkg, 1)), 0o644))
		git("commit", "-q", "-a", "-m", "add "+name)
	}
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "-m", "stand-in nixpkgs")
	git("checkout", "-q", "-b", "other")
	addPackage("marked")
	other := strings.TrimSpace(git("rev-parse", "HEAD"))
	git("checkout", "-q", "main")

	s := startServe(t, t.TempDir(), "--nixpkgs", "git+file://"+dir, "--platforms", "linux/amd64", "--nixpkgs-refresh", "1ms")
	// The server locks latest as it starts, and says to what.
	main := strings.TrimSpace(git("rev-parse", "HEAD"))
	for i := 0; !slices.ContainsFunc(s.lines(), func(l string) bool {
		return strings.Contains(l, `"msg":"nixpkgs locked"`) && strings.Contains(l, "rev="+main)
	}); i++ {
		assert.Assert(t, i < 100, "no lock of latest logged: %v", s.lines())
		time.Sleep(50 * time.Millisecond)
	}
	out, err := s.inspect("hello/marked:latest")
	assert.Assert(t, err != nil, "main has no marked: %s", out)
	assert.Check(t, is.Contains(out, "not found in nixpkgs"))

	byBranch, err := s.inspect("hello/marked:other")
	assert.NilError(t, err, byBranch)
	byCommit, err := s.inspect("hello/marked:" + other)
	assert.NilError(t, err, byCommit)
	assert.Equal(t, byCommit, byBranch)
	var built []string
	for _, l := range s.lines() {
		if strings.Contains(l, `"msg":"build","image":"hello/marked"`) {
			built = append(built, l)
		}
	}
	// The pull of latest, then one of other and its commit.
	assert.Assert(t, is.Len(built, 2), "the commit of a branch built again")
	assert.Check(t, is.Contains(built[1], "rev="+other), built[1])

	out, err = s.inspect("hello:nosuch")
	assert.Assert(t, err != nil, "pulled a branch that does not exist: %s", out)
	assert.Check(t, is.Contains(out, "tag nosuch: nixpkgs git+file://"+dir+"?ref=nosuch cannot be locked"))
	assert.Check(t, is.Contains(out, "(is there such a branch, tag or commit?)"))

	// A flake registry name (as nixpkgs is) takes tags too: here one
	// that a registry file of the test's maps to the repository.
	registry := filepath.Join(t.TempDir(), "registry.json")
	entry := fmt.Sprintf(`{"version":2,"flakes":[{"from":{"type":"indirect","id":"team-nixpkgs"},"to":{"type":"git","url":"file://%s"}}]}`, dir)
	assert.NilError(t, os.WriteFile(registry, []byte(entry), 0o644))
	byName := startServeEnv(t, []string{"NIX_CONFIG=" + testenv.NixConfig + "flake-registry = " + registry + "\n"},
		t.TempDir(), "--nixpkgs", "team-nixpkgs", "--platforms", "linux/amd64")
	raw, err := byName.inspect("hello/marked:other")
	assert.NilError(t, err, raw)
	assert.Check(t, is.Contains(raw, other), "not built from other's commit: %s", raw)

	// main moves; latest follows it at once (--nixpkgs-refresh), not
	// held back by the failure of a minute ago, which was of the old
	// revision.
	out, err = s.inspect("later:latest")
	assert.Assert(t, err != nil, "main has no later yet: %s", out)
	addPackage("later")
	// A pull waits a few seconds for the new lock, then takes the last
	// one; the pull after the lock has ended builds from it in any case.
	var latest string
	for i := 0; ; i++ {
		if latest, err = s.inspect("later:latest"); err == nil || i == 4 {
			break
		}
		time.Sleep(time.Second)
	}
	assert.NilError(t, err, latest)
}
