package registry

import (
	"context"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// Credentials say how to log in to a registry. The first that applies
// wins: Username and Password, for Registry only; then the Keychain (by
// default the docker config, as `docker login` writes it, with its
// credential helpers); then GitHubToken, for ghcr.io only.
type Credentials struct {
	Username string
	Password string

	// Registry is the registry (host[:port], as in an image reference)
	// that Username and Password belong to: they are sent to no other,
	// so a cache image elsewhere never sees them. Empty means the
	// registry pushed to (publish.Push, publish.Merge); cache.Read then sends them
	// nowhere.
	Registry string

	// Keychain replaces DockerKeychain, e.g. in tests.
	Keychain authn.Keychain

	// GitHubToken (usually $GITHUB_TOKEN) logs in to ghcr.io as
	// GitHubActor, or as "token" when that is empty.
	GitHubToken string
	GitHubActor string
	// GitHubEvent is the workflow's event (GITHUB_EVENT_NAME): a
	// pull_request's token is read-only when the pull request comes
	// from a fork, which a denied push then says.
	GitHubEvent string
}

// ScopedKeychain answers with user and password for registry alone
// (host[:port]) and anonymously for every other.
func ScopedKeychain(registry, user, password string) authn.Keychain {
	return scopedKeychain{registry: registry, auth: authn.FromConfig(authn.AuthConfig{Username: user, Password: password})}
}

type scopedKeychain struct {
	registry string
	auth     authn.Authenticator
}

func (k scopedKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if k.registry == "" || r.RegistryStr() != k.registry {
		return authn.Anonymous, nil
	}
	return k.auth, nil
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

// Login is the authenticator chosen for a registry, where it came from
// (for error messages), and the secrets no message may show.
type Login struct {
	auth    authn.Authenticator
	source  string
	secrets []string
	event   string // the workflow's event, with the GITHUB_TOKEN source
	// elsewhere is set when Username and Password were given but
	// belong to another registry than this one.
	elsewhere bool
}

// Authenticator is what the login sends.
func (l Login) Authenticator() authn.Authenticator { return l.auth }

// Explain turns an error from talking to repo's registry into one line
// that says what went wrong, without the login's secrets, keeping err as
// its cause (see RegistryError).
func (l Login) Explain(err error, repo name.Repository) error {
	return redact(explain(err, repo, l), l.secrets)
}

// ExplainDoing is Explain for a failure while doing what doing says
// (e.g. "read the image sha256:… from r/x"), not while pushing to repo.
func (l Login) ExplainDoing(err error, repo name.Repository, doing string) error {
	return redact(explainDoing(err, repo, l, doing, false), l.secrets)
}

// Redact is err with the login's secrets replaced in its text.
func (l Login) Redact(err error) error { return redact(err, l.secrets) }

// Login chooses the login for repo; pushedTo says whether repo's
// registry is the one pushed to, which an empty Registry stands for. A
// credential helper it runs stops when ctx ends. Its error holds none of
// the credentials.
func (c Credentials) Login(ctx context.Context, repo name.Repository, pushedTo bool) (Login, error) {
	l, err := c.login(ctx, repo, pushedTo)
	return l, redact(err, []string{c.Password, c.GitHubToken, basicAuth(c.Username, c.Password)})
}

func (c Credentials) login(ctx context.Context, repo name.Repository, target bool) (Login, error) {
	if (c.Username == "") != (c.Password == "") {
		return Login{}, fmt.Errorf("a registry user name and password go together: give both or neither")
	}
	scope := c.Registry
	if scope == "" && target {
		scope = repo.RegistryStr()
	}
	var l Login
	flags, _ := ScopedKeychain(scope, c.Username, c.Password).Resolve(repo)
	switch {
	case c.Username != "" && flags != authn.Anonymous:
		l = Login{auth: flags, source: "--username/--password"}
	default:
		kc := c.Keychain
		if kc == nil {
			kc = DockerKeychain
		}
		auth, err := authn.Resolve(ctx, kc, repo)
		if err != nil {
			return Login{}, fmt.Errorf("read credentials for %s from the docker config: %s", repo.RegistryStr(), helperError(err))
		}
		l = Login{auth: auth, source: "the docker config"}
		if auth == authn.Anonymous {
			auth, _ = GitHubKeychain(c.GitHubToken, c.GitHubActor).Resolve(repo)
			l = Login{auth: auth, source: "GITHUB_TOKEN", event: c.GitHubEvent}
		}
		if auth == authn.Anonymous {
			l.source = ""
		}
		l.elsewhere = c.Username != ""
	}

	// Whatever the authenticator holds must never reach a message.
	l.secrets = []string{c.Password, c.GitHubToken}
	if l.auth != authn.Anonymous {
		cfg, err := l.auth.Authorization()
		if err != nil {
			return Login{}, fmt.Errorf("read credentials for %s from %s: %s", repo.RegistryStr(), l.source, helperError(err))
		}
		l.secrets = append(l.secrets, cfg.Password, cfg.Auth, cfg.IdentityToken, cfg.RegistryToken, basicAuth(cfg.Username, cfg.Password))
	}
	return l, nil
}

// basicAuth is the Authorization header's value for user and password,
// which a registry may echo: a secret too. Empty without a password.
func basicAuth(user, password string) string {
	if password == "" {
		return ""
	}
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}

var exitStatus = regexp.MustCompile(`exit status \d+`)

// helperError describes a failure to read the docker config's
// credentials without what a credential helper printed: a failing helper's
// output may hold the very secret it failed to hand over ("token=...").
func helperError(err error) string {
	msg := err.Error()
	i := strings.Index(msg, "out:")
	if i < 0 {
		i = strings.Index(msg, "output:")
	}
	if i < 0 {
		return strings.Join(strings.Fields(msg), " ")
	}
	status := exitStatus.FindString(msg)
	if status == "" {
		status = "failed"
	}
	return "its credential helper failed (" + status + "; its output is not shown, as it may hold secrets)"
}
