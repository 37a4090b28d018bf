package testenv

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
)

// DockerConfig writes a docker config directory holding a login for
// registry (what `docker login` and docker/login-action leave), for
// DOCKER_CONFIG, and returns it.
func DockerConfig(t testing.TB, registry, user, password string) string {
	t.Helper()
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"`+registry+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}
