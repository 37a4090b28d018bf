package nix

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/nixery-action/nixery-action/pkg/spec"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// The outputs below are those of Nix versions that cannot be installed on
// the test machines. Each names the upstream file that prints it, at the
// version given; values come from the upstream reports named.

// determinateMetadata is `nix flake metadata --json github:NixOS/nixpkgs`
// on Determinate Nix 3.22 with lazy trees: no "path", because the source
// is not in the store (DeterminateSystems/nix-src v3.22.2,
// src/nix/flake.cc, CmdFlakeMetadata::run: "path" only when
// store->isValidPath). Revision, narHash and fingerprint are those of
// DeterminateSystems/nix-src issue #589; nlohmann::json prints keys sorted.
const determinateMetadata = `{"description":"A collection of packages for the Nix package manager","fingerprint":"9d2bb51374f09939b9e03aface6a573df2f7b0f68d9c8edd15d90dc5ba191a7b","lastModified":1786195404,"locked":{"lastModified":1786195404,"narHash":"sha256-et1qSyVmYH1K3nGaYCHvcf6KPDe2YraKXXhAg/MwFwE=","owner":"NixOS","repo":"nixpkgs","rev":"a1cc58a6e0d2b54da15eaeeca726e09ead1123a5","type":"github"},"locks":{"nodes":{"root":{}},"root":"root","version":7},"original":{"owner":"NixOS","repo":"nixpkgs","type":"github"},"originalUrl":"github:NixOS/nixpkgs","resolved":{"owner":"NixOS","repo":"nixpkgs","type":"github"},"resolvedUrl":"github:NixOS/nixpkgs","revision":"a1cc58a6e0d2b54da15eaeeca726e09ead1123a5","url":"github:NixOS/nixpkgs/a1cc58a6e0d2b54da15eaeeca726e09ead1123a5?narHash=sha256-et1qSyVmYH1K3nGaYCHvcf6KPDe2YraKXXhAg/MwFwE%3D"}`

// dirtyMetadata is `nix flake metadata --json /home/u/nixpkgs` on Nix
// 2.35 for a git checkout with uncommitted changes: no rev, a
// dirtyRevision, and a "path" that names a store path Nix never wrote
// (NixOS/nix 2.35.2, src/nix/flake.cc: "Flakes do not get copied to the
// store, but are instead mounted at their expected store paths").
const dirtyMetadata = `{"dirtyRevision":"0f8a5d3cbd1f8b5ad3c1f8b1c3e4e6c0a5b1d2e3-dirty","lastModified":1786195404,"locked":{"dirtyRev":"0f8a5d3cbd1f8b5ad3c1f8b1c3e4e6c0a5b1d2e3-dirty","dirtyShortRev":"0f8a5d3-dirty","lastModified":1786195404,"type":"git","url":"file:///home/u/nixpkgs"},"locks":{"nodes":{"root":{}},"root":"root","version":7},"original":{"type":"git","url":"file:///home/u/nixpkgs"},"originalUrl":"git+file:///home/u/nixpkgs","path":"/nix/store/7wjb4nrr4rl9pfr1wj9mfgc9qh8fbfsb-source","resolved":{"type":"git","url":"file:///home/u/nixpkgs"},"resolvedUrl":"git+file:///home/u/nixpkgs","url":"git+file:///home/u/nixpkgs"}`

// dirtyPrefetch is `nix flake prefetch --json git+file:///home/u/nixpkgs`
// on Nix 2.35 (src/nix/flake.cc, CmdFlakePrefetch::run: storePath, hash,
// original, locked), which does copy the source.
const dirtyPrefetch = `{"hash":"sha256-MIfaEjtgsUINambJiSikQ1onJPOTCwW2lkau4MDN30A=","locked":{"dirtyRev":"0f8a5d3cbd1f8b5ad3c1f8b1c3e4e6c0a5b1d2e3-dirty","dirtyShortRev":"0f8a5d3-dirty","lastModified":1786195404,"type":"git","url":"file:///home/u/nixpkgs"},"original":{"type":"git","url":"file:///home/u/nixpkgs"},"storePath":"/nix/store/g8dq2k3b8qmixdgz490lqp1s1zy46d9g-source"}`

// copyMetadata is `nix flake metadata --json` of that copy, locked by its
// hash (the same file and version).
const copyMetadata = `{"lastModified":1786195404,"locked":{"lastModified":1786195404,"narHash":"sha256-MIfaEjtgsUINambJiSikQ1onJPOTCwW2lkau4MDN30A=","path":"/nix/store/g8dq2k3b8qmixdgz490lqp1s1zy46d9g-source","type":"path"},"locks":{"nodes":{"root":{}},"root":"root","version":7},"original":{"path":"/nix/store/g8dq2k3b8qmixdgz490lqp1s1zy46d9g-source","type":"path"},"originalUrl":"path:/nix/store/g8dq2k3b8qmixdgz490lqp1s1zy46d9g-source","path":"/nix/store/g8dq2k3b8qmixdgz490lqp1s1zy46d9g-source","resolved":{"path":"/nix/store/g8dq2k3b8qmixdgz490lqp1s1zy46d9g-source","type":"path"},"resolvedUrl":"path:/nix/store/g8dq2k3b8qmixdgz490lqp1s1zy46d9g-source","url":"path:/nix/store/g8dq2k3b8qmixdgz490lqp1s1zy46d9g-source?lastModified=1786195404&narHash=sha256-MIfaEjtgsUINambJiSikQ1onJPOTCwW2lkau4MDN30A%3D"}`

// nix28Prefetch is what Nix 2.8 prints for the same (NixOS/nix 2.8.0,
// src/nix/flake.cc: storePath and hash only, as in the example of
// src/nix/flake-prefetch.md).
const nix28Prefetch = `{"hash":"sha256-MIfaEjtgsUINambJiSikQ1onJPOTCwW2lkau4MDN30A=","storePath":"/nix/store/g8dq2k3b8qmixdgz490lqp1s1zy46d9g-source"}`

// A github reference on Determinate Nix locks to its URL in one call,
// with no "path" in the metadata.
func TestLockWithoutStorePath(t *testing.T) {
	f := newFakeNix(t)
	f.answer("metadata", 1, determinateMetadata, "", 0)
	b := &Builder{Flake: "github:NixOS/nixpkgs", Nix: f.path}
	l, err := b.Lock(context.Background())
	assert.NilError(t, err)
	assert.DeepEqual(t, l, Locked{
		URL:          "github:NixOS/nixpkgs/a1cc58a6e0d2b54da15eaeeca726e09ead1123a5?narHash=sha256-et1qSyVmYH1K3nGaYCHvcf6KPDe2YraKXXhAg/MwFwE%3D",
		Rev:          "a1cc58a6e0d2b54da15eaeeca726e09ead1123a5",
		NarHash:      "sha256-et1qSyVmYH1K3nGaYCHvcf6KPDe2YraKXXhAg/MwFwE=",
		LastModified: 1786195404,
	})
	// Locked once: later calls and Resolve ask Nix nothing more.
	url, err := b.Resolve(context.Background())
	assert.NilError(t, err)
	assert.Equal(t, url, l.URL)
	assert.DeepEqual(t, f.calls(), [][]string{{"flake", "metadata", "--json", "--no-write-lock-file", "--", "github:NixOS/nixpkgs"}})
}

// A dirty git checkout on Nix 2.35: the "path" of its metadata does not
// exist, so the source is copied with nix flake prefetch and the copy is
// locked by its hash.
func TestLockDirtyGitPrefetches(t *testing.T) {
	f := newFakeNix(t)
	f.answer("metadata", 1, dirtyMetadata, "warning: Git tree '/home/u/nixpkgs' is dirty\n", 0)
	f.answer("prefetch", 1, dirtyPrefetch, "", 0)
	f.answer("metadata", 2, copyMetadata, "", 0)
	var log bytes.Buffer
	b := &Builder{Flake: "/home/u/nixpkgs", Nix: f.path, Log: &log}
	l, err := b.Lock(context.Background())
	assert.NilError(t, err)
	assert.DeepEqual(t, l, Locked{
		URL:          "path:/nix/store/g8dq2k3b8qmixdgz490lqp1s1zy46d9g-source?narHash=sha256-MIfaEjtgsUINambJiSikQ1onJPOTCwW2lkau4MDN30A%3D",
		NarHash:      "sha256-MIfaEjtgsUINambJiSikQ1onJPOTCwW2lkau4MDN30A=",
		LastModified: 1786195404,
	})
	calls := f.calls()
	assert.Equal(t, len(calls), 3)
	assert.DeepEqual(t, calls[1], []string{"flake", "prefetch", "--json", "--option", "flake-registry", noRegistry, "--", "git+file:///home/u/nixpkgs"})
	assert.DeepEqual(t, calls[2], []string{"flake", "metadata", "--json", "--no-write-lock-file", "--",
		"path:/nix/store/g8dq2k3b8qmixdgz490lqp1s1zy46d9g-source?narHash=sha256-MIfaEjtgsUINambJiSikQ1onJPOTCwW2lkau4MDN30A%3D"})
	assert.Assert(t, !strings.Contains(strings.Join(calls[2], " "), "7wjb4nrr4rl9pfr1wj9mfgc9qh8fbfsb"), "used the store path Nix never wrote")
	assert.Assert(t, is.Contains(log.String(), "[nix] warning: Git tree '/home/u/nixpkgs' is dirty"))
	assert.Assert(t, is.Contains(log.String(), "[nix] /home/u/nixpkgs cannot be locked (uncommitted changes?)"))
}

func TestPrefetchRef(t *testing.T) {
	for _, tc := range []struct{ out, dir, want string }{
		{nix28Prefetch, "", "path:/nix/store/g8dq2k3b8qmixdgz490lqp1s1zy46d9g-source?narHash=sha256-MIfaEjtgsUINambJiSikQ1onJPOTCwW2lkau4MDN30A%3D"},
		{dirtyPrefetch, "", "path:/nix/store/g8dq2k3b8qmixdgz490lqp1s1zy46d9g-source?narHash=sha256-MIfaEjtgsUINambJiSikQ1onJPOTCwW2lkau4MDN30A%3D"},
		{nix28Prefetch, "pkgs/top", "path:/nix/store/g8dq2k3b8qmixdgz490lqp1s1zy46d9g-source/pkgs/top"},
	} {
		got, err := prefetchRef("x", []byte(tc.out), tc.dir)
		assert.NilError(t, err)
		assert.Equal(t, got, tc.want)
	}
	for _, bad := range []string{`{}`, `{"storePath":"relative","hash":"sha256-x"}`, `{"storePath":"/nix/store/x"}`, `[`, `{"storePath":"/nix/store/x?dir=a","hash":"h"}`, `{"storePath":"/nix/store/../../etc","hash":"h"}`, `{"storePath":"/etc/passwd","hash":"h"}`} {
		_, err := prefetchRef("copying x", []byte(bad), "")
		assert.ErrorContains(t, err, "copying x: ")
	}
	// A store elsewhere (NIX_STORE_DIR) is named.
	_, err := prefetchRef("copying x", []byte(`{"storePath":"/x/g8dq2k3b8qmixdgz490lqp1s1zy46d9g-source","hash":"sha256-MIfaEjtgsUINambJiSikQ1onJPOTCwW2lkau4MDN30A="}`), "")
	assert.ErrorContains(t, err, "copying x: Nix's store is in /x, but images need Nix's store at /nix/store")
}

func TestParseMetadata(t *testing.T) {
	// Some Nix versions name the locked reference lockedUrl.
	m, err := parseMetadata("x", []byte(`{"lockedUrl":"github:a/b/c","locked":{"type":"github","rev":"c"}}`))
	assert.NilError(t, err)
	assert.Equal(t, m.URL, "github:a/b/c")
	for _, bad := range []string{`{}`, `{"url":"x#y"}`, `{"url":"--impure"}`, `nope`} {
		_, err := parseMetadata("reading x", []byte(bad))
		assert.ErrorContains(t, err, "reading x: ")
	}
}

// One Builder building two systems at once locks the flake once, and that
// lock is the first Nix command and runs alone (the others wait for it).
func TestOneLockForAllSystems(t *testing.T) {
	f := newFakeNix(t)
	f.answer("metadata", 1, determinateMetadata, "", 0)
	for k := 1; k <= 2; k++ {
		f.answer("eval", k, `{"hasSystem":true,"packages":[{"attr":"hello","drvPath":"/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-hello.drv","status":"package","output":"out"}]}`, "", 0)
		f.answer("build", k, `[{"drvPath":"/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-hello.drv","outputs":{"out":"/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-hello"}}]`, "", 0)
		f.answer("path-info", k, `{"/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-hello":{"closureSize":1,"narSize":1,"references":[]}}`, "", 0)
	}
	b := &Builder{Flake: "github:NixOS/nixpkgs", Nix: f.path}
	errs := make(chan error, 2)
	results := make(chan *Result, 2)
	for _, system := range []string{"x86_64-linux", "aarch64-linux"} {
		go func() {
			res, err := b.Build(context.Background(), system, []string{"hello"})
			results <- res
			errs <- err
		}()
	}
	for range 2 {
		assert.NilError(t, <-errs)
		res := <-results
		assert.Equal(t, res.Locked.Rev, "a1cc58a6e0d2b54da15eaeeca726e09ead1123a5")
	}
	calls := f.calls()
	assert.Equal(t, len(calls), 7) // one lock, then eval, build and path-info per system
	assert.DeepEqual(t, calls[0][:2], []string{"flake", "metadata"})
	for _, c := range calls[1:] {
		assert.Assert(t, c[0] != "flake", "locked again: %v", c)
	}
}

// A token in a flake reference never reaches nixery's own messages (Nix's
// own lines hide it already): the error of a failed lock shows REDACTED.
func TestLockErrorHidesCredentials(t *testing.T) {
	f := newFakeNix(t)
	f.answer("metadata", 1, "", "error: unable to download 'https://127.0.0.1:1/x.git'\n", 1)
	for _, ref := range []string{"git+https://oauth2:s3cr3t-tok@127.0.0.1:1/x.git", "https://127.0.0.1:1/x.tar.gz?access_token=s3cr3t-tok"} {
		var log bytes.Buffer
		_, err := (&Builder{Flake: ref, Nix: f.path, Log: &log}).Lock(context.Background())
		assert.Assert(t, err != nil)
		assert.Assert(t, !strings.Contains(err.Error(), "s3cr3t-tok"), err.Error())
		assert.Assert(t, is.Contains(err.Error(), "REDACTED"))
		assert.Assert(t, !strings.Contains(log.String(), "s3cr3t-tok"), log.String())
	}
	_, err := (&Builder{Flake: "-git+https://oauth2:s3cr3t-tok@h/x.git", Nix: f.path}).Lock(context.Background())
	assert.Assert(t, err != nil && !strings.Contains(err.Error(), "s3cr3t-tok"), "%v", err)
}

// Nix quotes the flake references it is given in its own messages: the
// credentials in them are hidden from the log and the error, for
// nixpkgs' reference and an installable's flake alike.
func TestNixOutputHidesCredentials(t *testing.T) {
	app := "git+https://oauth2:s3cr3t-tok@127.0.0.1:1/app.git"
	for b, said := range map[*Builder]string{
		{Flake: "https://127.0.0.1:1/x.tar.gz?access_token=s3cr3t-tok"}:                                    "error: unable to download 'https://127.0.0.1:1/x.tar.gz?access_token=s3cr3t-tok'\n",
		{Flake: "path:/x", Installables: []spec.Installable{{Flake: app, Attr: "app", Ref: app + "#app"}}}: "warning: fetching " + app + "\nerror: cannot lock " + app + "\n",
	} {
		f := newFakeNix(t)
		f.answer("metadata", 1, "", said, 1)
		var log bytes.Buffer
		b.Nix, b.Log = f.path, &log
		_, err := b.Lock(context.Background())
		assert.Assert(t, err != nil)
		assert.Check(t, !strings.Contains(err.Error(), "s3cr3t-tok"), err.Error())
		assert.Check(t, !strings.Contains(log.String(), "s3cr3t-tok"), log.String())
		assert.Check(t, is.Contains(log.String()+err.Error(), "REDACTED"))
	}
}

// Two outputs of one derivation (curl curl.dev): Nix 2.8 reports them as
// one result, Nix 2.26 as one result each with the same derivation;
// either way each package has the output it names, and both are roots.
func TestTwoOutputsOfOneDerivation(t *testing.T) {
	const (
		drv = "/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-curl.drv"
		bin = "/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-curl-bin"
		dev = "/nix/store/h5wkd9frr45pa74if5gpz9j7mifg27fh-curl-dev"
	)
	for name, built := range map[string]string{
		"Nix 2.8":  `[{"drvPath":"` + drv + `","outputs":{"bin":"` + bin + `","dev":"` + dev + `"}}]`,
		"Nix 2.26": `[{"drvPath":"` + drv + `","outputs":{"bin":"` + bin + `"}},{"drvPath":"` + drv + `","outputs":{"dev":"` + dev + `"}}]`,
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeNix(t)
			f.answer("metadata", 1, determinateMetadata, "", 0)
			f.answer("eval", 1, `{"hasSystem":true,"packages":[`+
				`{"attr":"curl","drvPath":"`+drv+`","status":"package","output":"bin"},`+
				`{"attr":"curl.dev","drvPath":"`+drv+`","status":"package","output":"dev"}]}`, "", 0)
			f.answer("build", 1, built, "", 0)
			f.answer("path-info", 1, `{"`+bin+`":{"closureSize":1,"narSize":1,"references":[]},"`+dev+`":{"closureSize":1,"narSize":1,"references":[]}}`, "", 0)
			res, err := (&Builder{Flake: "github:NixOS/nixpkgs", Nix: f.path}).Build(context.Background(), "x86_64-linux", []string{"curl", "curl.dev"})
			assert.NilError(t, err)
			assert.DeepEqual(t, res.Packages[0].Outputs, map[string]string{"bin": bin})
			assert.DeepEqual(t, res.Packages[1].Outputs, map[string]string{"dev": dev})
			assert.DeepEqual(t, res.Roots(), []string{dev, bin})
		})
	}
	// An output nix build did not report is an error, not a package
	// without outputs.
	f := newFakeNix(t)
	f.answer("metadata", 1, determinateMetadata, "", 0)
	f.answer("eval", 1, `{"hasSystem":true,"packages":[{"attr":"curl.dev","drvPath":"`+drv+`","status":"package","output":"dev"}]}`, "", 0)
	f.answer("build", 1, `[{"drvPath":"`+drv+`","outputs":{"bin":"`+bin+`"}}]`, "", 0)
	_, err := (&Builder{Flake: "github:NixOS/nixpkgs", Nix: f.path}).Build(context.Background(), "x86_64-linux", []string{"curl.dev"})
	assert.ErrorContains(t, err, "nix build did not report output dev of curl.dev ("+drv+")")
}
