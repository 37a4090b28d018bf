package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nixery-action/nixery-action/internal/httpstatus"
	bound "github.com/nixery-action/nixery-action/internal/limit"
)

// Reader reads manifests and configs from one repository with every
// bound of transport.go: sizes checked before and while reading, a
// deadline per request, digests verified where they are known. It is the
// registry library's remote.Get and Image.ConfigFile without their
// trust in the registry's sizes.
type Reader struct {
	client *http.Client
	stream *http.Client // for blobs: no bound on the whole answer
	repo   name.Repository
}

// NewReader opens a reader of repo with l, authenticated once for every
// read through it.
func NewReader(ctx context.Context, repo name.Repository, l Login, o Options) (*Reader, error) {
	o = o.WithDefaults()
	rt, err := transport.NewWithContext(ctx, repo.Registry, l.auth, o.RoundTripper(), []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, err
	}
	if o.UserAgent != "" {
		rt = transport.NewUserAgent(rt, o.UserAgent)
	}
	// The client's timeout covers reading the answer too: a registry
	// trickling bytes cannot hold a read open.
	return &Reader{
		client: &http.Client{Transport: rt, CheckRedirect: checkRedirect, Timeout: o.RequestTimeout},
		stream: &http.Client{Transport: rt, CheckRedirect: checkRedirect},
		repo:   repo,
	}, nil
}

var acceptManifests = strings.Join([]string{
	string(types.OCIImageIndex), string(types.OCIManifestSchema1),
	string(types.DockerManifestList), string(types.DockerManifestSchema2),
}, ",")

// Manifest reads the manifest or index ref names, at most MaxManifestSize
// bytes, checked against the digest when ref is one.
func (r *Reader) Manifest(ctx context.Context, ref name.Reference) ([]byte, types.MediaType, error) {
	resp, err := r.get(ctx, "manifests", ref.Identifier(), acceptManifests)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	raw, err := readLimited(resp, MaxManifestSize, "manifest "+ref.Identifier())
	if err != nil {
		if !errors.As(err, new(tooLargeError)) {
			return nil, "", err
		}
		return nil, "", fmt.Errorf("%w: %w", ErrNotManifest, err)
	}
	if d, ok := ref.(name.Digest); ok {
		if err := checkDigest(raw, d.DigestStr()); err != nil {
			return nil, "", fmt.Errorf("manifest %s: %w", d.DigestStr(), err)
		}
	}
	var probe struct {
		MediaType types.MediaType `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, "", fmt.Errorf("%w: manifest %s is not JSON: %v", ErrNotManifest, ref.Identifier(), err)
	}
	mt := probe.MediaType
	if ct, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "" && err == nil {
		mt = types.MediaType(ct)
	}
	if mt == "" && probe.Manifests != nil {
		mt = types.OCIImageIndex
	}
	return raw, mt, nil
}

// Config reads the config blob d describes, refusing one the descriptor
// says is larger than MaxConfigSize before reading anything.
func (r *Reader) Config(ctx context.Context, d v1.Descriptor) (*v1.ConfigFile, error) {
	raw, err := r.RawConfig(ctx, d)
	if err != nil {
		return nil, err
	}
	return v1.ParseConfigFile(bytes.NewReader(raw))
}

// RawConfig reads the bytes of the config blob d describes, as Config
// does: at most MaxConfigSize, exactly d's size, checked against d's
// digest.
func (r *Reader) RawConfig(ctx context.Context, d v1.Descriptor) ([]byte, error) {
	if d.Size <= 0 || d.Size > MaxConfigSize {
		return nil, fmt.Errorf("config %s: its manifest declares %d bytes, outside 1 to %d", d.Digest, d.Size, MaxConfigSize)
	}
	resp, err := r.get(ctx, "blobs", d.Digest.String(), "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := readLimited(resp, d.Size, "config "+d.Digest.String())
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) != d.Size {
		return nil, fmt.Errorf("config %s: %d bytes, but its manifest declares %d", d.Digest, len(raw), d.Size)
	}
	if err := checkDigest(raw, d.Digest.String()); err != nil {
		return nil, fmt.Errorf("config %s: %w", d.Digest, err)
	}
	return raw, nil
}

// Blob asks for the blob d with method (GET or HEAD), passing on
// rangeHeader when it is set: the registry's answer, 200 or 206 (or 416
// for a range outside the blob), whose body streams (only its headers
// are waited for within the request timeout). The caller closes it.
func (r *Reader) Blob(ctx context.Context, method string, d v1.Hash, rangeHeader string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, r.url("blobs", d.String()), nil)
	if err != nil {
		return nil, err
	}
	if rangeHeader != "" {
		req.Header.Set("Range", rangeHeader)
	}
	resp, err := r.stream.Do(req)
	if err != nil {
		return nil, err
	}
	if err := transport.CheckError(resp, http.StatusOK, http.StatusPartialContent, http.StatusRequestedRangeNotSatisfiable); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

// BlobHeld asks the registry whether it holds the blob d with d's size
// (a HEAD, nothing downloaded). A 200 whose length is d's size (or not
// given) is held, a 404 is not; anything else is an error: another
// status, a request that failed after the transport's own tries, or a
// length that is not d's (an answer mangled on the way). Only the last
// is asked about again, up to blobHeadTries times in all: the transport
// already tried the others again as far as they are worth it.
func (r *Reader) BlobHeld(ctx context.Context, d v1.Descriptor) (bool, error) {
	held, err := r.headBlob(ctx, d)
	for try := 1; try < blobHeadTries && errors.Is(err, errWrongLength) && ctx.Err() == nil; try++ {
		held, err = r.headBlob(ctx, d)
	}
	return held, err
}

// blobHeadTries is how often BlobHeld asks when the answer was mangled:
// a wrong length is not an answer the transport tries again, and two in
// a row happen under a faulty proxy.
const blobHeadTries = 3

// errWrongLength marks an answer to a HEAD whose length is not the
// blob's: mangled on the way, so worth asking again.
var errWrongLength = errors.New("mangled on the way?")

// tooLargeError is an answer past the bound its reader set.
type tooLargeError string

func (e tooLargeError) Error() string { return string(e) }

// ErrNotManifest is the registry's answer for a manifest being something
// else: too large for one, or not JSON (a layer asked for by its digest,
// say). The registry answered; what was asked for is no manifest.
var ErrNotManifest = errors.New("not a manifest")

func (r *Reader) headBlob(ctx context.Context, d v1.Descriptor) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, r.url("blobs", d.Digest.String()), nil)
	if err != nil {
		return false, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return false, nil
	case resp.StatusCode != http.StatusOK:
		return false, fmt.Errorf("the registry answered %s", httpstatus.Text(resp.StatusCode))
	case resp.ContentLength >= 0 && resp.ContentLength != d.Size:
		return false, fmt.Errorf("the registry's answer says %d bytes, not %d (%w)", resp.ContentLength, d.Size, errWrongLength)
	}
	return true, nil
}

// Referrers lists subject's referrers: the registry's referrers API
// where it has one (api true; every page, following its Link headers),
// else the OCI 1.1 fallback tag sha256-<hex>, read with the bounds of
// manifest (a missing tag lists none). Either way the answer is at most
// MaxManifestSize bytes, in at most maxReferrerPages pages, read within
// the time of one request.
func (r *Reader) Referrers(ctx context.Context, subject v1.Hash) (im *v1.IndexManifest, api bool, err error) {
	if r.client.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.client.Timeout)
		defer cancel()
	}
	what := "the referrers of " + subject.String()
	next := r.url("referrers", subject.String())
	left := int64(MaxManifestSize)
	for page := 0; next != ""; page++ {
		if page == maxReferrerPages {
			return nil, api, tooLargeError(fmt.Sprintf("%s: the registry sent more than %d pages", what, maxReferrerPages))
		}
		var raw []byte
		var noAPI bool
		raw, noAPI, next, err = r.referrersPage(ctx, next, left, what)
		switch {
		case err != nil:
			return nil, api, err
		case noAPI && page > 0:
			return nil, api, fmt.Errorf("%s: the registry has no next page it linked to", what)
		case noAPI:
			im, err := r.FallbackReferrers(ctx, subject)
			return im, false, err
		}
		api = true
		left -= int64(len(raw))
		pageIndex, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return nil, api, fmt.Errorf("%s: %w", what, err)
		}
		if im == nil {
			im = pageIndex
		} else {
			im.Manifests = append(im.Manifests, pageIndex.Manifests...)
		}
	}
	return im, api, nil
}

// maxReferrerPages bounds the pages of one referrers list: a registry
// pages at 100 or more (zot, Harbor), so this is thousands of referrers.
const maxReferrerPages = 64

// referrersPage reads one page of a referrers list at u, of at most
// limit bytes, and the next page's URL, which must be on the same
// registry and path; noAPI is a 404 or 400, a registry without the
// referrers API.
func (r *Reader) referrersPage(ctx context.Context, u string, limit int64, what string) (raw []byte, noAPI bool, next string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, false, "", err
	}
	req.Header.Set("Accept", string(types.OCIImageIndex))
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, false, "", err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusBadRequest:
		return nil, true, "", nil
	default:
		return nil, false, "", transport.CheckError(resp, http.StatusOK)
	}
	if raw, err = readLimited(resp, limit, what); err != nil {
		return nil, false, "", err
	}
	next, err = nextPage(req.URL, resp.Header.Values("Link"))
	if err != nil {
		return nil, false, "", fmt.Errorf("%s: %w", what, err)
	}
	return raw, false, next, nil
}

// nextPage is the rel="next" link among a registry's Link headers
// (RFC 8288), resolved against the page's URL u; a link to another host,
// scheme or path is refused (a registry must not send the reader, and
// its credentials, elsewhere).
func nextPage(u *url.URL, headers []string) (string, error) {
	for _, header := range headers {
		for _, link := range splitUnquoted(header, ',') {
			link = strings.TrimSpace(link)
			end := strings.IndexByte(link, '>')
			if !strings.HasPrefix(link, "<") || end < 0 || !relNext(link[end+1:]) {
				continue
			}
			target := link[1:end]
			ref, err := url.Parse(target)
			if err != nil {
				return "", fmt.Errorf("the registry's next-page link %s is no URL", Quoted(target, maxQuoted))
			}
			n := u.ResolveReference(ref)
			if n.Scheme != u.Scheme || n.Host != u.Host || n.Path != u.Path {
				return "", fmt.Errorf("the registry's next-page link %s leads off %s%s", Quoted(n.Redacted(), maxQuoted), u.Host, u.Path)
			}
			return n.String(), nil
		}
	}
	return "", nil
}

// relNext tells whether a link's parameters say rel="next".
func relNext(params string) bool {
	for _, p := range splitUnquoted(params, ';') {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "rel") {
			for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(v), `"`)) {
				if strings.EqualFold(rel, "next") {
					return true
				}
			}
		}
	}
	return false
}

// splitUnquoted splits s at each sep outside <...> and "..." (where a
// comma or semicolon is part of a URL or a quoted value).
func splitUnquoted(s string, sep byte) []string {
	var parts []string
	start, inURL, inQuote := 0, false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inQuote && c == '\\':
			i++ // an escaped character
		case c == '"' && !inURL:
			inQuote = !inQuote
		case c == '<' && !inQuote:
			inURL = true
		case c == '>' && !inQuote:
			inURL = false
		case c == sep && !inURL && !inQuote:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// FallbackReferrers reads subject's referrers from its fallback tag
// alone (for a registry known to have no referrers API); no tag is no
// referrers.
func (r *Reader) FallbackReferrers(ctx context.Context, subject v1.Hash) (*v1.IndexManifest, error) {
	raw, _, err := r.Manifest(ctx, FallbackTag(r.repo, subject))
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}, nil
	}
	if err != nil {
		return nil, err
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("the referrers of %s: %w", subject, err)
	}
	return im, nil
}

// FallbackTag is the OCI 1.1 referrers tag of subject in repo.
func FallbackTag(repo name.Repository, subject v1.Hash) name.Tag {
	return repo.Tag(subject.Algorithm + "-" + subject.Hex)
}

// ManifestExists asks the registry whether it holds the manifest d.
func (r *Reader) ManifestExists(ctx context.Context, d v1.Hash) bool {
	resp, err := r.headManifest(ctx, d.String())
	return err == nil && resp.StatusCode == http.StatusOK
}

// ManifestDigest asks the registry which manifest ref names, by the
// Docker-Content-Digest of its answer (ok false: none, or no usable
// answer).
func (r *Reader) ManifestDigest(ctx context.Context, ref name.Reference) (v1.Hash, bool) {
	d, found, err := r.Resolve(ctx, ref)
	return d, found && err == nil
}

// Resolve tells the digest ref names: found false where the registry
// holds no such manifest (404), an error where it could not tell.
func (r *Reader) Resolve(ctx context.Context, ref name.Reference) (d v1.Hash, found bool, err error) {
	resp, err := r.headManifest(ctx, ref.Identifier())
	switch {
	case err != nil:
		return v1.Hash{}, false, err
	case resp.StatusCode == http.StatusNotFound:
		return v1.Hash{}, false, nil
	case resp.StatusCode != http.StatusOK:
		return v1.Hash{}, false, fmt.Errorf("the registry answered %s", httpstatus.Text(resp.StatusCode))
	}
	d, err = v1.NewHash(resp.Header.Get("Docker-Content-Digest"))
	if err != nil {
		return v1.Hash{}, false, fmt.Errorf("the registry named no digest of %s: %w", ref, err)
	}
	return d, true, nil
}

func (r *Reader) headManifest(ctx context.Context, id string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, r.url("manifests", id), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", acceptManifests)
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	return resp, nil
}

func (r *Reader) url(kind, id string) string {
	return fmt.Sprintf("%s://%s/v2/%s/%s/%s", r.repo.Scheme(), r.repo.RegistryStr(), r.repo.RepositoryStr(), kind, id)
}

func (r *Reader) get(ctx context.Context, kind, id, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url(kind, id), nil)
	if err != nil {
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

// readLimited reads a body of at most limit bytes; a larger declared or
// actual length is an error, found without reading more than limit+1.
func readLimited(resp *http.Response, limit int64, what string) ([]byte, error) {
	if resp.ContentLength > limit {
		return nil, tooLargeError(fmt.Sprintf("%s: the registry declares %d bytes, more than the %d allowed", what, resp.ContentLength, limit))
	}
	raw, err := bound.ReadAll(resp.Body, limit)
	var le *bound.Error
	switch {
	case errors.As(err, &le):
		return nil, tooLargeError(fmt.Sprintf("%s: the registry sent more than the %d bytes allowed", what, limit))
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return raw, nil
}

func checkDigest(raw []byte, want string) error {
	got, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if got.String() != want {
		return fmt.Errorf("the registry sent content whose digest is %s", got)
	}
	return nil
}
