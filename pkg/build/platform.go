package build

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"golang.org/x/sync/errgroup"

	"github.com/nixery-action/nixery-action/pkg/account"
	"github.com/nixery-action/nixery-action/pkg/archive"
	"github.com/nixery-action/nixery-action/pkg/flakeref"
	"github.com/nixery-action/nixery-action/pkg/image"
	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/nix"
	"github.com/nixery-action/nixery-action/pkg/sbom"
	"github.com/nixery-action/nixery-action/pkg/spec"
	"github.com/nixery-action/nixery-action/pkg/storepath"
)

// platform builds one platform's image: Nix, the layer plan, then each
// layer packed (or taken from the cache) and offered to the destination.
func (b *builder) platform(ctx context.Context, nb Realiser, plat spec.Platform, log io.Writer) (*image.Image, error) {
	sys := plat.System
	fmt.Fprintf(log, "[%s] building %s\n", plat, strings.Join(b.req.Spec.Shown(), " "))
	done := b.timings.start(phaseNix, plat.String())
	res, err := nb.BuildLogged(ctx, sys, b.req.Spec.Packages, log)
	done()
	if err != nil {
		return nil, err
	}
	defer res.Release() // its store paths are read into layers until then

	done = b.timings.start(phaseLayering, plat.String())
	g, err := layers.ParseGraph(res.Closure)
	if err != nil {
		return nil, fmt.Errorf("read the closure for %s: %w", sys, err)
	}
	if err := g.SetRoots(res.Roots()); err != nil {
		return nil, fmt.Errorf("closure for %s: %w", sys, err)
	}
	plan, err := layers.Plan(g, b.req.Layers)
	done()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "[%s] %s in %s\n", plat, plural(len(g.Paths), "store path", "store paths"), plural(len(plan.Layers), "layer", "layers"))
	b.contentsMu.Lock()
	if b.contents == nil {
		b.contents = map[string]ContentsResult{}
	}
	b.contents[plat.String()] = contentsOf(plat.String(), g)
	b.contentsMu.Unlock()

	done = b.timings.start(phasePacking, plat.String())
	defer done()
	n := len(plan.Layers) + 1
	imgLayers := make([]image.Blob, len(plan.Layers), n)
	contents := make([]content, len(plan.Layers))
	for i, l := range plan.Layers {
		contents[i] = pathsContent(l.Key, l.Paths, int64(min(l.Size, math.MaxInt64)))
	}
	err = b.layers(ctx, contents, func(i int, il image.Blob) {
		il.Key = plan.Layers[i].Key
		il.Packages = storepath.PackageNames(plan.Layers[i].Paths)
		imgLayers[i] = il
	}, func(i int) *reporter { return b.reporter(plat.String(), i+1, n, contents[i].size) })
	if err != nil {
		return nil, fmt.Errorf("pack a layer of %s: %w", sys, err)
	}
	cc := customisationContent(res, b.req.User, b.req.Image.WorkingDir, log, plat.String())
	custom, err := b.layer(ctx, cc, b.reporter(plat.String(), n, n, 0))
	if err != nil {
		return nil, fmt.Errorf("pack the customisation layer of %s: %w", sys, err)
	}
	custom.Key = cc.key
	imgLayers = append(imgLayers, custom)
	if err := b.unshare(ctx, imgLayers, append(contents, cc)); err != nil {
		return nil, fmt.Errorf("pack a layer of %s: %w", sys, err)
	}

	opts := b.req.Image
	opts.NoCACert = !cc.caCert
	// The labels registries read; --labels override them.
	description, licenses := b.imageMeta(res)
	labels := image.LabelsFrom(b.req.Annotations, description, licenses)
	for k, v := range b.req.Image.Labels {
		labels[k] = v
	}
	opts.Labels = labels
	if b.appEntrypoint() {
		app := res.Packages[len(res.Packages)-1] // the installable comes last
		if app.Program() == "" {
			return nil, fmt.Errorf("%s: cannot tell its main program for %s (its meta did not evaluate): pass --entrypoint or --cmd", flakeref.Redacted(app.Attr), sys)
		}
		// nix run fails at once on a package without the program it
		// names; the image would only fail when started.
		if _, err := os.Lstat(app.Program()); err != nil {
			return nil, fmt.Errorf("%s has no program bin/%s for %s (its meta.mainProgram, else its name): pass --entrypoint or --cmd to say what the image starts", flakeref.Redacted(app.Attr), app.Meta.MainProgram, sys)
		}
		opts.Entrypoint = []string{app.Program()}
	}
	for _, p := range res.Packages {
		if p.Installable != nil && p.Meta != nil {
			b.noteMainProgram(p)
		}
	}
	if u := b.req.User; u != nil {
		opts = asUser(opts, u)
	}
	img, err := image.NewImage(v1.Platform{OS: plat.OS, Architecture: plat.Architecture, Variant: plat.Variant}, imgLayers, opts)
	if err != nil {
		return nil, fmt.Errorf("assemble the image for %s: %w", sys, err)
	}
	// The config is known now: it can travel while the last layers do.
	if cfg, err := partial.ConfigLayer(img); err == nil {
		b.req.Destination.Offer(ctx, cfg)
	}
	if b.req.SBOM != nil {
		if err := b.documents(img, g, res); err != nil {
			return nil, err
		}
	}
	return img, nil
}

// layers makes the blob of each of contents and hands it to done with its
// index. Layers the cache may hold are only hashed to be verified, one
// per core at once; the others are packed one after the other in the
// plan's order (the packer itself keeps every core busy, and big layers
// stream to the registry while they are packed). The first error stops
// starting more layers, and is returned.
//
// ctx is not narrowed for the layers themselves: it also carries the
// uploads they start, which outlive this call. On an error the caller
// cancels the build.
func (b *builder) layers(ctx context.Context, contents []content, done func(int, image.Blob), report func(int) *reporter) error {
	var packs, verifies []int
	for i, c := range contents {
		cached, err := b.mayBeCached(ctx, c)
		if err != nil {
			return err
		}
		if cached {
			verifies = append(verifies, i)
		} else {
			packs = append(packs, i)
		}
	}
	g, failed := errgroup.WithContext(ctx)
	one := func(i int) error {
		if err := failed.Err(); err != nil {
			return err // another layer failed, or the build was cancelled
		}
		l, err := b.layer(ctx, contents[i], report(i))
		if err != nil {
			return err
		}
		done(i, l)
		return nil
	}
	g.Go(func() error {
		var cores errgroup.Group
		cores.SetLimit(runtime.GOMAXPROCS(0))
		for _, i := range verifies {
			cores.Go(func() error { return one(i) })
		}
		return cores.Wait()
	})
	g.Go(func() error {
		for _, i := range packs {
			if err := one(i); err != nil {
				return err
			}
		}
		return nil
	})
	return g.Wait()
}

// content is what a layer holds: its key (everything its bytes depend on
// besides the packing options), about how many bytes it packs, and how to
// write it.
type content struct {
	key  string
	size int64 // uncompressed, as Nix counts it; 0 for unknown
	pack func(w io.Writer, o archive.Options) (archive.Blob, error)
	// caCert: the customisation layer holds the CA bundle.
	caCert bool
}

// pathsContent is a layer of store paths as the plan grouped them.
func pathsContent(key string, paths []string, size int64) content {
	return content{key: key, size: size, pack: func(w io.Writer, o archive.Options) (archive.Blob, error) {
		return archive.PackPaths(w, paths, o)
	}}
}

// customisationContent is the layer that makes the packages usable from
// the image's root: symlinks into bin/, lib/, ..., /tmp and the CA bundle.
//
// The installables (the team's own software) come first: where they and
// nixpkgs' packages provide the same file, theirs wins. Every image gets
// an /etc/passwd and /etc/group naming root and nobody, and root's home;
// a user gets its entries, a home directory it owns and, when the image
// lacks it, its working directory (userWorkdir). Each file two
// packages provide is told on log, one line each, once however often the
// layer is packed (a cache check packs it too).
func customisationContent(res *nix.Result, u *account.User, workdir string, log io.Writer, platform string) content {
	c := archive.Customisation{}
	pkgs := append([]nix.Package(nil), res.Packages...)
	sort.SliceStable(pkgs, func(i, j int) bool { return pkgs[i].Installable != nil && pkgs[j].Installable == nil })
	// Root and nobody are in every image; a package's own files win
	// unless a user must be added.
	c.Files = []archive.File{
		{Path: "etc/passwd", Data: account.Passwd(u), Mode: 0o644, IfMissing: u == nil},
		{Path: "etc/group", Data: account.GroupFile(u), Mode: 0o644, IfMissing: u == nil},
	}
	c.Dirs = []archive.Dir{{Path: strings.TrimPrefix(account.RootHome, "/"), Mode: 0o700, IfMissing: true}}
	if u != nil {
		c.Dirs = append(c.Dirs, archive.Dir{Path: strings.TrimPrefix(u.Home(), "/"), Mode: 0o755, UID: u.UID, GID: u.GID})
		if d, ok := userWorkdir(u, workdir); ok {
			c.Dirs = append(c.Dirs, d)
		}
	}
	owners := map[string]string{} // store path → the package's name
	for _, pkg := range pkgs {
		for _, p := range pkg.Paths() {
			owners[p] = flakeref.Redacted(pkg.Attr) // for the log
		}
		c.Packages = append(c.Packages, pkg.Paths()...)
		if pkg.Attr == "cacert" {
			if paths := pkg.Paths(); len(paths) > 0 {
				c.CACert = paths[0]
			}
		}
	}
	key := archive.CustomisationKey(c)
	var told sync.Once
	return content{key: key, caCert: c.CACert != "", pack: func(w io.Writer, o archive.Options) (archive.Blob, error) {
		var warnings []string
		c := c
		c.OnCollision = func(name, kept, dropped string) {
			warnings = append(warnings, collisionWarning(platform, name, kept, dropped, owners))
		}
		blob, err := archive.PackCustomisation(w, c, o)
		if err == nil {
			told.Do(func() {
				for _, line := range warnings {
					fmt.Fprintln(log, line)
				}
			})
		}
		return blob, err
	}}
}

// userWorkdir is the user's working directory for the customisation
// layer: Docker, containerd and runc make a missing one owned by root,
// where the user cannot write. The root, the store and the home are left
// out, and IfMissing leaves what the image has already (/tmp, a
// package's directory) as it is.
func userWorkdir(u *account.User, workdir string) (archive.Dir, bool) {
	if workdir == "" || workdir == "/" || workdir == u.Home() || workdir == "/nix" || strings.HasPrefix(workdir, "/nix/") {
		return archive.Dir{}, false
	}
	return archive.Dir{Path: strings.TrimPrefix(workdir, "/"), Mode: 0o755, UID: u.UID, GID: u.GID, IfMissing: true}, true
}

// collisionRule is how the customisation layer picks between two
// packages' files, as the warning tells it.
const collisionRule = "the earlier package wins: your own flake packages first, then nixpkgs packages by name"

// collisionWarning is the line telling that two packages provide the
// image path name: which package's file (the link target kept) went in,
// which one's (dropped) did not, and why.
func collisionWarning(platform, name, kept, dropped string, owners map[string]string) string {
	keptBy := "the directory other packages provide"
	if o := ownerOf(kept, owners); o != "" {
		keptBy = o + "'s " + kept
	}
	return fmt.Sprintf("[%s] warning: /%s is provided by more than one package: kept %s, dropped %s's %s (%s)",
		platform, name, keptBy, ownerOf(dropped, owners), dropped, collisionRule)
}

// ownerOf names the package whose store path holds target, or "".
func ownerOf(target string, owners map[string]string) string {
	for p, name := range owners {
		if target == p || strings.HasPrefix(target, p+"/") {
			return name
		}
	}
	return ""
}

// noteMainProgram records what the image starts, once per build.
func (b *builder) noteMainProgram(app nix.Package) {
	b.sbomMu.Lock()
	defer b.sbomMu.Unlock()
	for i := range b.installables {
		if b.installables[i].Installable == flakeref.Redacted(app.Attr) { // as recorded
			b.installables[i].MainProgram = app.Meta.MainProgram
		}
	}
}

// imageMeta is the description and licence (its SPDX id, when it has
// exactly one) of what the image is for: its one installable, else its
// one package named directly; "" where that is not one package, or its
// meta says nothing.
func (b *builder) imageMeta(res *nix.Result) (description, licenses string) {
	var main []nix.Package
	for _, p := range res.Packages {
		if len(b.req.Spec.Installables) > 0 {
			if p.Installable != nil {
				main = append(main, p)
			}
		} else if slices.Contains(b.req.Spec.Requested, p.Attr) {
			main = append(main, p)
		}
	}
	if len(main) != 1 || main[0].Meta == nil {
		return "", ""
	}
	m := main[0].Meta
	if len(m.Licenses) != 1 {
		// A list of licences in nixpkgs says neither AND nor OR.
		return m.Description, ""
	}
	// The label is an SPDX expression: an id on the SPDX list, or none.
	id, _ := sbom.SPDXID(m.Licenses[0].SPDXID)
	return m.Description, id
}

// asUser is the image config opts for running as u: its numeric user,
// and unless opts says otherwise its HOME and, as distroless's nonroot
// images have it, its home as the working directory rather than the
// runtime's /, so that what the app writes to ./ works.
func asUser(opts image.Options, u *account.User) image.Options {
	opts.User = u.Config()
	if !hasEnv(opts.Env, "HOME") {
		opts.Env = append(append([]string(nil), opts.Env...), "HOME="+u.Home())
	}
	if opts.WorkingDir == "" {
		opts.WorkingDir = u.Home()
	}
	return opts
}

// hasEnv tells whether env (KEY=VALUE entries) sets key.
func hasEnv(env []string, key string) bool {
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			return true
		}
	}
	return false
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
