package testenv

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StartRegistry starts a real registry (the CNCF distribution registry that
// Debian packages as docker-registry) on a free loopback port, with its
// storage in a temporary directory, and stops it when the test ends. It
// returns "127.0.0.1:PORT"; clients reach it over plain HTTP.
func StartRegistry(t testing.TB) string {
	t.Helper()
	host, _ := startRegistry(t, "", nil)
	return host
}

// StartStoppableRegistry is StartRegistry, with a function that stops the
// registry before the test ends: a registry that goes away.
func StartStoppableRegistry(t testing.TB) (host string, stop func()) {
	t.Helper()
	return startRegistry(t, "", nil)
}

// StartAuthRegistry is StartRegistry with basic authentication: only the
// returned user with the returned password may pull or push.
func StartAuthRegistry(t testing.TB) (host, user, password string) {
	t.Helper()
	user, password, file := htpasswdFile(t)
	host, _ = startRegistry(t, file, nil)
	return host, user, password
}

// StartTLSAuthRegistry is StartAuthRegistry served over HTTPS with a
// certificate from a new certificate authority, whose PEM file it returns
// for clients to trust (SSL_CERT_FILE, skopeo's --cert-dir).
func StartTLSAuthRegistry(t testing.TB) (host, user, password, caFile string) {
	t.Helper()
	user, password, htpasswd := htpasswdFile(t)
	certs := newCerts(t)
	host, _ = startRegistry(t, htpasswd, certs)
	return host, user, password, certs.ca
}

// htpasswdFile writes a bcrypt htpasswd file for a new user.
func htpasswdFile(t testing.TB) (user, password, file string) {
	t.Helper()
	Require(t, "htpasswd")
	user = "nixery"
	password = randomHex(t, 12)
	out, err := exec.Command("htpasswd", "-Bbn", user, password).Output()
	if err != nil {
		t.Fatalf("htpasswd: %v", err)
	}
	file = filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(file, bytes.TrimSpace(out), 0o600); err != nil {
		t.Fatal(err)
	}
	return user, password, file
}

const registryConfig = `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`

const registryTLS = `  tls:
    certificate: %s
    key: %s
`

const registryAuth = `auth:
  htpasswd:
    realm: nixery-test
    path: %s
`

// startRegistry runs docker-registry until the test ends. The port is
// found free just before the registry binds it, so another process can
// take it in between: a registry that exits at once is tried again.
func startRegistry(t testing.TB, htpasswd string, certs *certFiles) (string, func()) {
	t.Helper()
	Require(t, "docker-registry")
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		addr := FreePort(t)
		dir := t.TempDir()
		cfg := fmt.Sprintf(registryConfig, filepath.Join(dir, "data"), addr)
		if certs != nil {
			cfg += fmt.Sprintf(registryTLS, certs.cert, certs.key)
		}
		if htpasswd != "" {
			cfg += fmt.Sprintf(registryAuth, htpasswd)
		}
		cfgFile := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		var stop func()
		if stop, lastErr = runRegistry(t, cfgFile, addr, certs); lastErr == nil {
			return addr, stop
		}
	}
	t.Fatalf("starting docker-registry: %v", lastErr)
	return "", nil
}

// runRegistry starts the registry and waits until /v2/ answers. On
// success the test's cleanup stops it, unless stop did before.
func runRegistry(t testing.TB, cfgFile, addr string, certs *certFiles) (stop func(), err error) {
	out := &lockedBuffer{}
	cmd := exec.Command("docker-registry", "serve", cfgFile)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	deadline := time.Now().Add(15 * time.Second)
	client := &http.Client{Timeout: time.Second}
	scheme := "http"
	if certs != nil {
		scheme = "https"
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs.pool}}
	}
	for {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("exited at start (%v): %s", err, out.String())
		default:
		}
		if resp, err := client.Get(scheme + "://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			// 401 is the answer of a registry with authentication.
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				break
			}
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return nil, fmt.Errorf("no answer on http://%s/v2/ after 15s: %s", addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() && out.Len() > 0 {
			t.Logf("docker-registry on %s said:\n%s", addr, notable(out.String()))
		}
	})
	return stop, nil
}

// FreePort returns a loopback address with a port nothing listens on now.
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// lockedBuffer collects the registry's output from its two streams.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.buf.String())
}

func (b *lockedBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// notable drops the registry's routine log lines: every push asks for
// blobs and manifests that are not there yet, which it logs as errors.
func notable(log string) string {
	var keep []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "blob unknown") || strings.Contains(line, "manifest unknown") || line == "" {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "\n")
}
