package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nixery-action/nixery-action/pkg/outfile"
)

// Check asks the registry, before any work, whether it answers and lets
// these credentials push to the repository (see registry.CheckPush).
func (r *Registry) Check(ctx context.Context) error {
	l, err := r.loggedIn(ctx)
	if err != nil {
		return err
	}
	return r.opts.CheckPush(ctx, r.target.Repo, l)
}

// Check finds what would make writing fail, before any work: an OCI
// layout in a file, in a directory holding something else, in an existing
// layout whose index.json or oci-layout is not valid, or where nothing
// can be written; a docker archive in a directory; either in a directory
// that does not exist or cannot be written to.
func (l *Layout) Check(context.Context) error {
	path := l.out.Path
	switch l.out.Kind {
	case OCILayout:
		info, err := os.Stat(path)
		switch {
		case os.IsNotExist(err):
			// The layout's directory is made, not its parents.
			if err := checkParent(l.out, path); err != nil {
				return err
			}
			return l.checkWritable(filepath.Dir(path))
		case err != nil:
			return fmt.Errorf("%s: %w", l.out, err)
		case !info.IsDir():
			return fmt.Errorf("%s: %s is a file, not a directory: name a new or empty directory, or an OCI layout to add to", l.out, path)
		}
		entries, err := LayoutEntries(path)
		if err != nil {
			return fmt.Errorf("%s: %w", l.out, err)
		}
		if _, err := os.Stat(filepath.Join(path, "oci-layout")); len(entries) > 0 && err != nil {
			return fmt.Errorf("%s: %s holds other files and is not an OCI layout: name a new or empty directory, or an OCI layout to add to", l.out, path)
		}
		if len(entries) > 0 {
			var ve *layoutVersionError
			if err := checkLayoutFiles(path); errors.As(err, &ve) {
				return fmt.Errorf("%s: %w", l.out, err)
			} else if err != nil {
				return fmt.Errorf("%s: %s is not a valid OCI layout (%v): repair or remove it, or name a new directory", l.out, path, err)
			}
		}
		return l.checkWritable(path)
	case DockerArchive:
		if info, err := os.Stat(path); err == nil && info.IsDir() {
			return fmt.Errorf("%s: %s is a directory: name the archive file, e.g. %s", l.out, path, filepath.Join(path, "image.tar"))
		}
		if err := checkParent(l.out, path); err != nil {
			return err
		}
		return l.checkWritable(filepath.Dir(path))
	}
	return nil
}

// checkWritable tells whether a file can be made in dir.
func (l *Layout) checkWritable(dir string) error {
	if err := outfile.CheckDir(dir); err != nil {
		return fmt.Errorf("%s: cannot write in %s (%w): name a directory you can write to", l.out, dir, err)
	}
	return nil
}

// checkParent finds a missing directory for path to go in.
func checkParent(out Output, path string) error {
	if info, err := os.Stat(filepath.Dir(path)); err != nil || !info.IsDir() {
		return fmt.Errorf("%s: the directory %s does not exist: create it first", out, filepath.Dir(path))
	}
	return nil
}

// checkLayoutFiles reads an existing layout's oci-layout and index.json
// as writing into it will.
func checkLayoutFiles(dir string) error {
	if err := checkLayoutVersion(dir); err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(dir, "index.json"))
	if err != nil {
		return err
	}
	defer f.Close()
	im, err := v1.ParseIndexManifest(f)
	if err != nil {
		return fmt.Errorf("index.json: %v", err)
	}
	if im.SchemaVersion != 2 {
		return fmt.Errorf("index.json is not an image index (schemaVersion %d)", im.SchemaVersion)
	}
	return nil
}

// Check has nothing to check.
func (Discard) Check(context.Context) error { return nil }

// layoutVersionError is a layout of another version than the 1.x that
// nixery writes: what it would add might not be what that version means.
type layoutVersionError struct{ version string }

func (e *layoutVersionError) Error() string {
	return fmt.Sprintf("an OCI layout of version %q, which nixery does not write into (it writes version 1.0.0): name a new directory", e.version)
}

// checkLayoutVersion reads dir's oci-layout file and refuses any
// imageLayoutVersion but 1.x (the spec's is "1.0.0").
func checkLayoutVersion(dir string) error {
	raw, err := os.ReadFile(filepath.Join(dir, "oci-layout"))
	if err != nil {
		return err
	}
	var marker struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(raw, &marker); err != nil || marker.Version == "" {
		return fmt.Errorf("oci-layout is not {\"imageLayoutVersion\": ...}")
	}
	if v := marker.Version; v != "1" && !strings.HasPrefix(v, "1.") {
		return &layoutVersionError{version: v}
	}
	return nil
}
