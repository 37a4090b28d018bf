package image

import (
	"fmt"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// DefaultPath is the PATH of every image unless Options.Env sets one.
// Runtimes apply their default PATH only to an image without one, so it
// keeps the /usr/local directories of theirs, first as they have them:
// that is where a derived image (a Dockerfile's COPY) puts its programs.
// The customisation layer links the packages' bin and sbin directories at
// /bin and /sbin and puts nothing in /usr/local (nixpkgs installs into
// $out/bin, never $out/usr/local), so no package's program is shadowed;
// the order of the rest is unchanged.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/bin:/usr/bin:/sbin:/usr/sbin"

// CACertFile is where the customisation layer puts the CA bundle of the
// cacert package, which images hold unless it was left out.
const CACertFile = "/etc/ssl/certs/ca-certificates.crt"

// Options are the parts of an image's config that the user chooses. The
// zero value gives an image with the default environment, no command and a
// creation time of the Unix epoch.
type Options struct {
	// Created is the creation time written into the config, history and
	// index annotations. The zero time means the Unix epoch; see
	// SourceDateEpoch.
	Created time.Time

	Cmd        []string
	Entrypoint []string
	WorkingDir string
	User       string

	// Env holds KEY=VALUE entries. One whose key is PATH or SSL_CERT_FILE
	// replaces the default; the others follow the defaults in order.
	Env []string
	// NoCACert says the image holds no CA bundle at CACertFile, so
	// SSL_CERT_FILE is not set (unless Env sets it): pointing programs at
	// a missing file breaks TLS for those that would find another.
	NoCACert bool

	Labels map[string]string

	// Annotations go on the image's manifest, DescriptorAnnotations on
	// its descriptor in the index (the manifest and manifest-descriptor
	// levels of ParseAnnotations). Empty values are left out.
	Annotations           map[string]string
	DescriptorAnnotations map[string]string
}

// Validate checks what a runtime would choke on or a config could not
// say: an empty program; a working directory that is not an absolute,
// clean path; line breaks or control characters in the working directory
// and user; environment and label keys outside CheckKey's rule; text that
// is not UTF-8 or holds NUL anywhere (CheckText).
func (o Options) Validate() error {
	if len(o.Entrypoint) > 0 && o.Entrypoint[0] == "" {
		return fmt.Errorf("the entrypoint's first word (the program) is empty or null: name a program, e.g. [\"/bin/hello\"]")
	}
	if len(o.Entrypoint) == 0 && len(o.Cmd) > 0 && o.Cmd[0] == "" {
		return fmt.Errorf("the command's first word (the program) is empty or null: name a program, e.g. [\"bash\"]")
	}
	for _, w := range o.Entrypoint {
		if err := CheckText("entrypoint word", w); err != nil {
			return err
		}
	}
	for _, w := range o.Cmd {
		if err := CheckText("command word", w); err != nil {
			return err
		}
	}
	if err := checkWorkingDir(o.WorkingDir); err != nil {
		return err
	}
	if err := CheckText("user", o.User); err != nil {
		return err
	}
	if hasControl(o.User) {
		return fmt.Errorf("user %q holds a line break or control character: give USER, UID or USER:GROUP", o.User)
	}
	for _, kv := range o.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("environment entry %q is not KEY=VALUE", kv)
		}
		if err := CheckKey("environment variable", k); err != nil {
			return err
		}
		if err := CheckText("environment variable "+k+"'s value", v); err != nil {
			return err
		}
	}
	if err := CheckKeyValues("label", o.Labels); err != nil {
		return err
	}
	if err := CheckKeyValues("annotation", o.Annotations); err != nil {
		return err
	}
	return CheckKeyValues("annotation", o.DescriptorAnnotations)
}

// nonEmpty is m without its empty values, nil when nothing is left.
func nonEmpty(m map[string]string) map[string]string {
	var out map[string]string
	for k, v := range m {
		if v == "" {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}

// checkWorkingDir accepts "" (the runtime's default, /) or an absolute,
// clean path: runc refuses a relative one, and ".." has no place in one.
func checkWorkingDir(dir string) error {
	if dir == "" {
		return nil
	}
	if err := CheckText("working directory", dir); err != nil {
		return err
	}
	if hasControl(dir) {
		return fmt.Errorf("working directory %q holds a line break or control character: give one path", dir)
	}
	if !path.IsAbs(dir) {
		return fmt.Errorf("working directory %q is not an absolute path: give one from the image's root, e.g. /work", dir)
	}
	if clean := path.Clean(dir); clean != dir {
		return fmt.Errorf("working directory %q is not a clean path (no \".\" or \"..\" parts, doubled or trailing '/'): give %s", dir, clean)
	}
	return nil
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0
}

// created returns the creation time in UTC, so that the config does not
// depend on the machine's time zone.
func (o Options) created() v1.Time {
	if o.Created.IsZero() {
		return v1.Time{Time: time.Unix(0, 0).UTC()}
	}
	return v1.Time{Time: o.Created.UTC()}
}

// env merges the defaults with o.Env.
func (o Options) env() ([]string, error) {
	env := []string{"PATH=" + DefaultPath}
	index := map[string]int{"PATH": 0}
	if !o.NoCACert {
		env = append(env, "SSL_CERT_FILE="+CACertFile)
		index["SSL_CERT_FILE"] = 1
	}
	for _, kv := range o.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t\n") {
			return nil, fmt.Errorf("environment entry %q is not KEY=VALUE", kv)
		}
		if i, seen := index[k]; seen {
			env[i] = kv
			continue
		}
		index[k] = len(env)
		env = append(env, kv)
	}
	return env, nil
}

// configFile builds the config of an image for platform p over layers.
func configFile(p v1.Platform, layers []Blob, o Options) (*v1.ConfigFile, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	env, err := o.env()
	if err != nil {
		return nil, err
	}
	created := o.created()
	cf := &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Variant:      p.Variant,
		OSVersion:    p.OSVersion,
		Created:      created,
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Cmd:        o.Cmd,
			Entrypoint: o.Entrypoint,
			Env:        env,
			WorkingDir: o.WorkingDir,
			User:       o.User,
			Labels:     o.Labels,
		},
	}
	for _, l := range layers {
		cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, l.DiffID)
		cf.History = append(cf.History, history(l, created))
	}
	return cf, nil
}

// history describes one layer by what it holds; it carries no build
// machine details, so it is the same on every run.
func history(l Blob, created v1.Time) v1.History {
	what := "store paths of " + strings.Join(sortedUnique(l.Packages), ", ")
	if len(l.Packages) == 0 {
		what = "customisation layer"
	}
	if l.Key != "" {
		what += " (layer " + l.Key + ")"
	}
	return v1.History{Created: created, CreatedBy: "nixery-action", Comment: what}
}
