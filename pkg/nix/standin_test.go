//go:build integration

package nix

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/internal/testenv"
	"github.com/nixery-action/nixery-action/pkg/layers"
	"github.com/nixery-action/nixery-action/pkg/storepath"
)

// standInAttrs is every package of the stand-in nixpkgs.
var standInAttrs = []string{
	"bashInteractive", "busybox", "cacert", "coreutils", "glibc", "hello", "iana-etc",
	"largefile", "moreutils", "nano", "ncurses", "python3Packages.requests",
}

// standInRefs are the direct references each stand-in package must have:
// real ones, found by Nix in the files.
var standInRefs = map[string][]string{
	"bashInteractive":          {"glibc", "ncurses"},
	"busybox":                  nil,
	"cacert":                   nil,
	"coreutils":                {"busybox"},
	"glibc":                    nil,
	"hello":                    {"glibc"},
	"iana-etc":                 nil,
	"largefile":                nil,
	"moreutils":                {"bashInteractive"},
	"nano":                     {"bashInteractive"},
	"ncurses":                  {"glibc"},
	"python3Packages.requests": {"cacert"},
}

// TestBuildStandIn builds every stand-in package for both systems and
// checks what the rest of the project relies on: real closures with the
// expected references, and programs that run from the store alone.
func TestBuildStandIn(t *testing.T) {
	testenv.Require(t, "nix")
	var log bytes.Buffer
	b := &Builder{Flake: standIn(t), Log: &log}
	seen := map[string]string{} // store path → system
	for _, system := range []string{"x86_64-linux", "aarch64-linux"} {
		t.Run(system, func(t *testing.T) {
			res, err := b.Build(context.Background(), system, standInAttrs)
			assert.NilError(t, err, "log:\n%s", log.String())
			assert.Equal(t, res.System, system)
			assert.Assert(t, strings.Contains(res.Flake, "narHash="), res.Flake)
			assert.Equal(t, len(res.Packages), len(standInAttrs))

			byPath := map[string]string{} // output path → attribute
			out := map[string]string{}    // attribute → output path
			for i, p := range res.Packages {
				assert.Equal(t, p.Attr, standInAttrs[i])
				assert.Assert(t, strings.HasSuffix(p.DrvPath, ".drv"), p.DrvPath)
				assert.DeepEqual(t, mapKeys(p.Outputs), []string{"out"})
				path := p.Outputs["out"]
				assert.Assert(t, storepath.Valid(path), path)
				other, dup := seen[path]
				assert.Assert(t, !dup, "%s built for both %s and %s", path, other, system)
				seen[path] = system
				byPath[path], out[p.Attr] = p.Attr, path
				marker, err := os.ReadFile(filepath.Join(path, "nix-support", "system"))
				assert.NilError(t, err)
				assert.Equal(t, strings.TrimSpace(string(marker)), system)
			}
			assert.Equal(t, len(res.Roots()), len(standInAttrs))

			// The closure parses, holds exactly the packages, and each
			// package references what it links to or runs.
			g, err := layers.ParseGraph(res.Closure)
			assert.NilError(t, err)
			assert.NilError(t, g.SetRoots(res.Roots()))
			assert.Equal(t, len(g.Paths), len(standInAttrs))
			for i, p := range g.Paths {
				attr, ok := byPath[p.Name]
				assert.Assert(t, ok, "unexpected path %s in the closure", p.Name)
				var refs []string
				for _, r := range g.Refs[i] {
					refs = append(refs, byPath[g.Paths[r].Name])
				}
				sort.Strings(refs)
				assert.DeepEqual(t, refs, standInRefs[attr])
				assert.Assert(t, p.NarSize > 0)
			}
			large, err := os.Stat(filepath.Join(out["largefile"], "share", "largefile", "data.bin"))
			assert.NilError(t, err)
			assert.Assert(t, large.Size() >= 4<<20)
			for _, f := range []string{"etc/ssl/certs/ca-bundle.crt", "etc/ssl/certs/ca-certificates.crt"} {
				data, err := os.ReadFile(filepath.Join(out["cacert"], f))
				assert.NilError(t, err)
				assert.Assert(t, is.Contains(string(data), "-----BEGIN CERTIFICATE-----"))
			}
			for _, f := range []string{"etc/protocols", "etc/services"} {
				data, err := os.ReadFile(filepath.Join(out["iana-etc"], f))
				assert.NilError(t, err)
				assert.Assert(t, is.Contains(string(data), "tcp"))
			}

			if system != "x86_64-linux" {
				return
			}
			// Programs load their libraries from the store, not the host.
			glibc := out["glibc"]
			checkELF(t, filepath.Join(out["hello"], "bin", "hello"), glibc, glibc+"/lib")
			checkELF(t, filepath.Join(out["bashInteractive"], "bin", "bash"), glibc, out["ncurses"]+"/lib:"+glibc+"/lib")

			assert.Equal(t, runClean(t, filepath.Join(out["hello"], "bin", "hello")), "Hello, world!\n")
			assert.Equal(t, runClean(t, filepath.Join(out["bashInteractive"], "bin", "bash"), "-c", "echo $((6*7))"), "42\n")
			assert.Equal(t, runClean(t, filepath.Join(out["coreutils"], "bin", "echo"), "hi"), "hi\n")
			assert.Equal(t, runClean(t, filepath.Join(out["busybox"], "bin", "busybox"), "true"), "")
			cmd := exec.Command(filepath.Join(out["moreutils"], "bin", "sponge"))
			cmd.Stdin = strings.NewReader("soaked\n")
			cmd.Env = []string{"PATH=" + out["coreutils"] + "/bin"}
			got, err := cmd.Output()
			assert.NilError(t, err)
			assert.Equal(t, string(got), "soaked\n")
		})
	}
}

// checkELF checks a program's interpreter and library path.
func checkELF(t *testing.T, path, glibc, runpath string) {
	t.Helper()
	f, err := elf.Open(path)
	assert.NilError(t, err)
	defer f.Close()
	var interp string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			data := make([]byte, p.Filesz)
			_, err := p.ReadAt(data, 0)
			assert.NilError(t, err)
			interp = strings.TrimRight(string(data), "\x00")
		}
	}
	assert.Assert(t, strings.HasPrefix(interp, glibc+"/lib/ld-linux"), "interpreter %s", interp)
	rp, err := f.DynString(elf.DT_RUNPATH)
	assert.NilError(t, err)
	assert.DeepEqual(t, rp, []string{runpath})
}

// runClean runs a program with an empty environment and returns its stdout.
func runClean(t *testing.T, prog string, args ...string) string {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Env = []string{}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	assert.NilError(t, err, "%s: %s", prog, stderr.String())
	return string(out)
}

func mapKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestBuildDefaultOutput: a package whose meta.outputsToInstall names a
// second output (man pages) is realised as its default output alone, as
// every Nix does it here (this machine's; e2e TestFreshStoreNix226 has
// Nix 2.26, whose own nix build would build both), with nothing of the
// other output in the closure.
func TestBuildDefaultOutput(t *testing.T) {
	testenv.Require(t, "nix")
	var log bytes.Buffer
	b := &Builder{Flake: standIn(t), Log: &log}
	res, err := b.Build(context.Background(), "x86_64-linux", []string{"withman"})
	assert.NilError(t, err, "log:\n%s", log.String())
	assert.Equal(t, len(res.Packages), 1)
	assert.DeepEqual(t, mapKeys(res.Packages[0].Outputs), []string{"bin"})
	assert.Check(t, !strings.Contains(string(res.Closure), "-withman-man"), "the man output is in the closure")
	assert.Equal(t, runClean(t, filepath.Join(res.Packages[0].Outputs["bin"], "bin", "withman"), "ok"), "ok\n")
}

// TestBuildTwoOutputs: two outputs of one derivation requested together
// (curl curl.dev) give each package the output it names, and the image
// both; Nix 2.8 reports them as one result, later Nix as one per
// installable with the same derivation.
func TestBuildTwoOutputs(t *testing.T) {
	testenv.Require(t, "nix")
	var log bytes.Buffer
	b := &Builder{Flake: standIn(t), Log: &log}
	res, err := b.Build(context.Background(), "x86_64-linux", []string{"withman", "withman.man"})
	assert.NilError(t, err, "log:\n%s", log.String())
	assert.Assert(t, is.Len(res.Packages, 2))
	bin, man := res.Packages[0], res.Packages[1]
	assert.Equal(t, bin.Attr, "withman")
	assert.Equal(t, man.Attr, "withman.man")
	assert.Equal(t, bin.DrvPath, man.DrvPath)
	assert.DeepEqual(t, mapKeys(bin.Outputs), []string{"bin"})
	assert.DeepEqual(t, mapKeys(man.Outputs), []string{"man"})
	assert.Check(t, strings.HasSuffix(bin.Outputs["bin"], "-withman-bin"), bin.Outputs["bin"])
	assert.Check(t, strings.HasSuffix(man.Outputs["man"], "-withman-man"), man.Outputs["man"])
	roots := []string{bin.Outputs["bin"], man.Outputs["man"]}
	sort.Strings(roots)
	assert.DeepEqual(t, res.Roots(), roots)
	_, err = os.Stat(filepath.Join(man.Outputs["man"], "share", "man", "man1", "withman.1"))
	assert.NilError(t, err)
}
