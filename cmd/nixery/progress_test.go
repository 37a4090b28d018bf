package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/nixery-action/nixery-action/pkg/build"
	"github.com/nixery-action/nixery-action/pkg/nix"
	"github.com/nixery-action/nixery-action/pkg/publish"
)

// TestProgressLines: in logs, one timestamped line per layer packed,
// reused and uploaded, and for long work one every five seconds with
// bytes, rate and time left.
func TestProgressLines(t *testing.T) {
	var out bytes.Buffer
	clock := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	l := newLines(prefixLogs(&out), func() time.Time { return clock })
	tick := func(d time.Duration) { clock = clock.Add(d) }

	e := build.Event{Platform: "linux/arm64", Layer: 2, Layers: 7, Stage: build.Packing, Total: 400 << 20}
	for _, done := range []int64{0, 50 << 20, 100 << 20, 150 << 20} {
		e.Done = done
		l.layer(e)
		tick(2 * time.Second)
	}
	l.layer(build.Event{Platform: "linux/arm64", Layer: 2, Layers: 7, Stage: build.Packed, Digest: "sha256:" + strings.Repeat("a", 64), Size: 30 << 20})
	l.layer(build.Event{Platform: "linux/amd64", Layer: 1, Layers: 7, Stage: build.Reused, Digest: "sha256:" + strings.Repeat("b", 64), Size: 1 << 20})

	d := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}
	blob := new(int)
	l.upload(publish.UploadProgress{Digest: d, Blob: blob, Sent: 0, Total: 30 << 20})
	tick(6 * time.Second)
	l.upload(publish.UploadProgress{Digest: d, Blob: blob, Sent: 12 << 20, Total: 30 << 20})
	tick(4 * time.Second)
	l.upload(publish.UploadProgress{Digest: d, Blob: blob, Sent: 30 << 20, Total: 30 << 20, Done: true})

	want := `10:00:06 [linux/arm64] layer 2/7 packing: 150.0 MiB of 400.0 MiB, 25.0 MiB/s, about 10.0 s left
10:00:08 [linux/arm64] layer 2/7 packed: 30.0 MiB in 8.0 s
10:00:08 [linux/amd64] layer 1/7 reused from the cache: 1.0 MiB
10:00:14 uploading [linux/arm64] layer 2/7: 12.0 MiB of 30.0 MiB, 2.0 MiB/s, about 9.0 s left
10:00:18 uploaded [linux/arm64] layer 2/7: 30.0 MiB in 10.0 s (3.0 MiB/s)
`
	assert.Equal(t, out.String(), want)
}

// TestProgressBars draws the live display on a real terminal (a pty):
// layers and uploads appear with their sizes, and log lines still come
// through.
func TestProgressBars(t *testing.T) {
	ptmx, tty, err := pty.Open()
	assert.NilError(t, err)
	defer ptmx.Close()
	defer tty.Close()
	assert.NilError(t, pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 120}))
	var screen bytes.Buffer
	copied := make(chan struct{})
	go func() { screen.ReadFrom(ptmx); close(copied) }()

	assert.Assert(t, isTerminal(tty))
	p := newProgress(tty)
	_, isBars := p.(*bars)
	assert.Assert(t, isBars, "a terminal gets the live display")
	w, end := p.logs()("linux/amd64")
	w.Write([]byte("[linux/amd64] building hello\n"))
	end()
	e := build.Event{Platform: "linux/amd64", Layer: 1, Layers: 3, Stage: build.Packing, Total: 10 << 20}
	for i := int64(1); i <= 5; i++ {
		e.Done = i << 20
		p.layer(e)
		time.Sleep(80 * time.Millisecond)
	}
	p.upload(publish.UploadProgress{Blob: 1, Sent: 1 << 20, Total: -1})
	time.Sleep(200 * time.Millisecond)
	p.stop()
	tty.Close()
	<-copied
	got := screen.String()
	for _, s := range []string{"building hello", "[linux/amd64] layer 1/3 packing", "MiB", "uploading"} {
		assert.Check(t, strings.Contains(got, s), "%q not on the terminal:\n%s", s, got)
	}
	// Off a terminal, lines.
	f, err := os.CreateTemp(t.TempDir(), "log")
	assert.NilError(t, err)
	defer f.Close()
	_, isLines := newProgress(f).(*lines)
	assert.Check(t, isLines)
}

func TestNixErrorOnce(t *testing.T) {
	ce := &nix.CommandError{What: "nix build for x86_64-linux", Headline: "error: builder failed", Tail: "\n    line 1\n    line 2", Err: errors.New("exit status 1")}
	short := nixErrorOnce(ce)
	assert.Check(t, is.Equal(short.Error(), "nix build for x86_64-linux failed: error: builder failed (Nix's output is above)"))
	// Shorter words, the same cause.
	var got *nix.CommandError
	assert.Check(t, errors.As(short, &got) && got == ce)
	other := errors.New("something else")
	assert.Check(t, nixErrorOnce(other) == other)
}

// The CLI's line after Nix's output still says why the build failed, on
// Nix 2.8 and on Nix 2.34, whose reason is not on its "error:" line
// (recorded in pkg/nix/testdata, see its README.md).
func TestNixErrorOnceKeepsTheReason(t *testing.T) {
	for file, want := range map[string]string{
		"nix-2.8.0/chain.stderr":  "nix build for x86_64-linux failed: builder for '/nix/store/yq1lh0bsrmqlqwvhqx56w62zrhpmbglw-leaf.drv' failed with exit code 2; (Nix's output is above)",
		"nix-2.34.8/chain.stderr": "nix build for x86_64-linux failed: Cannot build '/nix/store/yq1lh0bsrmqlqwvhqx56w62zrhpmbglw-leaf.drv': builder failed with exit code 2 (Nix's output is above)",
		"nix-2.34.8/arm.stderr":   "nix build for x86_64-linux failed: Nix must build /nix/store/8v1d9cm6lnjx2hairwczsfbkw3sv255v-armlib.drv for aarch64-linux, but this machine is x86_64-linux and has no aarch64-linux builder: configure one",
	} {
		stderr, err := os.ReadFile("../../pkg/nix/testdata/" + file)
		assert.NilError(t, err)
		ce := nix.NewCommandError("nix build for x86_64-linux", string(stderr), errors.New("exit status 1"))
		line := nixErrorOnce(fmt.Errorf("linux/amd64: %w", ce)).Error()
		assert.Check(t, is.Contains(line, "linux/amd64: "+want), file)
		assert.Check(t, !strings.Contains(line, "\n"), "%s: not one line: %q", file, line)
	}
}

func TestNixpkgsLooksLikeAnOption(t *testing.T) {
	code, _, stderr := runCLI(t, "build", "--nixpkgs", "--platforms", "--output", "oci:x", "hello")
	assert.Equal(t, code, 2)
	assert.Check(t, strings.Contains(stderr, `--nixpkgs "--platforms" looks like an option`), stderr)
}

// A relative directory written without ./ is, to Nix, a flake registry
// name (looked up online): build and serve say so before running Nix.
func TestNixpkgsDirectoryReadAsRegistryName(t *testing.T) {
	t.Chdir(t.TempDir())
	assert.NilError(t, os.MkdirAll("testdata/nixpkgs", 0o755))
	assert.NilError(t, os.WriteFile("testdata/nixpkgs/flake.nix", []byte("{ outputs = _: { }; }\n"), 0o644))
	const want = `--nixpkgs "testdata/nixpkgs" is read as a flake registry name; for the directory write ./testdata/nixpkgs or path:testdata/nixpkgs`
	code, _, stderr := runCLI(t, "build", "--nixpkgs", "testdata/nixpkgs", "--output", "oci:x", "hello")
	assert.Check(t, is.Equal(code, 2))
	assert.Check(t, is.Contains(stderr, want))
	code, _, stderr = runCLI(t, "serve", "--nixpkgs", "testdata/nixpkgs", "--storage", "store", "--listen", "127.0.0.1:0")
	assert.Check(t, is.Equal(code, 2))
	assert.Check(t, is.Contains(stderr, want))
	_, err := os.Stat("store")
	assert.Check(t, os.IsNotExist(err), "serve made its storage")
}

// Each platform's lines go out as one group, once the platform is done,
// in the order the platforms were opened, however their lines come: a
// writer per line (the progress lines), a platform done before an earlier
// one, lines of no platform in between, a line after the group went out.
func TestGroupsOnePerPlatform(t *testing.T) {
	var out bytes.Buffer
	g := newGroups(&out, func(p string) (string, string) { return "::group::Build " + p + "\n", "::endgroup::\n" })
	amd, endAmd := g.sink("linux/amd64")
	arm, endArm := g.sink("linux/arm64")
	line := func(platform, text string) {
		w, end := g.sink(platform)
		io.WriteString(w, text+"\n")
		end()
	}
	io.WriteString(amd, "[linux/amd64] building\n")
	io.WriteString(arm, "[linux/arm64] building\n")
	line("linux/arm64", "[linux/arm64] layer 1/2 packed")
	line("linux/amd64", "[linux/amd64] layer 1/2 packed")
	line("", "uploaded a blob")
	line("linux/arm64", "[linux/arm64] layer 2/2 packed")
	endArm()
	endArm() // a second end changes nothing
	assert.Equal(t, out.String(), "uploaded a blob\n", "arm64 waits for amd64")
	line("linux/amd64", "[linux/amd64] layer 2/2 packed")
	endAmd()
	line("linux/amd64", "[linux/amd64] late")
	g.finish()
	assert.Equal(t, out.String(), `uploaded a blob
::group::Build linux/amd64
[linux/amd64] building
[linux/amd64] layer 1/2 packed
[linux/amd64] layer 2/2 packed
::endgroup::
::group::Build linux/arm64
[linux/arm64] building
[linux/arm64] layer 1/2 packed
[linux/arm64] layer 2/2 packed
::endgroup::
[linux/amd64] late
`)

	// A platform whose writer is never ended still comes out, whole.
	out.Reset()
	g = newGroups(&out, func(p string) (string, string) { return "<" + p + ">\n", "</>\n" })
	w, _ := g.sink("linux/386")
	io.WriteString(w, "held\n")
	g.finish()
	assert.Equal(t, out.String(), "<linux/386>\nheld\n</>\n")
}

// A platform's held log is bounded: its head and its tail go out, with a
// line saying how much was left out, however much Nix printed.
func TestGroupsBounded(t *testing.T) {
	var out bytes.Buffer
	g := newGroups(&out, func(p string) (string, string) { return "<" + p + ">\n", "</>\n" })
	w, end := g.sink("linux/amd64")
	line := []byte(strings.Repeat("x", 1023) + "\n")
	const lines = 20 << 10 // 20 MiB in all
	w.Write([]byte("first line\n"))
	for range lines {
		w.Write(line)
	}
	w.Write([]byte("the error at the end\n"))
	gr := g.byName["linux/amd64"]
	assert.Check(t, gr.buf.Len()+len(gr.tail) <= heldHead+2*heldTail, "held %d bytes", gr.buf.Len()+len(gr.tail))
	end()
	got := out.String()
	assert.Check(t, strings.HasPrefix(got, "<linux/amd64>\nfirst line\n"))
	assert.Check(t, strings.HasSuffix(got, "the error at the end\n</>\n"))
	assert.Check(t, is.Contains(got, " bytes of this log left out]"))
	assert.Check(t, len(got) < heldHead+heldTail+1024, "%d bytes out", len(got))
}

// In action mode, a build for a system without a builder (recorded from
// Nix 2.34.8 and 2.8.0) is told how a workflow gets one: a job per
// platform on its own runner; other Nix failures, and the CLI, are not.
func TestNoBuilderHintInAction(t *testing.T) {
	for _, file := range []string{"nix-2.34.8/arm.stderr", "nix-2.8.0/arm.stderr", "nix-2.34.8/fail.stderr"} {
		stderr, err := os.ReadFile("../../pkg/nix/testdata/" + file)
		assert.NilError(t, err)
		ce := nix.NewCommandError("nix build for aarch64-linux", string(stderr), errors.New("exit status 1"))
		wrapped := fmt.Errorf("linux/arm64: %w", ce)
		action := withHints(wrapped, actionInput, true).Error()
		cli := withHints(wrapped, func(string) bool { return true }, false).Error()
		const hint = "runs-on: ubuntu-24.04-arm with platforms: linux/arm64) and join them with merge-digests"
		assert.Check(t, is.Equal(strings.Contains(action, hint), strings.HasSuffix(file, "arm.stderr")), "%s: %s", file, action)
		assert.Check(t, !strings.Contains(cli, hint), "%s: %s", file, cli)
	}
}
