//go:build integration

package e2e

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nixery-action/nixery-action/internal/testenv"
)

// BenchmarkServe measures `nixery serve` against baselines taken in the
// same run, on loopback, with the stand-in nixpkgs:
//   - cold-ratio: a first pull of shell/hello/largefile (built on pull,
//     the client's platform copied by skopeo into an OCI layout, as a
//     docker pull is) over `nixery build --output oci:` of the same
//     packages (goal ≤ 1.10); crane-cold-ratio is the same pull by crane,
//     a client built with a current Go; cold-all-ratio copies every
//     platform, and the other figures are explained at cold;
//   - head-p99-ms: the 99th percentile of 1,000 manifest HEADs of an image
//     kept (goal < 10 ms);
//   - blob-ratio: MB/s of GETs of the image's largest blob from nixery
//     serve over the same blob from Debian's registry (goal ≥ 1).
//
// Run: go test -tags integration -run '^$' -bench Serve -benchtime 1x ./e2e
func BenchmarkServe(b *testing.B) {
	testenv.Require(b, "nix", "skopeo", "docker-registry")
	crane := buildCrane(b)
	name := "shell/hello/largefile"
	for b.Loop() {
		s := cold(b, crane, []string{"shell", "hello", "largefile"}, "")
		// A large image (270 MB of store paths), where packing weighs
		// more than the pull's fixed costs.
		cold(b, crane, []string{"hello", "gotree"}, "large-")

		url := "http://" + s.host + "/v2/" + name + "/manifests/latest"
		var lat []time.Duration
		for range 1000 {
			t0 := time.Now()
			resp, err := http.Head(url)
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[989].Microseconds())/1000, "head-p99-ms")

		// The largest blob, from both servers.
		raw := testenv.Run(b, "skopeo", "inspect", "--tls-verify=false", "--raw", "--override-arch", "amd64", "docker://"+s.host+"/"+name+":latest")
		var idx v1.IndexManifest
		if err := json.Unmarshal([]byte(raw), &idx); err != nil {
			b.Fatal(err)
		}
		mraw := testenv.Run(b, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+s.host+"/"+name+"@"+idx.Manifests[0].Digest.String())
		var m v1.Manifest
		if err := json.Unmarshal([]byte(mraw), &m); err != nil {
			b.Fatal(err)
		}
		big := m.Layers[0]
		for _, l := range m.Layers {
			if l.Size > big.Size {
				big = l
			}
		}
		reg := testenv.StartRegistry(b)
		testenv.Run(b, "skopeo", "copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false", "docker://"+s.host+"/"+name+":latest", "docker://"+reg+"/bench/serve:latest")
		ours := throughput(b, "http://"+s.host+"/v2/"+name+"/blobs/"+big.Digest.String(), big.Size)
		theirs := throughput(b, "http://"+reg+"/v2/bench/serve/blobs/"+big.Digest.String(), big.Size)
		b.ReportMetric(ours/theirs, "blob-ratio")
		b.ReportMetric(ours, "serve-MB/s")
		b.ReportMetric(float64(big.Size)/1e6, "blob-MB")
	}
}

// coldRounds is how many times each cold figure is measured, in turns
// (the CLI, then each pull), the fastest counting: load from elsewhere on
// the machine falls on all of them alike, and a stray second on one run
// does not decide a ratio.
const coldRounds = 3

// cold reports first pulls of packages, each from a server with storage
// of its own (nothing reused), built on pull, against `nixery
// build --output oci:` of the same image (both platforms), in three forms:
//   - cold-ratio: a client's pull, as docker pull and podman pull are:
//     the index, then the image of the client's platform (skopeo copy
//     with --override-arch amd64 into an OCI layout);
//   - crane-cold-ratio: the same pull by crane (crane pull --platform
//     linux/amd64 --format oci). Debian's skopeo is built with Go 1.19,
//     whose SHA-256 does not use the CPU's SHA instructions: it checks a
//     blob at about 270 MB/s, so the copy after the build weighs more in
//     its pull than the server's part does; crane-copy-s is crane's
//     pull of the image kept, what the client costs;
//   - cold-all-ratio: every platform's image copied (skopeo copy --all).
//
// build-ratio takes out what a warm --all copy of the same image costs
// (skopeo and the copy); cold-vs-cli-copy is the --all pull over the
// CLI's build plus skopeo copying the CLI's layout (--all) into another,
// what the client itself costs with no server at all. Each is the
// fastest of coldRounds. It returns the first server, which holds the
// image.
func cold(b *testing.B, crane string, packages []string, prefix string) *served {
	// The baseline: the CLI writing the same image to a layout (its
	// closure realised already, as the server's will be: both build
	// the same derivations, which the first of them realises).
	args := append([]string{"build", "--nixpkgs", standIn(), "--platforms", "linux/amd64,linux/arm64", "--output"}, "")
	var cliDir string
	build := func() {
		if cliDir != "" {
			os.RemoveAll(cliDir) // the last one stays, to compare
		}
		cliDir = filepath.Join(b.TempDir(), "cli")
		args[len(args)-1] = "oci:" + cliDir
		runNixery(b, append(args, packages...)...)
	}
	build()

	repo := "/" + strings.Join(packages, "/") + ":latest"
	timed := func(f func()) time.Duration {
		// Each starts with nothing of the others' left to write back,
		// which a first fsync would otherwise wait for.
		syscall.Sync()
		start := time.Now()
		f()
		return time.Since(start)
	}
	// Each pull is from a new server with storage of its own.
	var first *served
	pull := func(prog string, args ...string) time.Duration {
		storage, pulled := b.TempDir(), b.TempDir()
		s := startServe(b, storage)
		for i := range args {
			args[i] = strings.ReplaceAll(args[i], "{ref}", s.host+repo)
			args[i] = strings.ReplaceAll(args[i], "{dir}", filepath.Join(pulled, "pulled"))
		}
		d := timed(func() { testenv.Run(b, prog, args...) }) // after the server's start
		if first == nil {
			first = s
		} else {
			// Hundreds of MB each: gone at once, not at the end.
			s.stop(b)
			os.RemoveAll(storage)
		}
		os.RemoveAll(pulled)
		return d
	}
	const forever = time.Duration(math.MaxInt64)
	cli, coldPull, craneCold, coldAll, clientCopy, warm, craneWarm := forever, forever, forever, forever, forever, forever, forever
	for range coldRounds {
		cli = min(cli, timed(build))
		coldPull = min(coldPull, pull("skopeo", "--override-os", "linux", "--override-arch", "amd64", "copy", "--src-tls-verify=false", "docker://{ref}", "oci:{dir}:x"))
		craneCold = min(craneCold, pull(crane, "pull", "--insecure", "--platform", "linux/amd64", "--format", "oci", "{ref}", "{dir}"))
		coldAll = min(coldAll, pull("skopeo", "copy", "--all", "--src-tls-verify=false", "docker://{ref}", "oci:{dir}:x"))
		// What the same client pays to copy the CLI's layout into
		// another: the part of a pull no server can take away.
		copied := b.TempDir()
		clientCopy = min(clientCopy, timed(func() {
			testenv.Run(b, "skopeo", "copy", "--all", "oci:"+cliDir, "oci:"+copied+":x")
		}))
		// The pulls of an image kept: what the clients cost.
		warm = min(warm, timed(func() {
			testenv.Run(b, "skopeo", "copy", "--all", "--src-tls-verify=false", "docker://"+first.host+repo, "oci:"+filepath.Join(copied, "skopeo")+":x")
		}))
		craneWarm = min(craneWarm, timed(func() {
			testenv.Run(b, crane, "pull", "--insecure", "--platform", "linux/amd64", "--format", "oci", first.host+repo, filepath.Join(copied, "crane"))
		}))
		os.RemoveAll(copied)
	}

	// Both sides made the same image.
	var layout v1.IndexManifest
	raw, err := os.ReadFile(filepath.Join(cliDir, "index.json"))
	if err == nil {
		err = json.Unmarshal(raw, &layout)
	}
	if err != nil || len(layout.Manifests) != 1 {
		b.Fatalf("the CLI's layout: %v, %d images", err, len(layout.Manifests))
	}
	resp, err := http.Head("http://" + first.host + "/v2/" + strings.Join(packages, "/") + "/manifests/latest")
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Docker-Content-Digest"); got != layout.Manifests[0].Digest.String() {
		b.Fatalf("serve built %s, the CLI %s: not the same image", got, layout.Manifests[0].Digest)
	}

	b.ReportMetric(coldPull.Seconds()/cli.Seconds(), prefix+"cold-ratio")
	b.ReportMetric(craneCold.Seconds()/cli.Seconds(), prefix+"crane-cold-ratio")
	b.ReportMetric(craneWarm.Seconds(), prefix+"crane-copy-s")
	b.ReportMetric(coldAll.Seconds()/cli.Seconds(), prefix+"cold-all-ratio")
	// What the pull itself costs (skopeo, the copy), the same warm or
	// cold, taken out: the build on pull against the CLI's build.
	b.ReportMetric((coldAll-warm).Seconds()/cli.Seconds(), prefix+"build-ratio")
	b.ReportMetric(coldAll.Seconds()/(cli+clientCopy).Seconds(), prefix+"cold-vs-cli-copy")
	b.ReportMetric(cli.Seconds(), prefix+"cli-s")
	b.ReportMetric(coldPull.Seconds(), prefix+"cold-s")
	return first
}

// buildCrane builds crane, at the go-containerregistry version nixery
// uses, from tools/crane (a module of its own), and returns its path.
func buildCrane(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "crane")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/google/go-containerregistry/cmd/crane")
	cmd.Dir = filepath.Join(repoRoot, "tools", "crane")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("building crane: %v\n%s", err, out)
	}
	return bin
}

// throughput GETs url 50 times and returns MB/s.
func throughput(b *testing.B, url string, size int64) float64 {
	start := time.Now()
	for range 50 {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != size {
			b.Fatalf("GET %s: %d bytes of %d, %v", url, n, size, err)
		}
	}
	return float64(50*size) / 1e6 / time.Since(start).Seconds()
}

// runNixery runs nixery with the stand-in's Nix settings, failing on error.
func runNixery(b *testing.B, args ...string) {
	b.Helper()
	cmd := exec.Command(nixery, args...)
	cmd.Env = append(cmd.Environ(), "NIX_CONFIG="+testenv.NixConfig)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("nixery %v: %v\n%s", args, err, out)
	}
}
