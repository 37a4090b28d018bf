// Package spec turns what users write into what an image is made of: a
// sorted list of nixpkgs attribute paths, the platforms to build, and
// whether the image starts a shell. It knows Nixery's naming: the path
// form shell/git/htop, the meta-packages shell and arm64, and the packages
// every image gets (cacert, iana-etc). Every name is checked against
// nixpkgs' attribute grammar here, before anything reaches Nix.
//
// Meta-packages may appear anywhere in the list. Nixery only recognised
// them at the front of an image name, but here the order of names never
// changes the image, so hello/shell and shell/hello mean the same thing.
package spec

import (
	"fmt"
	"sort"
	"strings"

	"github.com/nixery-action/nixery-action/pkg/flakeref"
)

// Meta-packages: names that are not nixpkgs attributes but change the image.
const (
	// MetaShell adds ShellPackages and makes bash the image's command.
	MetaShell = "shell"
	// MetaArm64 selects the linux/arm64 platform.
	MetaArm64 = "arm64"
)

// ShellPackages are the packages the shell meta-package adds.
var ShellPackages = []string{"bashInteractive", "coreutils", "moreutils", "nano"}

// DefaultPackages are added to every image unless Options.NoDefaults is
// set: TLS certificates and the protocols/services tables most network
// programs expect.
var DefaultPackages = []string{"cacert", "iana-etc"}

// shellAttr is the package whose presence makes bash the image's command.
const shellAttr = "bashInteractive"

// Spec is what an image is made of, independent of the order in which it
// was asked for.
type Spec struct {
	// Requested are the names as given (meta-packages included), sorted
	// and de-duplicated: Nixery's image name is these joined by "/".
	Requested []string
	// Packages are the nixpkgs attribute paths to realise: the requested
	// packages, what meta-packages expand to and the default packages;
	// sorted and de-duplicated.
	Packages []string
	// Shell reports that the image should run bash by default (Cmd
	// ["bash"]): the shell meta-package was given or bashInteractive was
	// requested, as in Nixery.
	Shell bool
	// Platforms are those the meta-packages selected (arm64), in canonical
	// order; nil when none did. See SelectPlatforms.
	Platforms []Platform
	// Installables are the packages of other flakes (the team's own
	// software), sorted by Ref and de-duplicated; they are in Requested
	// too, not in Packages.
	Installables []Installable
}

// Options change how names are expanded.
type Options struct {
	// NoDefaults leaves out DefaultPackages.
	NoDefaults bool
}

// Parse reads package names: each argument may hold several, separated by
// spaces, commas, newlines or slashes (Nixery's path form,
// shell/git/htop). It rejects names outside nixpkgs' attribute grammar,
// naming each of them, and an input that names no package at all.
func Parse(args []string, opts Options) (*Spec, error) {
	var names, bad []string
	var installables []Installable
	var badInstallable error
	for _, arg := range args {
		// A flake installable keeps its slashes (path:../x#app); the
		// other words are split on them, Nixery's path form.
		var fields []string
		for _, w := range Words(arg) {
			if IsInstallable(w) {
				fields = append(fields, w)
			} else {
				fields = append(fields, strings.FieldsFunc(w, isNameSep)...)
			}
		}
		for _, f := range fields {
			if IsInstallable(f) {
				inst, err := ParseInstallable(f)
				if err != nil {
					badInstallable = err
					continue
				}
				installables = append(installables, inst)
				names = append(names, f)
				continue
			}
			if f == MetaShell || f == MetaArm64 {
				names = append(names, f)
				continue
			}
			if err := CheckAttr(f); err != nil {
				if len(fields) > 1 {
					// The argument may hold a flake reference and its token.
					bad = append(bad, fmt.Sprintf("%s (in %s)", quote(f), quote(scrubWords(arg, fields))))
				} else {
					bad = append(bad, quote(f))
				}
				continue
			}
			names = append(names, f)
		}
	}
	switch {
	case badInstallable != nil:
		return nil, badInstallable
	case len(bad) == 1:
		return nil, fmt.Errorf("invalid package name %s: %s", bad[0], AttrRule)
	case len(bad) > 1:
		return nil, fmt.Errorf("invalid package names %s: %s", strings.Join(bad, ", "), AttrRule)
	case len(names) == 0:
		return nil, fmt.Errorf("no package names given: name at least one nixpkgs package, e.g. hello, or a flake's, e.g. .#app")
	}

	s := &Spec{Requested: sortedUnique(names), Installables: uniqueInstallables(installables)}
	var pkgs []string
	for _, n := range s.Requested {
		switch {
		case IsInstallable(n):
			continue
		case n == MetaShell:
			pkgs = append(pkgs, ShellPackages...)
		case n == MetaArm64:
			s.Platforms = []Platform{Arm64}
		default:
			pkgs = append(pkgs, n)
		}
	}
	if !opts.NoDefaults {
		pkgs = append(pkgs, DefaultPackages...)
	}
	s.Packages = sortedUnique(pkgs)
	if len(s.Packages) == 0 && len(s.Installables) == 0 {
		return nil, fmt.Errorf("no packages to build: %s only selects a platform; name a package too", MetaArm64)
	}
	for _, p := range s.Packages {
		if p == shellAttr {
			s.Shell = true
		}
	}
	return s, nil
}

// Name returns Nixery's name for the image: the requested names, sorted,
// joined by "/", with the credentials of flake references and a local
// flake's directory hidden (the name goes into the image's title
// annotation, its SBOM and logs).
func (s *Spec) Name() string {
	names := make([]string, len(s.Requested))
	for i, n := range s.Requested {
		if IsInstallable(n) {
			names[i] = flakeref.WithoutDirectory(n)
		} else {
			names[i] = flakeref.Redacted(n)
		}
	}
	return strings.Join(names, "/")
}

// Shown are AllPackages with the credentials of flake references
// hidden, for logs.
func (s *Spec) Shown() []string {
	all := s.AllPackages()
	for i, p := range all {
		all[i] = flakeref.Redacted(p)
	}
	return all
}

// SelectPlatforms returns the platforms to build: those requested (e.g. by
// a --platforms flag) merged with those the meta-packages selected, in
// canonical order; DefaultPlatform when there are neither. So arm64 alone
// builds linux/arm64 only, as in Nixery, and arm64 with --platforms
// linux/amd64 builds both.
func (s *Spec) SelectPlatforms(requested []Platform) []Platform {
	out := MergePlatforms(requested, s.Platforms)
	if len(out) == 0 {
		return []Platform{DefaultPlatform}
	}
	return out
}

// uniqueInstallables sorts installables by Ref, each once.
func uniqueInstallables(in []Installable) []Installable {
	sort.Slice(in, func(i, j int) bool { return in[i].Ref < in[j].Ref })
	var out []Installable
	for i, v := range in {
		if i == 0 || v.Ref != in[i-1].Ref {
			out = append(out, v)
		}
	}
	return out
}

func isNameSep(r rune) bool { return isListSep(r) || r == '/' }

func sortedUnique(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	n := 0
	for i, v := range out {
		if i == 0 || v != out[n-1] {
			out[n] = v
			n++
		}
	}
	return out[:n]
}

// scrubWords is arg with the credentials of each of its words (a flake
// reference may carry a token in its userinfo or query) hidden.
func scrubWords(arg string, words []string) string {
	var secrets []string
	for _, w := range words {
		secrets = append(secrets, flakeref.Secrets(w)...)
	}
	return flakeref.Scrub(arg, secrets)
}
