package image

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Index annotations from the OCI image spec's pre-defined keys.
const (
	AnnotationCreated     = "org.opencontainers.image.created"
	AnnotationSource      = "org.opencontainers.image.source"
	AnnotationRevision    = "org.opencontainers.image.revision"
	AnnotationTitle       = "org.opencontainers.image.title"
	AnnotationDescription = "org.opencontainers.image.description"
	AnnotationURL         = "org.opencontainers.image.url"
	AnnotationVersion     = "org.opencontainers.image.version"
	AnnotationLicenses    = "org.opencontainers.image.licenses"
	AnnotationVendor      = "org.opencontainers.image.vendor"
)

// FormatCreated formats t for AnnotationCreated: RFC 3339 in UTC, the
// same instant the image configs carry. The zero time means the Unix epoch.
func FormatCreated(t time.Time) string {
	return Options{Created: t}.created().Format(time.RFC3339)
}

// SourceDateEpoch reads SOURCE_DATE_EPOCH through getenv (os.Getenv in the
// program): the creation time of reproducible builds, in seconds since the
// Unix epoch. Unset or empty gives the Unix epoch itself.
func SourceDateEpoch(getenv func(string) string) (time.Time, error) {
	t, err := ParseSourceDateEpoch(getenv("SOURCE_DATE_EPOCH"))
	if err != nil || !t.IsZero() {
		return t, err
	}
	return time.Unix(0, 0).UTC(), nil
}

// ParseSourceDateEpoch is the one parser of SOURCE_DATE_EPOCH's value,
// so that every package reads it alike: surrounding blanks are ignored,
// "" gives the zero time, and anything but a whole number of seconds from
// 0 to the end of year 9999 (beyond which RFC 3339 cannot write the time)
// is an error.
func ParseSourceDateEpoch(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	secs, err := strconv.ParseInt(s, 10, 64)
	if err != nil || secs < 0 || secs > 253402300799 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a whole number of seconds since 1970 (e.g. $(git log -1 --format=%%ct))", s)
	}
	return time.Unix(secs, 0).UTC(), nil
}

// GitHubAnnotations derives the source and revision annotations from the
// variables GitHub Actions sets (GITHUB_SERVER_URL, GITHUB_REPOSITORY,
// GITHUB_SHA), read through getenv. Outside Actions it returns an empty
// map.
func GitHubAnnotations(getenv func(string) string) map[string]string {
	a := map[string]string{}
	server := strings.TrimSuffix(getenv("GITHUB_SERVER_URL"), "/")
	if server == "" {
		server = "https://github.com"
	}
	// A URL only from a well-formed server and an owner/name repository:
	// a runner that sets GITHUB_REPOSITORY to a clone's directory (act
	// does) gives no source, rather than a wrong one.
	if repo := getenv("GITHUB_REPOSITORY"); validServer(server) && ownerName.MatchString(repo) {
		a[AnnotationSource] = server + "/" + repo
	}
	if sha := getenv("GITHUB_SHA"); commitID.MatchString(sha) {
		a[AnnotationRevision] = sha
	}
	return a
}

var (
	ownerName = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
	commitID  = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)
)

// validServer tells a server URL such as https://github.com or
// https://github.example.com: http(s), a host, nothing after it.
func validServer(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" &&
		(u.Path == "" || u.Path == "/") && u.RawQuery == "" && u.Fragment == "" && u.User == nil
}

// LabelsFrom are the image config labels that registries read (GHCR links
// a package to its repository by org.opencontainers.image.source, and
// shows its description): the index's source, revision, created and
// title annotations, with description and licenses where known.
func LabelsFrom(annotations map[string]string, description, licenses string) map[string]string {
	l := map[string]string{}
	for _, k := range []string{AnnotationSource, AnnotationRevision, AnnotationCreated, AnnotationTitle} {
		if v := annotations[k]; v != "" {
			l[k] = v
		}
	}
	if description != "" {
		l[AnnotationDescription] = description
	}
	if licenses != "" {
		l[AnnotationLicenses] = licenses
	}
	return l
}
