package build

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/nixery-action/nixery-action/pkg/nix"
	"github.com/nixery-action/nixery-action/pkg/publish"
	"github.com/nixery-action/nixery-action/pkg/spec"
)

// fakeNix stands for Nix in the pipeline's tests that need no closure:
// locks it gives, and what each system's build answers.
type fakeNix struct {
	lockErr error
	build   func(ctx context.Context, system string) (*nix.Result, error)
}

func (f *fakeNix) Lock(context.Context) (nix.Locked, error) {
	return nix.Locked{URL: "path:/fake?narHash=sha256-x"}, f.lockErr
}

func (f *fakeNix) LockFlake(_ context.Context, ref string) (nix.Locked, error) {
	return nix.Locked{URL: "path:/fake/" + ref}, nil
}

func (f *fakeNix) BuildLogged(ctx context.Context, system string, _ []string, _ io.Writer) (*nix.Result, error) {
	return f.build(ctx, system)
}

// fakeRequest is a two-platform request for an OCI layout in dir.
func fakeRequest(t *testing.T, dir string) Request {
	t.Helper()
	s, err := spec.Parse([]string{"hello"}, spec.Options{})
	assert.NilError(t, err)
	plats, err := spec.ParsePlatforms("linux/amd64", "linux/arm64")
	assert.NilError(t, err)
	return Request{Nixpkgs: "path:/fake", Spec: s, Platforms: plats,
		Destination: publish.NewLayout(publish.Output{Kind: publish.OCILayout, Path: dir}, publish.WriteOptions{Tags: []string{"v1"}})}
}

// Packages missing on several platforms are told together, in one line,
// and nothing is written.
func TestFakeNixMissingPackages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	f := &fakeNix{build: func(_ context.Context, system string) (*nix.Result, error) {
		return nil, &nix.NotFoundError{System: system, Missing: []string{"hello"}}
	}}
	_, err := Build(context.Background(), fakeRequest(t, dir), Options{Realiser: f})
	assert.ErrorContains(t, err, "hello")
	assert.Check(t, strings.Contains(err.Error(), "x86_64-linux") && strings.Contains(err.Error(), "aarch64-linux"), err.Error())
	assert.Check(t, !strings.Contains(err.Error(), "\n"), err.Error())
	_, statErr := os.Stat(dir)
	assert.Check(t, os.IsNotExist(statErr), "the failed build wrote its destination")
}

// A cancelled build ends as cancelled, whatever the platforms were doing:
// errors.Is tells it, not the text.
func TestFakeNixCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeNix{build: func(ctx context.Context, _ string) (*nix.Result, error) {
		cancel()
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	_, err := Build(ctx, fakeRequest(t, filepath.Join(t.TempDir(), "layout")), Options{Realiser: f})
	assert.Assert(t, errors.Is(err, context.Canceled), "%v", err)
}

// A flake Nix cannot lock stops the build before any platform starts.
func TestFakeNixLockFails(t *testing.T) {
	lockErr := errors.New("cannot lock path:/fake")
	started := false
	f := &fakeNix{lockErr: lockErr, build: func(context.Context, string) (*nix.Result, error) {
		started = true
		return nil, errors.New("unreachable")
	}}
	_, err := Build(context.Background(), fakeRequest(t, filepath.Join(t.TempDir(), "layout")), Options{Realiser: f})
	assert.ErrorIs(t, err, lockErr)
	assert.Check(t, !started, "a platform started after the lock failed")
}
