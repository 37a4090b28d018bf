package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/docker/cli/cli/config/types"
)

// HelperTimeout bounds one run of a credential helper; the caller's
// context may end it sooner.
var HelperTimeout = 30 * time.Second

var errHelperTimeout = errors.New("credential helper timed out")

// helperOutputMax bounds what is kept of a helper's stdout.
const helperOutputMax = 64 << 10

// notFound is what a helper of docker-credential-helpers prints (with
// exit status 1) when it holds no login for the server: anonymous.
const notFound = "credentials not found in native keychain"

// tokenUser is the user name with which a helper hands over an identity
// token rather than a password.
const tokenUser = "<token>"

// runHelper asks docker-credential-NAME for server's login: `get` with
// the server on stdin, JSON {Username, Secret} on stdout. It runs in a
// process group of its own that is killed when ctx ends or HelperTimeout
// passes, so that neither a hung helper nor one left behind outlives the
// lookup. Its stderr goes to /dev/null: a failing helper may print the
// very secret it failed to hand over, or words a CI runner would act on.
func runHelper(ctx context.Context, helper, server string) (types.AuthConfig, error) {
	prog := "docker-credential-" + helper
	ctx, cancel := context.WithTimeoutCause(ctx, HelperTimeout, errHelperTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, "get")
	cmd.Stdin = strings.NewReader(server)
	stdout := &cappedBuffer{max: helperOutputMax}
	cmd.Stdout = stdout // and Stderr nil: /dev/null
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A child that left the group may hold the pipes open.
	cmd.WaitDelay = time.Second

	err := cmd.Run()
	out := strings.TrimSpace(stdout.buf.String())
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return types.AuthConfig{}, fmt.Errorf("the docker config names the credential helper %s, which is not on PATH: install it, or remove it from the docker config", prog)
	case context.Cause(ctx) == errHelperTimeout:
		return types.AuthConfig{}, fmt.Errorf("the credential helper %s did not answer within %s: it was stopped", prog, HelperTimeout)
	case ctx.Err() != nil:
		return types.AuthConfig{}, fmt.Errorf("the credential helper %s was stopped: %w", prog, ctx.Err())
	case err != nil && out == notFound:
		return types.AuthConfig{}, nil
	case err != nil:
		return types.AuthConfig{}, &HelperError{Helper: prog, Err: err}
	case stdout.over:
		return types.AuthConfig{}, fmt.Errorf("the credential helper %s printed more than %d bytes: expected its JSON {Username, Secret}", prog, helperOutputMax)
	}
	var creds struct{ Username, Secret string }
	if err := json.Unmarshal([]byte(out), &creds); err != nil {
		return types.AuthConfig{}, fmt.Errorf("the credential helper %s printed no JSON {Username, Secret} (its output is not shown, as it may hold secrets)", prog)
	}
	if creds.Username == tokenUser {
		return types.AuthConfig{IdentityToken: creds.Secret}, nil
	}
	return types.AuthConfig{Username: creds.Username, Password: creds.Secret}, nil
}

// HelperError is a credential helper's failure. Its text names the
// helper and its exit status only.
type HelperError struct {
	Helper string
	Err    error
}

func (e *HelperError) Error() string {
	return fmt.Sprintf("the credential helper %s failed (%s; its output is not shown, as it may hold secrets)", e.Helper, e.Err)
}

func (e *HelperError) Unwrap() error { return e.Err }

// cappedBuffer keeps the first max bytes written to it and drops the
// rest, so that a helper printing without end neither fills memory nor
// blocks on a full pipe.
type cappedBuffer struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); len(p) > room {
		c.over = true
		c.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return c.buf.Write(p)
}
