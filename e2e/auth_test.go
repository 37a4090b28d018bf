//go:build integration

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// TestAuthentication pushes to a registry with htpasswd authentication,
// over plain loopback HTTP and behind TLS with a certificate authority the
// test trusts, with credentials from flags, a docker config file and the
// environment; wrong credentials fail naming the registry, and the
// password appears nowhere.
func TestAuthentication(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "htpasswd", "skopeo")
	plainHost, plainUser, plainPassword := testenv.StartAuthRegistry(t)
	tlsHost, tlsUser, tlsPassword, ca := testenv.StartTLSAuthRegistry(t)

	for _, reg := range []struct {
		name, host, user, password string
		env                        []string
	}{
		{"http", plainHost, plainUser, plainPassword, nil},
		{"tls", tlsHost, tlsUser, tlsPassword, []string{"SSL_CERT_FILE=" + ca}},
	} {
		t.Run(reg.name, func(t *testing.T) {
			dockerConfig := testenv.DockerConfig(t, reg.host, reg.user, reg.password)
			empty := t.TempDir()
			base := []string{"build", "--nixpkgs", standIn()}
			for _, tc := range []struct {
				name string
				env  []string
				args []string
			}{
				{"flags", []string{"DOCKER_CONFIG=" + empty}, []string{"--username", reg.user, "--password", reg.password}},
				{"docker config", []string{"DOCKER_CONFIG=" + dockerConfig}, nil},
				{"environment", []string{"DOCKER_CONFIG=" + empty, "NIXERY_PASSWORD=" + reg.password}, []string{"--username", reg.user}},
			} {
				repo := reg.host + "/auth/" + strings.ReplaceAll(tc.name, " ", "-")
				args := append(append(append([]string{}, base...), "--image", repo, "--tags", "v1"), tc.args...)
				r := run(t, append(reg.env, tc.env...), append(args, "hello")...)
				assert.Equal(t, r.code, 0, "%s: %s", tc.name, r.stderr)
				assert.Assert(t, !strings.Contains(r.stdout+r.stderr, reg.password), "%s: password printed", tc.name)
				skopeo := []string{"inspect", "--raw", "--creds", reg.user + ":" + reg.password}
				if reg.name == "tls" {
					certDir := t.TempDir()
					data, err := os.ReadFile(ca)
					assert.NilError(t, err)
					assert.NilError(t, os.WriteFile(filepath.Join(certDir, "ca.crt"), data, 0o644))
					skopeo = append(skopeo, "--cert-dir", certDir)
				} else {
					skopeo = append(skopeo, "--tls-verify=false")
				}
				testenv.Run(t, "skopeo", append(skopeo, "docker://"+repo+":v1")...)
			}

			wrong := reg.password + "-wrong"
			r := run(t, append(reg.env, "DOCKER_CONFIG="+empty), append(append([]string{}, base...), "--image", reg.host+"/auth/wrong", "--username", reg.user, "--password", wrong, "hello")...)
			assert.Assert(t, r.code != 0)
			assert.Assert(t, is.Contains(errorLine(r.stderr), "authentication failed for registry "+reg.host), r.stderr)
			assert.Assert(t, !strings.Contains(r.stdout+r.stderr, wrong), "password printed")

			r = run(t, append(reg.env, "DOCKER_CONFIG="+empty), append(append([]string{}, base...), "--image", reg.host+"/auth/anonymous", "hello")...)
			assert.Assert(t, r.code != 0)
			assert.Assert(t, is.Contains(errorLine(r.stderr), "authentication failed for registry "+reg.host), r.stderr)
		})
	}

	// Without the certificate authority, the TLS registry is refused
	// with a message saying why.
	r := run(t, []string{"DOCKER_CONFIG=" + t.TempDir()}, "build", "--nixpkgs", standIn(), "--image", tlsHost+"/auth/untrusted",
		"--username", tlsUser, "--password", tlsPassword, "hello")
	assert.Assert(t, r.code != 0)
	assert.Assert(t, is.Contains(errorLine(r.stderr), "certificate"), r.stderr)
	assert.Assert(t, !strings.Contains(r.stdout+r.stderr, tlsPassword))
}
