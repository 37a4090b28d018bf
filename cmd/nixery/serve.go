package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nixery-action/nixery-action/pkg/build"
	"github.com/nixery-action/nixery-action/pkg/flakeref"
	"github.com/nixery-action/nixery-action/pkg/serve"
	"github.com/nixery-action/nixery-action/pkg/spec"
)

// serveFlags are the options of `nixery serve`.
type serveFlags struct {
	listen    string
	nixpkgs   string
	storage   string
	platforms listFlag
	builds    int
	timeout   time.Duration
	refresh   time.Duration
	htpasswd  string
	tokenFile string
	publicURL string
	maxImages int
	maxBytes  byteSize
	maxConns  int
	insecure  bool
}

// byteSize is a flag of bytes: a number with an optional K, M, G or T
// (powers of 1024).
type byteSize int64

func (b *byteSize) String() string { return fmt.Sprint(int64(*b)) }

func (b *byteSize) Set(s string) error {
	units := map[string]int64{"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
	t := strings.ToUpper(strings.TrimSuffix(strings.TrimSpace(s), "B"))
	i := strings.IndexFunc(t, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(t)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	unit, ok := units[t[i:]]
	if err != nil || !ok || n < 0 || n > math.MaxInt64/unit {
		return fmt.Errorf("%q is not a size: give bytes, or a number with K, M, G or T, e.g. 20G", s)
	}
	*b = byteSize(n * unit)
	return nil
}

// serveCommand is `nixery serve`, the registry that builds on pull.
func serveCommand() *command {
	return &command{
		name:    "serve",
		summary: "run a registry that builds images when they are pulled, as Nixery does",
		usage:   "--storage DIR|docker://REGISTRY/NAME [--listen ADDR] [--nixpkgs FLAKEREF] [--platforms LIST]",
		help: `Pull REGISTRY/shell/git/htop:latest to get an image of those packages,
built on the first pull and kept in --storage. Without the arm64
meta-package a name is an index over --platforms; with it, the arm64
image alone. With a git-based --nixpkgs (github:, gitlab:, sourcehut:,
git+URL, or a registry name such as nixpkgs), another tag picks a
branch, tag or commit of it. An image is
kept under the nixpkgs revision its tag was locked to, and tags are
locked again every --nixpkgs-refresh, so that latest follows a branch.`,
		setup: func(fs *flag.FlagSet) func([]string) error {
			f := newServeFlags()
			f.register(fs)
			return func(args []string) error {
				if len(args) > 0 {
					return usagef("serve takes no arguments, but was given %q", args[0])
				}
				ctx, stop := interruptContext()
				defer stop()
				return f.run(ctx)
			}
		},
	}
}

// newServeFlags are serve's options before the command line is read.
func newServeFlags() *serveFlags { return &serveFlags{platforms: listFlag{commas: true}} }

// register declares f's flags on fs.
func (f *serveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8080", "`ADDR` to listen on (loopback unless told otherwise)")
	fs.StringVar(&f.nixpkgs, "nixpkgs", defaultNixpkgs, "nixpkgs `FLAKEREF` of the tag latest")
	fs.DurationVar(&f.refresh, "nixpkgs-refresh", 5*time.Minute, "lock the revision a tag names again after this long (`DURATION`); Nix's tarball-ttl also holds a forge's branches")
	fs.StringVar(&f.storage, "storage", "", "where the images built are kept, across restarts: a `DIR` (an OCI layout), or docker://REGISTRY/NAME, a repository several servers share (logged in to with the docker config)")
	fs.BoolVar(&f.insecure, "insecure", false, "talk plain HTTP to a registry --storage (loopback registries always are)")
	fs.Var(&f.platforms, "platforms", "platforms of a name without arm64, a comma separated `LIST` (default linux/amd64,linux/arm64)")
	fs.IntVar(&f.builds, "builds", 2, "`N` builds at once")
	fs.DurationVar(&f.timeout, "timeout", 20*time.Minute, "give up on one image's build after this long (`DURATION`)")
	fs.IntVar(&f.maxImages, "max-images", 0, "keep at most `N` images, dropping those pulled least recently (0: keep all); an image whose manifest was served in the last 10 minutes is kept, exceeding the bound meanwhile")
	fs.Var(&f.maxBytes, "max-storage", "keep the storage's blobs within `SIZE` (e.g. 20G), dropping the images pulled least recently (0: no bound); an image whose manifest was served in the last 10 minutes is kept, exceeding the bound meanwhile")
	fs.IntVar(&f.maxConns, "max-connections", 0, "hold at most `N` connections open at once, the others waiting to be accepted (0: no bound); each takes a file descriptor, which builds need too, and an idle keep-alive connection counts for up to 2 minutes")
	fs.StringVar(&f.htpasswd, "htpasswd", "", "require basic authentication against this htpasswd `FILE` (bcrypt entries: htpasswd -B)")
	fs.StringVar(&f.tokenFile, "token-file", "", "require this `FILE`'s token (16 characters or more), as a bearer token or as the password of any user")
	fs.StringVar(&f.publicURL, "public-url", "", "with --token-file, the `URL` clients reach this server at (e.g. https://nixery.example.com): the challenge then names its token endpoint, so that clients given the token alone (skopeo --registry-token) send it; without it, clients log in with the token as password")
}

// serveReadTimeout bounds the reading of a whole request, body too:
// pulls send none, and a request that announces a body it never sends
// would otherwise hold its connection for good (the server waits to
// discard the body after answering).
const serveReadTimeout = 30 * time.Second

// httpServer is the HTTP server in front of h, with its bounds.
func httpServer(h http.Handler, readTimeout time.Duration) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: readTimeout, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
}

func (f *serveFlags) run(ctx context.Context) error {
	if f.storage == "" {
		return usagef("--storage is required: the directory that keeps the images built")
	}
	if f.nixpkgs == "" || strings.HasPrefix(f.nixpkgs, "-") {
		return usagef("no nixpkgs for the tag latest: pass --nixpkgs FLAKEREF, e.g. github:NixOS/nixpkgs/nixos-26.05")
	}
	if err := checkNixpkgsDirectory(f.nixpkgs); err != nil {
		return err
	}
	if f.refresh <= 0 {
		return usagef("--nixpkgs-refresh must be a positive duration, such as 5m")
	}
	if f.maxConns < 0 {
		return usagef("--max-connections %d is negative: give the most connections to hold open at once, or 0 for no bound", f.maxConns)
	}
	if strings.HasPrefix(f.storage, "docker://") && (f.maxImages > 0 || f.maxBytes > 0) {
		return usagef("--max-images and --max-storage bound a directory storage; a registry storage (%s) is bounded by the registry's own garbage collection: drop them", f.storage)
	}
	if _, _, err := net.SplitHostPort(f.listen); err != nil {
		return usagef("--listen %s is not HOST:PORT, such as 127.0.0.1:8080 (or :8080 for every address)", f.listen)
	}
	var platforms []spec.Platform
	if len(f.platforms.items) > 0 {
		var err error
		if platforms, err = spec.ParsePlatforms(f.platforms.items...); err != nil {
			return usageError{err.Error()}
		}
	}
	var auth serve.Auth
	switch {
	case f.htpasswd != "" && f.tokenFile != "":
		return usagef("--htpasswd and --token-file exclude each other: give one")
	case f.htpasswd != "":
		h, err := serve.LoadHtpasswd(f.htpasswd)
		if err != nil {
			return fmt.Errorf("--htpasswd: %w", err)
		}
		auth = h
	case f.publicURL != "" && f.tokenFile == "":
		return usagef("--public-url names the token endpoint of --token-file: give --token-file too, or drop --public-url")
	case f.tokenFile != "":
		tok, err := serve.LoadToken(f.tokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		auth = tok
		if f.publicURL != "" {
			realm, err := serve.TokenRealm(f.publicURL)
			if err != nil {
				return usagef("--public-url: %v", err)
			}
			auth = serve.BearerToken{Token: tok, Realm: realm}
		}
	}
	// Bound first: a port in use fails before the storage is made. Nothing
	// is served on it before the checks below pass.
	ln, err := serve.Listen(f.listen, f.maxConns)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", f.listen, err)
	}
	defer ln.Close()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	srv, err := serve.New(serve.Options{
		Nixpkgs: f.nixpkgs, Refresh: f.refresh, Storage: f.storage, Insecure: f.insecure, Platforms: platforms, Auth: auth,
		Builds: f.builds, Timeout: f.timeout, MaxImages: f.maxImages, MaxBytes: int64(f.maxBytes), Log: log, Build: build.Options{NixTimeout: f.timeout, NixEnv: nixEnviron()},
	})
	if err != nil {
		return err
	}
	// A server that could build nothing is refused now, not found out
	// by every pull.
	if err := srv.Check(ctx); err != nil {
		return err
	}
	hs := httpServer(srv, serveReadTimeout)
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	log.Info("serving", "address", "http://"+ln.Addr().String(), "nixpkgs", flakeref.Redacted(f.nixpkgs), "storage", f.storage)
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	if err := drain(hs, srv, log); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// drainTransfers is how long blob transfers in flight may take to end
// on SIGTERM (the systemd unit's TimeoutStopSec leaves room for it).
const drainTransfers = time.Minute

// drain stops hs and srv: builds are cancelled at once (a build may take
// minutes, and docker stop or Kubernetes kill after 10 or 30 seconds),
// their pulls told to come back; transfers of images built finish,
// within drainTransfers; new connections are refused.
func drain(hs *http.Server, srv *serve.Server, log *slog.Logger) error {
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), drainTransfers)
	defer cancel()
	err := hs.Shutdown(ctx)
	// The builds end as Nix does, leaving the storage as it was.
	srv.Close()
	if errors.Is(err, context.DeadlineExceeded) {
		log.Warn("transfers still in flight were cut off", "after", drainTransfers.String())
		return nil
	}
	return err
}
