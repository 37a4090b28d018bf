package sbom

import "strings"

// Name is a store path's name split the way nixpkgs names its outputs:
// <pname>-<version>[-<output>].
type Name struct {
	Name    string // e.g. openssl, bash-interactive, python3.12-requests
	Version string // e.g. 3.0.13; empty when the name has none
	Output  string // e.g. dev, man; empty for the default output "out"
}

// knownOutputs are the output names nixpkgs' multiple-output packages use
// most: the standard ones of multiple-outputs.sh (bin ... static), and
// those of packages in nearly every closure: gcc's libgcc (glibc links
// it), glibc's getent, openssl's etc, util-linux's login, mount, swap and
// lastlog, shadow's su, the kernel's modules, the py of C libraries'
// Python bindings, buildPythonPackage's dist, GNOME's installedTests,
// terminals' terminfo. A suffix is only taken for an output when a
// version comes before it, so that an unversioned name such as "foo-bin"
// or "iana-etc" stays whole.
var knownOutputs = map[string]bool{
	"bin": true, "dev": true, "devdoc": true, "devman": true, "doc": true, "info": true,
	"lib": true, "man": true, "debug": true, "static": true, "include": true,
	"libgcc": true, "getent": true, "etc": true, "login": true, "mount": true, "swap": true,
	"lastlog": true, "su": true, "modules": true, "py": true, "dist": true,
	"installedTests": true, "terminfo": true,
}

// ParseName splits a store path (or its base name, with or without the
// hash) into name, version and output. output is the output name when it
// is known (a requested package's outputs are); empty means guess it from
// the suffix.
func ParseName(storePath, output string) Name {
	base := storePath[strings.LastIndexByte(storePath, '/')+1:]
	if h, rest, ok := strings.Cut(base, "-"); ok && len(h) == 32 {
		base = rest
	}
	if output == "out" {
		output = ""
	}
	if output != "" {
		if trimmed, ok := strings.CutSuffix(base, "-"+output); ok && trimmed != "" {
			base = trimmed
		} else {
			output = "" // the name does not end in it: a store path Nix named otherwise
		}
	} else if i := strings.LastIndexByte(base, '-'); i > 0 && knownOutputs[base[i+1:]] {
		if n, v := parseDrvName(base[:i]); v != "" {
			return Name{Name: n, Version: v, Output: base[i+1:]}
		}
	}
	n, v := parseDrvName(base)
	return Name{Name: n, Version: v, Output: output}
}

// parseDrvName is Nix's builtins.parseDrvName: the version starts after
// the first dash that is followed by something other than a letter.
func parseDrvName(s string) (name, version string) {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '-' && !isLetter(s[i+1]) {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
