package publish

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nixery-action/nixery-action/internal/ctxio"
	"github.com/nixery-action/nixery-action/pkg/outfile"
)

// archiveManifest is the manifest.json of a docker archive, the format
// `docker save` writes and `docker load` reads.
type archiveManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// writeDockerArchive writes the one image of idx to file, as outfile
// writes: beside it and renamed into place, so a failed write leaves no
// half archive, or streamed into a device, FIFO or symlink. Its bytes
// depend only on the image and names.
//
// go-containerregistry's tarball.Write would do, but it lists the tags of
// an image in map order, so an archive with two tags would differ from
// run to run.
func writeDockerArchive(ctx context.Context, file string, idx v1.ImageIndex, o WriteOptions) (*Result, error) {
	manifests, images, err := describe(idx)
	if err != nil {
		return nil, err
	}
	if len(images) != 1 {
		var ps []string
		for _, m := range manifests {
			ps = append(ps, m.Platform)
		}
		return nil, fmt.Errorf("a docker archive holds one platform, but %d were built (%s): build one of them, or write an OCI layout for all",
			len(images), strings.Join(ps, ", "))
	}
	img := images[0]
	refs, err := archiveRefs(o.Repository, o.Tags)
	if err != nil {
		return nil, err
	}

	f, err := outfile.Create(file)
	if err != nil {
		return nil, err
	}
	defer f.Abort()
	if err := writeArchive(ctx, f, img, refs); err != nil {
		return nil, err
	}
	if err := f.Commit(); err != nil {
		return nil, err
	}

	markUploaded(manifests, func(string) bool { return true })
	return &Result{Digest: manifests[0].Digest, Tags: nonNil(dedupe(o.Tags)), Manifests: manifests}, nil
}

func writeArchive(ctx context.Context, w io.Writer, img v1.Image, refs []string) error {
	tw := tar.NewWriter(w)
	cfgName, err := img.ConfigName()
	if err != nil {
		return err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	m := archiveManifest{Config: cfgName.Hex + ".json", RepoTags: refs}
	if err := addFile(ctx, tw, m.Config, int64(len(cfg)), bytes.NewReader(cfg)); err != nil {
		return err
	}

	layers, err := img.Layers()
	if err != nil {
		return err
	}
	seen := map[v1.Hash]bool{}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		mt, err := l.MediaType()
		if err != nil {
			return err
		}
		file := d.Hex + layerExtension(mt)
		m.Layers = append(m.Layers, file)
		if seen[d] {
			continue
		}
		seen[d] = true
		if err := addLayer(ctx, tw, file, l); err != nil {
			return err
		}
	}

	raw, err := json.Marshal([]archiveManifest{m})
	if err != nil {
		return err
	}
	if err := addFile(ctx, tw, "manifest.json", int64(len(raw)), bytes.NewReader(raw)); err != nil {
		return err
	}
	return tw.Close()
}

// layerExtension tells tools that go by a file's name what the layer
// holds; docker load and skopeo find the layers through manifest.json
// and read their compression from the bytes.
func layerExtension(mt types.MediaType) string {
	if mt == types.OCILayerZStd {
		return ".tar.zst"
	}
	return ".tar.gz"
}

func addLayer(ctx context.Context, tw *tar.Writer, file string, l v1.Layer) error {
	size, err := l.Size()
	if err != nil {
		return err
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	return addFile(ctx, tw, file, size, rc)
}

// addFile copies r into the archive as file; ctx stops a large layer
// mid-way.
func addFile(ctx context.Context, tw *tar.Writer, file string, size int64, r io.Reader) error {
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     file,
		Size:     size,
		Mode:     0o644,
		ModTime:  time.Unix(0, 0),
		Format:   tar.FormatUSTAR,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(tw, ctxio.Reader(ctx, r))
	if err := ctx.Err(); err != nil {
		return err
	}
	if err != nil {
		return fmt.Errorf("copy %s: %w", file, err)
	}
	if n != size {
		return fmt.Errorf("copy %s: %d bytes, want %d", file, n, size)
	}
	return nil
}
