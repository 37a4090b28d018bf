package registry

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
)

// DockerKeychain reads the docker config as `docker login` writes it and
// as go-containerregistry's default keychain finds it (~/.docker, then
// DOCKER_CONFIG, then podman's auth.json), with its `auths`; but it runs
// the credential helpers (credHelpers, credsStore) itself, bounded by
// the caller's context and HelperTimeout (see runHelper), and keeps a
// helper's answer for HelperAnswerKept.
var DockerKeychain authn.Keychain = &dockerKeychain{}

// HelperAnswerKept is how long a credential helper's answer is kept for
// the same helper and server: a build logs in to a registry several
// times (check, push, each cache read), and each run of a helper is a
// process (often a slow one). Short, so that a long-running `nixery
// serve` sees credentials that were rotated. A failure is not kept.
var HelperAnswerKept = time.Minute

type dockerKeychain struct {
	mu      sync.Mutex // one lookup at a time, as authn.DefaultKeychain
	answers map[helperQuestion]helperAnswer
}

type helperQuestion struct{ helper, server string }

type helperAnswer struct {
	login types.AuthConfig
	at    time.Time
}

// askHelper is runHelper's answer for helper and server, or the one it
// gave within HelperAnswerKept. The caller holds k.mu.
func (k *dockerKeychain) askHelper(ctx context.Context, helper, server string) (types.AuthConfig, error) {
	q := helperQuestion{helper, server}
	if a, ok := k.answers[q]; ok && time.Since(a.at) < HelperAnswerKept {
		return a.login, nil
	}
	login, err := runHelper(ctx, helper, server)
	if err != nil {
		return login, err
	}
	if k.answers == nil {
		k.answers = map[helperQuestion]helperAnswer{}
	}
	k.answers[q] = helperAnswer{login, time.Now()}
	return login, nil
}

// forget drops the kept helper answers (for tests).
func (k *dockerKeychain) forget() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.answers = nil
}

func (k *dockerKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	return k.ResolveContext(context.Background(), r)
}

func (k *dockerKeychain) ResolveContext(ctx context.Context, r authn.Resource) (authn.Authenticator, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	cf, err := loadDockerConfig()
	if err != nil || cf == nil {
		return authn.Anonymous, err
	}
	// The repository's own entry first, then the registry's.
	keys := []string{r.String(), r.RegistryStr()}
	if keys[0] == keys[1] {
		keys = keys[1:]
	}
	for i, key := range keys {
		ac, err := authConfig(ctx, cf, key, i == len(keys)-1, k.askHelper)
		if err != nil {
			return nil, err
		}
		cfg := authn.AuthConfig{Username: ac.Username, Password: ac.Password, Auth: ac.Auth,
			IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken}
		if cfg != (authn.AuthConfig{}) {
			return authn.FromConfig(cfg), nil
		}
	}
	return authn.Anonymous, nil
}

// authConfig is the docker config's login for key: from its credential
// helper when one is configured (after DOCKER_AUTH_CONFIG, as docker has
// it), else from DOCKER_AUTH_CONFIG and `auths`, which run nothing. The
// credsStore is asked for a registry only (store is true): docker login
// stores logins by registry, and each question starts the helper. ask
// asks the helper.
func authConfig(ctx context.Context, cf *configfile.ConfigFile, key string, store bool,
	ask func(ctx context.Context, helper, server string) (types.AuthConfig, error)) (types.AuthConfig, error) {
	if key == "docker.io" || key == "index.docker.io" {
		key = authn.DefaultAuthKey
	}
	helper := cf.CredentialHelpers[key]
	if helper == "" && store {
		helper = cf.CredentialsStore
	}
	noHelpers := *cf
	noHelpers.CredentialHelpers, noHelpers.CredentialsStore = nil, ""
	if helper == "" {
		return noHelpers.GetAuthConfig(key)
	}
	envOnly := noHelpers
	envOnly.AuthConfigs = map[string]types.AuthConfig{}
	if ac, err := envOnly.GetAuthConfig(key); err != nil || ac.Username != "" || ac.IdentityToken != "" {
		return ac, err
	}
	return ask(ctx, helper, key)
}

// loadDockerConfig finds and reads the docker config the way
// go-containerregistry's default keychain does; nil when there is none.
func loadDockerConfig() (*configfile.ConfigFile, error) {
	home, _ := os.UserHomeDir()
	dockerDir := os.Getenv("DOCKER_CONFIG")
	if (home != "" && isFile(filepath.Join(home, ".docker", "config.json"))) ||
		(dockerDir != "" && isFile(filepath.Join(dockerDir, "config.json"))) {
		cf, err := config.Load(dockerDir)
		if err != nil {
			return nil, fmt.Errorf("read the docker config: %w", err)
		}
		return cf, nil
	}
	for _, path := range podmanAuthFiles(home) {
		if !isFile(path) {
			continue
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		cf, err := config.LoadFromReader(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		return cf, nil
	}
	return nil, nil
}

// podmanAuthFiles are where podman keeps its logins, in the order read.
func podmanAuthFiles(home string) []string {
	var out []string
	if p := os.Getenv("REGISTRY_AUTH_FILE"); p != "" {
		out = append(out, filepath.Clean(p))
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		out = append(out, filepath.Join(dir, "containers", "auth.json"))
	}
	configDir := os.Getenv("XDG_CONFIG_HOME")
	if configDir == "" && home != "" {
		configDir = filepath.Join(home, ".config")
	}
	if configDir != "" {
		out = append(out, filepath.Join(configDir, "containers", "auth.json"))
	}
	return out
}

func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir()
}
