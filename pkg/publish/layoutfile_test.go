package publish

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// snapshot is every entry under dir: its mode, and its content's hash
// (files) or target (symlinks).
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	assert.NilError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		v := info.Mode().String()
		switch {
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += fmt.Sprintf(" %x", sha256.Sum256(b))
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			v += " -> " + target
		}
		out[rel] = v
		return nil
	}))
	return out
}

func writeTagged(t *testing.T, dir, salt, tag string) error {
	t.Helper()
	_, err := Write(context.Background(), Output{Kind: OCILayout, Path: dir}, testIndex(t, salt, amd64), WriteOptions{Tags: []string{tag}})
	return err
}

// Writing into a layout sets modes only on what it creates: the files of
// others keep theirs, and a file outside, hard-linked in, is untouched.
func TestLayoutKeepsForeignModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	assert.NilError(t, writeTagged(t, dir, "modes-1", "t1"))
	outside := filepath.Join(t.TempDir(), "secret")
	assert.NilError(t, os.WriteFile(outside, []byte("outside"), 0o600))
	assert.NilError(t, os.Link(outside, filepath.Join(dir, "linked")))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "key"), []byte("k"), 0o600))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "run.sh"), []byte("#!/bin/sh\n"), 0o755))
	assert.NilError(t, os.Mkdir(filepath.Join(dir, "private"), 0o700))
	blobs, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	assert.NilError(t, err)
	oldBlob := filepath.Join(dir, "blobs", "sha256", blobs[0].Name())
	assert.NilError(t, os.Chmod(oldBlob, 0o600))
	assert.NilError(t, os.Chmod(filepath.Join(dir, "index.json"), 0o640))
	before := snapshot(t, dir)

	assert.NilError(t, writeTagged(t, dir, "modes-2", "t2"))
	after := snapshot(t, dir)
	for _, name := range []string{"linked", "key", "run.sh", "private", "blobs/sha256/" + blobs[0].Name()} {
		assert.Check(t, is.Equal(after[name], before[name]), name)
	}
	info, err := os.Stat(filepath.Join(dir, "index.json"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(info.Mode().Perm(), fs.FileMode(0o640)), "index.json keeps its mode")
	info, err = os.Stat(outside)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(info.Mode().Perm(), fs.FileMode(0o600)), "the file outside changed mode")
	// The blobs this write added are for others to read.
	for name, v := range after {
		if _, old := before[name]; !old && filepath.Dir(name) == "blobs/sha256" {
			assert.Check(t, is.Equal(v[:10], "-rw-r--r--"), name)
		}
	}
}

// Nothing is followed out of the layout: a symlinked index.json or blobs
// directory is refused, and its target left alone.
func TestLayoutRefusesSymlinks(t *testing.T) {
	for _, name := range []string{"index.json", "blobs"} {
		dir := filepath.Join(t.TempDir(), "layout")
		assert.NilError(t, writeTagged(t, dir, "links", "t1"))
		elsewhere := filepath.Join(t.TempDir(), "elsewhere")
		assert.NilError(t, os.Rename(filepath.Join(dir, name), elsewhere))
		assert.NilError(t, os.Symlink(elsewhere, filepath.Join(dir, name)))
		target := snapshot(t, filepath.Dir(elsewhere))
		err := writeTagged(t, dir, "links-2", "t2")
		assert.ErrorContains(t, err, name+" in "+dir+" is a symlink: nixery writes nothing outside the layout directory")
		assert.DeepEqual(t, snapshot(t, filepath.Dir(elsewhere)), target)
	}
}

// A write that fails half-way leaves the layout exactly as it was: no
// new blob, the same index.json.
func TestLayoutFailedWriteLeavesItAsItWas(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	assert.NilError(t, writeTagged(t, dir, "fail-1", "t1"))
	before := snapshot(t, dir)

	idx := testIndex(t, "fail-2", amd64, arm64)
	imgs, err := idx.IndexManifest()
	assert.NilError(t, err)
	img, err := idx.Image(imgs.Manifests[1].Digest)
	assert.NilError(t, err)
	layers, err := img.Layers()
	assert.NilError(t, err)
	// The last platform's layer blob is gone by the time it is copied.
	d, err := layers[1].Digest()
	assert.NilError(t, err)
	gone := false
	filepath.WalkDir(filepath.Dir(filepath.Dir(t.TempDir())), func(p string, de fs.DirEntry, err error) error {
		if err == nil && !de.IsDir() && filepath.Base(p) == d.Hex+".tar.gz" {
			gone = os.Remove(p) == nil || gone
		}
		return nil
	})
	assert.Assert(t, gone, "no blob file to remove")
	_, err = Write(context.Background(), Output{Kind: OCILayout, Path: dir}, idx, WriteOptions{Tags: []string{"t2"}})
	assert.Assert(t, err != nil, "the write did not fail")
	assert.DeepEqual(t, snapshot(t, dir), before)

	// A new layout that fails is not left behind at all.
	fresh := filepath.Join(t.TempDir(), "fresh")
	_, err = Write(context.Background(), Output{Kind: OCILayout, Path: fresh}, idx, WriteOptions{Tags: []string{"t1"}})
	assert.Assert(t, err != nil)
	_, err = os.Stat(fresh)
	assert.Check(t, os.IsNotExist(err), "a failed new layout was left: %v", err)
}

// Builds writing one layout at once take turns: every tag is there
// afterwards, and the layout reads back.
func TestLayoutConcurrentWriters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	const n = 10
	idxs := make([]*struct{ tag, salt string }, n)
	for i := range idxs {
		idxs[i] = &struct{ tag, salt string }{fmt.Sprintf("t%d", i), fmt.Sprintf("concurrent-%d", i)}
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, x := range idxs {
		idx := testIndex(t, x.salt, amd64)
		wg.Go(func() {
			_, errs[i] = Write(context.Background(), Output{Kind: OCILayout, Path: dir}, idx, WriteOptions{Tags: []string{x.tag}})
		})
	}
	wg.Wait()
	for i, err := range errs {
		assert.Check(t, err, "writer %d", i)
	}
	lp, err := layout.FromPath(dir)
	assert.NilError(t, err)
	top, err := lp.ImageIndex()
	assert.NilError(t, err)
	im, err := top.IndexManifest()
	assert.NilError(t, err)
	tags := map[string]bool{}
	for _, m := range im.Manifests {
		tags[m.Annotations[refNameAnnotation]] = true
	}
	for _, x := range idxs {
		assert.Check(t, tags[x.tag], "tag %s lost", x.tag)
	}
}

// revert undoes a commit: an existing layout gets its index.json back and
// loses the blobs the write added; a new one is gone again.
func TestLayoutWriterRevert(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "image")
	assert.NilError(t, writeTagged(t, dir, "before", "v1"))
	before := snapshot(t, dir)
	w, err := openLayoutWriter(context.Background(), dir, nil)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "blobs", "sha256", strings.Repeat("ab", 32)), []byte("new"), 0o600))
	assert.NilError(t, w.commit(&v1.IndexManifest{SchemaVersion: 2}))
	assert.Check(t, !reflect.DeepEqual(snapshot(t, dir), before))
	w.revert()
	w.close()
	assert.DeepEqual(t, snapshot(t, dir), before)

	fresh := filepath.Join(t.TempDir(), "fresh")
	w, err = openLayoutWriter(context.Background(), fresh, nil)
	assert.NilError(t, err)
	assert.NilError(t, w.commit(&v1.IndexManifest{SchemaVersion: 2}))
	w.revert()
	w.close()
	_, err = os.Stat(fresh)
	assert.Check(t, errors.Is(err, fs.ErrNotExist), "%v", err)
}

// PruneLayout drops the entries it is told to and the blobs only they
// reached; what the kept image needs stays, and skopeo-style readers
// (go-containerregistry's) still read it whole.
func TestPruneLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "image")
	assert.NilError(t, writeTagged(t, dir, "one", "one"))
	assert.NilError(t, writeTagged(t, dir, "two", "two"))
	before, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	assert.NilError(t, err)

	n, err := PruneLayout(dir, func(name string) bool { return name == "two" })
	assert.NilError(t, err)
	after, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	assert.NilError(t, err)
	assert.Equal(t, len(before)-n, len(after))
	assert.Assert(t, n > 0)

	lp, err := layout.FromPath(dir)
	assert.NilError(t, err)
	idx, err := lp.ImageIndex()
	assert.NilError(t, err)
	im, err := idx.IndexManifest()
	assert.NilError(t, err)
	assert.Equal(t, len(im.Manifests), 1)
	assert.Equal(t, im.Manifests[0].Annotations[refNameAnnotation], "two")
	kept, err := idx.ImageIndex(im.Manifests[0].Digest)
	assert.NilError(t, err)
	assert.NilError(t, validate.Index(kept))

	// Nothing more to drop: nothing removed.
	n, err = PruneLayout(dir, func(string) bool { return true })
	assert.NilError(t, err)
	assert.Equal(t, n, 0)
}

// An entry without a media type (as other tools write them) keeps what
// its manifest names: the manifest's own media type says what it is.
func TestPruneLayoutUntypedEntry(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "image")
	assert.NilError(t, writeTagged(t, dir, "untyped", "one"))
	assert.NilError(t, writeTagged(t, dir, "other", "two"))
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	assert.NilError(t, err)
	var im v1.IndexManifest
	assert.NilError(t, json.Unmarshal(raw, &im))
	for i := range im.Manifests {
		im.Manifests[i].MediaType = ""
	}
	raw, err = json.Marshal(im)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "index.json"), raw, 0o644))

	_, err = PruneLayout(dir, func(name string) bool { return name == "one" })
	assert.NilError(t, err)
	// go-containerregistry reads typed entries only: type it again, and
	// check that every blob of the kept image is there.
	raw, err = os.ReadFile(filepath.Join(dir, "index.json"))
	assert.NilError(t, err)
	assert.NilError(t, json.Unmarshal(raw, &im))
	for i := range im.Manifests {
		im.Manifests[i].MediaType = types.OCIImageIndex
	}
	raw, err = json.Marshal(im)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "index.json"), raw, 0o644))
	lp, err := layout.FromPath(dir)
	assert.NilError(t, err)
	kept, err := lp.ImageIndex()
	assert.NilError(t, err)
	km, err := kept.IndexManifest()
	assert.NilError(t, err)
	assert.Equal(t, len(km.Manifests), 1)
	one, err := kept.ImageIndex(km.Manifests[0].Digest)
	assert.NilError(t, err)
	assert.NilError(t, validate.Index(one))
}

// A new layout's directories are 0755 and its files 0644 whatever the
// umask, as the README says.
func TestLayoutModesUnderUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "layout")
	assert.NilError(t, writeTagged(t, dir, "umask", "t1"))
	for _, d := range []string{"", "blobs", "blobs/sha256"} {
		info, err := os.Stat(filepath.Join(dir, d))
		assert.NilError(t, err)
		assert.Check(t, is.Equal(info.Mode().Perm(), fs.FileMode(0o755)), "directory %q", d)
	}
	info, err := os.Stat(filepath.Join(dir, "index.json"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(info.Mode().Perm(), fs.FileMode(0o644)))
}

// A layout another process holds is waited for, said once, and given up
// on as soon as the context ends: a blocking flock would not return for
// a signal.
func TestLayoutWaitEndsWithContext(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "image")
	assert.NilError(t, writeTagged(t, dir, "before", "v1"))
	before := snapshot(t, dir)
	holder, err := os.Open(dir)
	assert.NilError(t, err)
	defer holder.Close()
	assert.NilError(t, syscall.Flock(int(holder.Fd()), syscall.LOCK_EX)) // another open file: another holder

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	notes := make(chan string, 10)
	l := NewLayout(Output{Kind: OCILayout, Path: dir}, WriteOptions{Tags: []string{"v2"}})
	l.Note = func(s string) { notes <- s }
	done := make(chan error, 1)
	go func() {
		_, err := l.Write(ctx, testIndex(t, "after", amd64), nil)
		done <- err
	}()
	select {
	case n := <-notes:
		assert.Equal(t, n, "waiting for another nixery writing "+dir)
	case err := <-done:
		t.Fatalf("the write did not wait for the lock: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("nothing said about the wait")
	}
	time.Sleep(3 * lockPoll)
	assert.Equal(t, len(notes), 0, "the wait was told more than once")
	cancel()
	start := time.Now()
	select {
	case err := <-done:
		assert.Check(t, errors.Is(err, context.Canceled), "%v", err)
		assert.Check(t, time.Since(start) < time.Second, "stopped %s after the cancel", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("the wait for the lock went on after the context ended")
	}
	assert.DeepEqual(t, snapshot(t, dir), before)
}

// A layout of another version than 1.x is not written into, by Check
// (before the build) or by the write itself, in one line; 1.x is.
func TestLayoutOtherVersionRefused(t *testing.T) {
	ctx := context.Background()
	for version, ok := range map[string]bool{"1.0.0": true, "1.1.0": true, "9.9": false, "2.0.0": false, "10.0.0": false} {
		dir := filepath.Join(t.TempDir(), "image")
		assert.NilError(t, writeTagged(t, dir, "before", "v1"))
		assert.NilError(t, os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"`+version+`"}`), 0o644))
		before := snapshot(t, dir)
		out := Output{Kind: OCILayout, Path: dir}
		checkErr := NewLayout(out, WriteOptions{}).Check(ctx)
		writeErr := writeTagged(t, dir, "after", "v2")
		if ok {
			assert.Check(t, checkErr, version)
			assert.Check(t, writeErr, version)
			continue
		}
		want := "oci:" + dir + `: an OCI layout of version "` + version + `", which nixery does not write into (it writes version 1.0.0): name a new directory`
		assert.Check(t, is.Error(checkErr, want), version)
		assert.Check(t, is.Error(writeErr, "write "+want), version)
		assert.DeepEqual(t, snapshot(t, dir), before)
	}
}
