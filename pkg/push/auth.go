package push

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// Credentials say how to log in to the registry. The first that applies
// wins: Username and Password; then the Keychain (by default the docker
// config, as `docker login` writes it, with its credential helpers); then
// GitHubToken, for ghcr.io only.
type Credentials struct {
	Username string
	Password string

	// Keychain replaces authn.DefaultKeychain, e.g. in tests.
	Keychain authn.Keychain

	// GitHubToken (usually $GITHUB_TOKEN) logs in to ghcr.io as
	// GitHubActor, or as "token" when that is empty.
	GitHubToken string
	GitHubActor string
}

// GitHubKeychain answers for ghcr.io only, with token as the password.
func GitHubKeychain(token, actor string) authn.Keychain {
	return githubKeychain{token: token, actor: actor}
}

type githubKeychain struct{ token, actor string }

func (k githubKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if k.token == "" || r.RegistryStr() != "ghcr.io" {
		return authn.Anonymous, nil
	}
	user := k.actor
	if user == "" {
		user = "token"
	}
	return authn.FromConfig(authn.AuthConfig{Username: user, Password: k.token}), nil
}

// login is the authenticator chosen for a registry, where it came from
// (for error messages), and the secrets no message may show.
type login struct {
	auth    authn.Authenticator
	source  string
	secrets []string
}

func (c Credentials) resolve(repo name.Repository) (login, error) {
	if (c.Username == "") != (c.Password == "") {
		return login{}, fmt.Errorf("--username and --password go together: give both or neither")
	}
	var l login
	switch {
	case c.Username != "":
		l = login{auth: authn.FromConfig(authn.AuthConfig{Username: c.Username, Password: c.Password}), source: "--username/--password"}
	default:
		kc := c.Keychain
		if kc == nil {
			kc = authn.DefaultKeychain
		}
		auth, err := kc.Resolve(repo)
		if err != nil {
			return login{}, fmt.Errorf("read credentials for %s from the docker config: %w", repo.RegistryStr(), err)
		}
		l = login{auth: auth, source: "the docker config"}
		if auth == authn.Anonymous {
			auth, _ = GitHubKeychain(c.GitHubToken, c.GitHubActor).Resolve(repo)
			l = login{auth: auth, source: "GITHUB_TOKEN"}
		}
		if auth == authn.Anonymous {
			l.source = ""
		}
	}

	// Whatever the authenticator holds must never reach a message.
	l.secrets = []string{c.Password, c.GitHubToken}
	if l.auth != authn.Anonymous {
		cfg, err := l.auth.Authorization()
		if err != nil {
			return login{}, fmt.Errorf("read credentials for %s from %s: %w", repo.RegistryStr(), l.source, err)
		}
		l.secrets = append(l.secrets, cfg.Password, cfg.Auth, cfg.IdentityToken, cfg.RegistryToken)
	}
	return l, nil
}
