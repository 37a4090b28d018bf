package image

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"
)

// twoPlatformIndex builds an index of fake layers, the platforms in the
// given order.
func twoPlatformIndex(t *testing.T, o Options, platforms ...v1.Platform) *Index {
	t.Helper()
	var imgs []*Image
	for _, p := range platforms {
		img, err := NewImage(p, []Blob{
			fakeLayer("glibc-"+p.Architecture, "glibc"),
			fakeLayer("hello-"+p.Architecture, "hello"),
			fakeLayer("custom-" + p.Architecture),
		}, o)
		assert.NilError(t, err)
		imgs = append(imgs, img)
	}
	idx, err := NewIndex(imgs, map[string]string{
		AnnotationCreated: FormatCreated(o.Created),
		AnnotationSource:  "https://github.com/example/repo",
		AnnotationTitle:   "",
	})
	assert.NilError(t, err)
	return idx
}

// TestGolden pins the exact bytes of the configs, manifests and index, so
// any change to what users' registries receive shows up in review. Run
// with -update after an intended change.
func TestGolden(t *testing.T) {
	o := Options{
		Created: time.Unix(1700000000, 0),
		Cmd:     []string{"bash"},
		Env:     []string{"LANG=C.UTF-8"},
		Labels:  map[string]string{"b": "2", "a": "1"},
	}
	idx := twoPlatformIndex(t, o, amd64, arm64)
	var out bytes.Buffer
	raw, _ := idx.RawManifest()
	out.Write(indent(t, raw))
	for _, img := range idx.Images() {
		raw, _ := img.RawManifest()
		out.Write(indent(t, raw))
		raw, _ = img.RawConfigFile()
		out.Write(indent(t, raw))
	}
	golden.Assert(t, out.String(), "two-platforms.golden")
}

func indent(t *testing.T, raw []byte) []byte {
	var b bytes.Buffer
	assert.NilError(t, json.Indent(&b, raw, "", "  "))
	b.WriteString("\n")
	return b.Bytes()
}

func TestReproducible(t *testing.T) {
	created := time.Unix(1700000000, 0)
	first := twoPlatformIndex(t, Options{Created: created}, amd64, arm64)
	cases := []struct {
		name      string
		o         Options
		platforms []v1.Platform
	}{
		{"same inputs", Options{Created: created}, []v1.Platform{amd64, arm64}},
		{"platforms reversed", Options{Created: created}, []v1.Platform{arm64, amd64}},
		{"another time zone", Options{Created: created.In(time.FixedZone("X", 5*3600))}, []v1.Platform{amd64, arm64}},
		{"variant given", Options{Created: created}, []v1.Platform{{OS: "linux", Architecture: "arm64", Variant: "v8"}, amd64}},
	}
	want, _ := first.RawManifest()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			again := twoPlatformIndex(t, tc.o, tc.platforms...)
			got, _ := again.RawManifest()
			assert.Equal(t, string(got), string(want))
			for n, img := range again.Images() {
				a, _ := img.RawConfigFile()
				b, _ := first.Images()[n].RawConfigFile()
				assert.Equal(t, string(a), string(b))
			}
		})
	}

	// A different time is a different image.
	other := twoPlatformIndex(t, Options{Created: created.Add(time.Second)}, amd64, arm64)
	d1, _ := first.Digest()
	d2, _ := other.Digest()
	assert.Assert(t, d1 != d2)
}

func TestConfig(t *testing.T) {
	layers := []Blob{fakeLayer("a", "zlib", "glibc", "zlib"), fakeLayer("b")}
	img, err := NewImage(arm64, layers, Options{
		Cmd:        []string{"hello"},
		Entrypoint: []string{"/bin/sh", "-c"},
		WorkingDir: "/work",
		User:       "1000:1000",
		Env:        []string{"PATH=/custom/bin", "A=1", "B=x=y"},
		Labels:     map[string]string{"k": "v"},
	})
	assert.NilError(t, err)

	cf, err := img.ConfigFile()
	assert.NilError(t, err)
	assert.Equal(t, cf.OS, "linux")
	assert.Equal(t, cf.Architecture, "arm64")
	assert.Equal(t, cf.Variant, "v8")
	assert.Equal(t, cf.Created.Time.Unix(), int64(0))
	assert.DeepEqual(t, cf.Config.Cmd, []string{"hello"})
	assert.DeepEqual(t, cf.Config.Entrypoint, []string{"/bin/sh", "-c"})
	assert.Equal(t, cf.Config.WorkingDir, "/work")
	assert.Equal(t, cf.Config.User, "1000:1000")
	assert.DeepEqual(t, cf.Config.Env, []string{"PATH=/custom/bin", "SSL_CERT_FILE=" + CACertFile, "A=1", "B=x=y"})
	assert.DeepEqual(t, cf.Config.Labels, map[string]string{"k": "v"})
	assert.Equal(t, cf.RootFS.Type, "layers")
	assert.DeepEqual(t, cf.RootFS.DiffIDs, []v1.Hash{layers[0].DiffID, layers[1].DiffID})
	assert.Equal(t, len(cf.History), 2)
	assert.Assert(t, is.Contains(cf.History[0].Comment, "glibc, zlib"))

	m, err := img.Manifest()
	assert.NilError(t, err)
	assert.Equal(t, m.MediaType, types.OCIManifestSchema1)
	assert.Equal(t, m.Config.MediaType, types.OCIConfigJSON)
	cfgName, _ := img.ConfigName()
	assert.Equal(t, m.Config.Digest, cfgName)
	assert.Equal(t, len(m.Layers), 2)
	for n, d := range m.Layers {
		assert.Equal(t, d.MediaType, types.OCILayer)
		assert.Equal(t, d.Digest, layers[n].Digest)
		assert.Equal(t, d.Size, layers[n].Size)
		assert.Equal(t, d.Annotations[AnnotationLayerKey], layers[n].Key)
	}
	assert.DeepEqual(t, LayerPackages(m.Layers[0].Annotations), []string{"glibc", "zlib"})
	assert.Assert(t, LayerPackages(m.Layers[1].Annotations) == nil)

	// The default environment, untouched.
	img, err = NewImage(amd64, layers, Options{})
	assert.NilError(t, err)
	cf, err = img.ConfigFile()
	assert.NilError(t, err)
	assert.DeepEqual(t, cf.Config.Env, []string{"PATH=" + DefaultPath, "SSL_CERT_FILE=" + CACertFile})
	assert.Equal(t, cf.Variant, "")

	// Without a CA bundle in the image, no SSL_CERT_FILE pointing at
	// nothing, unless the user sets one.
	for _, tc := range []struct {
		env, want []string
	}{
		{nil, []string{"PATH=" + DefaultPath}},
		{[]string{"A=1", "SSL_CERT_FILE=/mine.pem"}, []string{"PATH=" + DefaultPath, "A=1", "SSL_CERT_FILE=/mine.pem"}},
	} {
		img, err = NewImage(amd64, layers, Options{NoCACert: true, Env: tc.env})
		assert.NilError(t, err)
		cf, err = img.ConfigFile()
		assert.NilError(t, err)
		assert.DeepEqual(t, cf.Config.Env, tc.want)
	}
}

func TestErrors(t *testing.T) {
	good := fakeLayer("good")
	noDiffID := fakeLayer("x")
	noDiffID.DiffID = v1.Hash{}
	noBlob := fakeLayer("y")
	noBlob.Path = ""
	zero := fakeLayer("z")
	zero.Size = 0
	cases := []struct {
		name     string
		platform v1.Platform
		layers   []Blob
		o        Options
		want     string
	}{
		{"no layers", amd64, nil, Options{}, "no layers"},
		{"no platform", v1.Platform{}, []Blob{good}, Options{}, "needs an OS and an architecture"},
		{"bad digest", amd64, []Blob{{DiffID: good.DiffID, Size: 1, Path: "x"}}, Options{}, "not a sha256 digest"},
		{"no diffID", amd64, []Blob{noDiffID}, Options{}, "diffID"},
		{"no blob", amd64, []Blob{noBlob}, Options{}, "no blob file"},
		{"zero size", amd64, []Blob{zero}, Options{}, "size 0"},
		{"layer twice", amd64, []Blob{good, good}, Options{}, "given twice"},
		{"bad env", amd64, []Blob{good}, Options{Env: []string{"NOEQUALS"}}, `"NOEQUALS" is not KEY=VALUE`},
		{"empty env key", amd64, []Blob{good}, Options{Env: []string{"=x"}}, "not KEY=VALUE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewImage(tc.platform, tc.layers, tc.o)
			assert.ErrorContains(t, err, tc.want)
		})
	}

	img, err := NewImage(amd64, []Blob{good}, Options{})
	assert.NilError(t, err)
	_, err = NewIndex([]*Image{img, img}, nil)
	assert.ErrorContains(t, err, "two images for linux/amd64")
	_, err = NewIndex(nil, nil)
	assert.ErrorContains(t, err, "no images")
	_, err = NewIndex([]*Image{img}, map[string]string{" k": "v"})
	assert.ErrorContains(t, err, "annotation key")
}

// TestValidate builds an index from real blobs and lets
// go-containerregistry's validator read every blob and check every hash.
func TestValidate(t *testing.T) {
	dir := t.TempDir()
	var imgs []*Image
	for _, p := range []v1.Platform{arm64, amd64} {
		img, err := NewImage(p, []Blob{
			blobLayerFile(t, dir, "nix/store/aaa-hello/bin/hello", "hello for "+p.Architecture, "hello"),
			blobLayerFile(t, dir, "etc/motd", "shared"),
		}, Options{})
		assert.NilError(t, err)
		imgs = append(imgs, img)
	}
	idx, err := NewIndex(imgs, nil)
	assert.NilError(t, err)
	assert.NilError(t, validate.Index(idx))

	m, err := idx.IndexManifest()
	assert.NilError(t, err)
	assert.Equal(t, m.MediaType, types.OCIImageIndex)
	var got []string
	for _, d := range m.Manifests {
		got = append(got, d.Platform.String())
		img, err := idx.Image(d.Digest)
		assert.NilError(t, err)
		size, _ := img.Size()
		assert.Equal(t, d.Size, size)
	}
	assert.DeepEqual(t, got, []string{"linux/amd64", "linux/arm64/v8"})
	_, err = idx.Image(fakeHash("nothing"))
	assert.ErrorContains(t, err, "no image")
}

// TestBlobChanged: a blob file that no longer has the size it was packed
// with fails the copy instead of giving a broken image.
func TestBlobChanged(t *testing.T) {
	dir := t.TempDir()
	l := blobLayerFile(t, dir, "a", "content")
	img, err := NewImage(amd64, []Blob{l}, Options{})
	assert.NilError(t, err)
	layer, err := img.LayerByDigest(l.Digest)
	assert.NilError(t, err)

	orig, err := os.ReadFile(l.Path)
	assert.NilError(t, err)
	for _, change := range []string{"grown", "shrunk"} {
		t.Run(change, func(t *testing.T) {
			data := append([]byte(nil), orig...)
			if change == "grown" {
				data = append(data, 0)
			} else {
				data = data[:len(data)-1]
			}
			assert.NilError(t, os.WriteFile(l.Path, data, 0o644))
			rc, err := layer.Compressed()
			assert.NilError(t, err)
			defer rc.Close()
			_, err = io.Copy(io.Discard, rc)
			assert.ErrorIs(t, err, errSize)
		})
	}
}

func TestLayerByDiffIDAndConfig(t *testing.T) {
	l := fakeLayer("a")
	img, err := NewImage(amd64, []Blob{l}, Options{})
	assert.NilError(t, err)
	got, err := img.LayerByDiffID(l.DiffID)
	assert.NilError(t, err)
	d, _ := got.Digest()
	assert.Equal(t, d, l.Digest)
	_, err = img.LayerByDiffID(fakeHash("none"))
	assert.ErrorContains(t, err, "no layer with diffID")

	cfgName, _ := img.ConfigName()
	cl, err := img.LayerByDigest(cfgName)
	assert.NilError(t, err)
	rc, err := cl.Compressed()
	assert.NilError(t, err)
	raw, _ := io.ReadAll(rc)
	want, _ := img.RawConfigFile()
	assert.Equal(t, string(raw), string(want))

	// Opening a layer whose blob is gone names the layer.
	ly, _ := img.LayerByDigest(l.Digest)
	_, err = ly.Compressed()
	assert.ErrorContains(t, err, "open layer "+l.Digest.String())
	assert.Assert(t, strings.Contains(err.Error(), "no such file"))
}
