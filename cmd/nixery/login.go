package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nixery-action/nixery-action/pkg/registry"
)

// loginFlags are the registry credentials of build and merge. They go to
// the --image registry only; cache registries elsewhere get the docker
// config's credentials or none.
type loginFlags struct {
	username      string
	password      string
	passwordStdin bool
}

func (f *loginFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.username, "username", "", "registry user `NAME`, sent to the --image registry only")
	fs.StringVar(&f.password, "password", "", "registry `PASSWORD` or token; other users of this machine can see it in ps: prefer --password-stdin or the NIXERY_PASSWORD environment variable")
	fs.BoolVar(&f.passwordStdin, "password-stdin", false, "read the registry password or token from standard input (as docker login does)")
}

// maxPasswordSize bounds what --password-stdin reads.
const maxPasswordSize = 64 << 10

// credentials are the credentials for host (the registry of --image, host[:port]),
// with the password from the flag, standard input or NIXERY_PASSWORD, and
// the workflow token for ghcr.io. Call it only when a registry is used: a
// build written to disk needs no credentials and checks none.
func (f *loginFlags) credentials(host string, stdin io.Reader, getenv func(string) string) (registry.Credentials, error) {
	password, source := f.password, "--password"
	switch {
	case f.passwordStdin && f.password != "":
		return registry.Credentials{}, usagef("--password and --password-stdin exclude each other: give the password one way")
	case f.passwordStdin:
		b, err := io.ReadAll(io.LimitReader(stdin, maxPasswordSize+1))
		if err != nil {
			return registry.Credentials{}, fmt.Errorf("read the password from standard input: %w", err)
		}
		if len(b) > maxPasswordSize {
			return registry.Credentials{}, usagef("--password-stdin read more than %d bytes: pipe in only the password", maxPasswordSize)
		}
		password, source = strings.TrimRight(string(b), "\r\n"), "--password-stdin"
		if password == "" {
			return registry.Credentials{}, usagef("--password-stdin read an empty password: pipe the password or token in, e.g. echo \"$TOKEN\" | nixery ... --password-stdin")
		}
	case password == "" && getenv("NIXERY_PASSWORD") != "":
		password, source = getenv("NIXERY_PASSWORD"), "NIXERY_PASSWORD"
	}
	switch {
	case f.username == "" && password != "" && source == "NIXERY_PASSWORD":
		return registry.Credentials{}, usagef("NIXERY_PASSWORD is set but --username is not: pass --username with it, or unset NIXERY_PASSWORD")
	case f.username == "" && password != "":
		return registry.Credentials{}, usagef("%s needs --username: give both or neither", source)
	case f.username != "" && password == "":
		return registry.Credentials{}, usagef("--username needs a password: pass --password-stdin, set NIXERY_PASSWORD, or pass --password")
	}
	return registry.Credentials{
		Username: f.username, Password: password, Registry: host,
		GitHubToken: getenv("GITHUB_TOKEN"), GitHubActor: getenv("GITHUB_ACTOR"), GitHubEvent: getenv("GITHUB_EVENT_NAME"),
	}, nil
}

// stdin is standard input; tests replace it.
var stdin io.Reader = os.Stdin
