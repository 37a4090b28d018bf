package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/nixery-action/nixery-action/pkg/cache"
	"github.com/nixery-action/nixery-action/pkg/outfile"
)

// layoutLayoutFile is the oci-layout file every OCI layout has.
const layoutLayoutFile = `{"imageLayoutVersion": "1.0.0"}`

// ScratchDir is a directory in an OCI layout where its owner (nixery
// serve, in its storage) keeps its builds' temporary files: on the
// layout's file system, so that their layers are linked into the layout,
// not copied. Nothing of the layout is in it; a new layout may hold it.
const ScratchDir = ".nixery-tmp"

// LayoutEntries lists the directory of a layout, but for ScratchDir.
func LayoutEntries(dir string) ([]fs.DirEntry, error) {
	entries, err := os.ReadDir(dir)
	return slices.DeleteFunc(entries, func(e fs.DirEntry) bool { return e.Name() == ScratchDir }), err
}

// syncFile makes a blob file, or the blobs directory, durable (a
// variable so that a test can count the syncs).
var syncFile = outfile.Sync

// layoutWriter writes into an OCI layout the way careful tools do: under
// an advisory lock on the directory, so that builds writing one layout
// at once take turns; index.json replaced whole (written beside, synced,
// renamed), so a failure leaves the earlier one; modes set only on what
// it creates; nothing followed out of the directory (a symlinked
// index.json, oci-layout or blobs directory is refused); and on failure,
// the blobs it added removed again, so the layout is as it was.
type layoutWriter struct {
	dir     string
	lock    *os.File
	created []string // blobs and directories this write made
	before  map[string]bool
	// committed is what commit replaced, for revert: the index.json
	// before it (nil: there was none), and whether it made oci-layout.
	committed  bool
	oldIndex   []byte
	madeMarker bool
	// linksOuter marks the referrers layout, whose layer blobs are hard
	// links to the outer layout's files: their modes are the outer
	// layout's to set.
	linksOuter bool
	// mended are blob files found bad and written again (dropBadBlobs):
	// not this write's to remove, but its to give their mode.
	mended []string
	// synced are blob files this write put in place synced already
	// (writeLayers): commit gives them their mode, not another fsync.
	synced map[string]bool
}

// mkdir makes a directory of the layout, 0755 whatever the umask, as the
// files it writes are 0644: a layout is shared with other users' tools
// (a registry, skopeo run as another user).
func mkdir(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	return os.Chmod(dir, 0o755)
}

// openLayoutWriter locks dir (made when missing) and checks what is
// there. While another process holds the lock it waits, telling note
// once (when set), until the lock is free or ctx ends.
func openLayoutWriter(ctx context.Context, dir string, note func(string)) (*layoutWriter, error) {
	w := &layoutWriter{dir: dir, before: map[string]bool{}, synced: map[string]bool{}}
	if err := mkdir(dir); err == nil {
		w.created = append(w.created, dir)
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	lock, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := lockDir(ctx, lock, dir, note); err != nil {
		lock.Close()
		for _, d := range w.created {
			os.Remove(d) // only when still empty; no blob is this write's yet
		}
		return nil, err
	}
	w.lock = lock
	if err := w.check(); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// lockPoll is how often a layout another process holds is tried again.
const lockPoll = 50 * time.Millisecond

// lockDir takes the exclusive lock on the open directory f. A blocking
// flock would not return for a signal: it is tried without blocking,
// every lockPoll, until it is free or ctx ends.
func lockDir(ctx context.Context, f *os.File, dir string, note func(string)) error {
	told := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case err != syscall.EWOULDBLOCK && err != syscall.EINTR:
			return fmt.Errorf("lock %s: %w", dir, err)
		case !told && note != nil:
			note(fmt.Sprintf("waiting for another nixery writing %s", dir))
			told = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(lockPoll):
		}
	}
}

// check refuses a layout that leads elsewhere, or a directory that holds
// something else, and notes the blobs already there.
func (w *layoutWriter) check() error {
	for _, name := range []string{"index.json", "oci-layout", "blobs", filepath.Join("blobs", "sha256"), ReferrersDir} {
		info, err := os.Lstat(filepath.Join(w.dir, name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return err
		case info.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s in %s is a symlink: nixery writes nothing outside the layout directory", name, w.dir)
		case (name == "index.json" || name == "oci-layout") && !info.Mode().IsRegular():
			return fmt.Errorf("%s in %s is not a regular file", name, w.dir)
		case (name == "blobs" || name == filepath.Join("blobs", "sha256") || name == ReferrersDir) && !info.IsDir():
			return fmt.Errorf("%s in %s is not a directory", name, w.dir)
		}
	}
	// Another version's layout is not written into (Check says so first;
	// this is for a file replaced since).
	var ve *layoutVersionError
	if err := checkLayoutVersion(w.dir); errors.As(err, &ve) {
		return err
	}
	if _, err := os.Lstat(filepath.Join(w.dir, "index.json")); errors.Is(err, fs.ErrNotExist) {
		entries, err := LayoutEntries(w.dir)
		if err != nil {
			return err
		}
		if len(entries) > 0 {
			return fmt.Errorf("%s is a directory with files but no OCI layout (no index.json); name a new or empty directory", w.dir)
		}
	}
	entries, err := os.ReadDir(filepath.Join(w.dir, "blobs", "sha256"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		w.before[e.Name()] = true
	}
	for _, d := range []string{"blobs", filepath.Join("blobs", "sha256")} {
		if _, err := os.Lstat(filepath.Join(w.dir, d)); errors.Is(err, fs.ErrNotExist) {
			if err := mkdir(filepath.Join(w.dir, d)); err != nil {
				return err
			}
			w.created = append(w.created, filepath.Join(w.dir, d))
		}
	}
	return nil
}

// path is the layout for go-containerregistry's blob writers.
func (w *layoutWriter) path() layout.Path { return layout.Path(w.dir) }

// index reads index.json, or an empty index for a new layout.
func (w *layoutWriter) index() (*v1.IndexManifest, error) { return cache.ReadLayoutIndex(w.dir) }

// commit gives the blobs this write added mode 0644 (a hard link keeps
// its file's), then replaces index.json (and writes oci-layout where it
// is missing), each whole. The blobs and their directory entries are
// synced before index.json names them, so that a power loss cannot leave
// an index naming empty blobs (a layer's data is synced as soon as it is
// packed or copied: those are not synced again).
func (w *layoutWriter) commit(im *v1.IndexManifest) error {
	added := w.addedBlobs()
	for i, b := range append(added, w.mended...) {
		if info, err := os.Lstat(b); err == nil && w.linksOuter && linked(info) {
			continue // the outer layout's file, with the mode it has there
		}
		if err := os.Chmod(b, 0o644); err != nil {
			return err
		}
		if i < len(added) && w.synced[b] {
			continue // a mended blob is synced whatever it was
		}
		if err := syncFile(b); err != nil {
			return err
		}
	}
	if err := syncFile(filepath.Join(w.dir, "blobs", "sha256")); err != nil {
		return err
	}
	old, err := os.ReadFile(filepath.Join(w.dir, "index.json"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if _, err := os.Lstat(filepath.Join(w.dir, "oci-layout")); errors.Is(err, fs.ErrNotExist) {
		if err := w.replace("oci-layout", []byte(layoutLayoutFile)); err != nil {
			return err
		}
		w.madeMarker = true
	}
	raw, err := json.MarshalIndent(im, "", "   ")
	if err != nil {
		return err
	}
	if err := w.replace("index.json", raw); err != nil {
		return err
	}
	w.committed, w.oldIndex = true, old
	return nil
}

// revert undoes a commit and the write before it: index.json back as it
// was (or gone, with the oci-layout this write made), then abort.
func (w *layoutWriter) revert() {
	if w.committed {
		if w.oldIndex != nil {
			w.replace("index.json", w.oldIndex)
		} else {
			os.Remove(filepath.Join(w.dir, "index.json"))
		}
		if w.madeMarker {
			os.Remove(filepath.Join(w.dir, "oci-layout"))
		}
	}
	w.abort()
}

// linked tells a file with more than one name: a blob linked from the
// outer layout.
func linked(info fs.FileInfo) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && st.Nlink > 1
}

// replace writes name whole, as outfile writes a regular file: beside
// it, synced, renamed over it; a file nixery creates gets 0644, an
// existing one keeps its mode.
func (w *layoutWriter) replace(name string, data []byte) error {
	dest := filepath.Join(w.dir, name)
	// check refused a symlink or anything but a regular file here, so
	// outfile replaces it whole.
	f, err := outfile.Create(dest)
	if err == nil {
		defer f.Abort()
		if _, err = f.Write(data); err == nil {
			err = f.Commit()
		}
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the temporary file's name says nothing
		}
		return fmt.Errorf("write %s: %w", dest, err)
	}
	return nil
}

// addedBlobs are the blob files this write made.
func (w *layoutWriter) addedBlobs() []string {
	entries, _ := os.ReadDir(filepath.Join(w.dir, "blobs", "sha256"))
	var out []string
	for _, e := range entries {
		if !w.before[e.Name()] {
			out = append(out, filepath.Join(w.dir, "blobs", "sha256", e.Name()))
		}
	}
	return out
}

// abort removes what this write added, leaving the layout as it was.
func (w *layoutWriter) abort() {
	for _, b := range w.addedBlobs() {
		os.Remove(b)
	}
	for i := len(w.created) - 1; i >= 0; i-- {
		os.Remove(w.created[i]) // only when empty again
	}
}

func (w *layoutWriter) close() {
	if w.lock != nil {
		w.lock.Close() // releases the lock
	}
}

// dropBadBlobs removes the files of blobs among ds that the layout has
// but that do not hold their digest's bytes, so that the write puts the
// blobs in their place (go-containerregistry's layout writer keeps any
// file it finds); commit gives those mode 0644 like the blobs it adds.
func (w *layoutWriter) dropBadBlobs(ds []v1.Hash) error {
	for _, d := range ds {
		file := filepath.Join(w.dir, "blobs", d.Algorithm, d.Hex)
		if _, err := os.Lstat(file); errors.Is(err, fs.ErrNotExist) || holdsDigest(file, d) {
			continue
		}
		if err := os.Remove(file); err != nil {
			return fmt.Errorf("remove %s, which does not hold its digest's bytes: %w", file, err)
		}
		w.mended = append(w.mended, file)
	}
	return nil
}

// indexBlobs are the digests of idx's small blobs: its manifest and its
// platform images' manifests and configs.
func indexBlobs(idx v1.ImageIndex) []v1.Hash {
	var out []v1.Hash
	if d, err := idx.Digest(); err == nil {
		out = append(out, d)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return out
	}
	for _, m := range im.Manifests {
		if img, err := idx.Image(m.Digest); err == nil {
			out = append(out, imageBlobs(img, false)...)
		}
	}
	return out
}

// imageBlobs are the digests of img's manifest and config, and of its
// layers when withLayers is set.
func imageBlobs(img v1.Image, withLayers bool) []v1.Hash {
	var out []v1.Hash
	if d, err := img.Digest(); err == nil {
		out = append(out, d)
	}
	m, err := img.Manifest()
	if err != nil {
		return out
	}
	out = append(out, m.Config.Digest)
	if withLayers {
		for _, l := range m.Layers {
			out = append(out, l.Digest)
		}
	}
	return out
}
