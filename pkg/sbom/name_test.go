package sbom

import (
	"testing"

	"gotest.tools/v3/assert"
)

func TestParseName(t *testing.T) {
	for _, tc := range []struct {
		path, output string
		want         Name
	}{
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-hello-2.12.1", "", Name{"hello", "2.12.1", ""}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-hello", "", Name{"hello", "", ""}},
		{"hhj9vcrybxfhn7a7bfx38lg8nk758lzq-hello-2.12.1", "", Name{"hello", "2.12.1", ""}},
		{"hello-2.12.1", "", Name{"hello", "2.12.1", ""}},
		// Outputs, guessed from the suffix or given.
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-openssl-3.0.13-dev", "", Name{"openssl", "3.0.13", "dev"}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-gcc-13.2.0-lib", "", Name{"gcc", "13.2.0", "lib"}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-bash-interactive-5.2p37-man", "", Name{"bash-interactive", "5.2p37", "man"}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-curl-8.7.1-bin", "", Name{"curl", "8.7.1", "bin"}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-curl-8.7.1-bin", "bin", Name{"curl", "8.7.1", "bin"}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-curl-8.7.1", "out", Name{"curl", "8.7.1", ""}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-ncurses-6.4-terminfo", "terminfo", Name{"ncurses", "6.4", "terminfo"}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-multi-doc", "doc", Name{"multi", "", "doc"}},
		// nixpkgs' other common outputs, in nearly every glibc closure.
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-xgcc-13.2.0-libgcc", "", Name{"xgcc", "13.2.0", "libgcc"}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-gcc-13.2.0-libgcc", "", Name{"gcc", "13.2.0", "libgcc"}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-util-linux-2.39.3-login", "", Name{"util-linux", "2.39.3", "login"}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-util-linux-2.39.3-mount", "", Name{"util-linux", "2.39.3", "mount"}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-util-linux-2.39.3-swap", "", Name{"util-linux", "2.39.3", "swap"}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-openssl-3.0.13-etc", "", Name{"openssl", "3.0.13", "etc"}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-glibc-2.39-52-getent", "", Name{"glibc", "2.39-52", "getent"}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-shadow-4.14.6-su", "", Name{"shadow", "4.14.6", "su"}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-linux-6.6.30-modules", "", Name{"linux", "6.6.30", "modules"}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-libxml2-2.12.7-py", "", Name{"libxml2", "2.12.7", "py"}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-python3.12-requests-2.31.0-dist", "", Name{"python3.12-requests", "2.31.0", "dist"}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-glib-2.80.2-installedTests", "", Name{"glib", "2.80.2", "installedTests"}},
		// An output that is none of those is glued to the version: only
		// the evaluated package knows better (see withMeta).
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-gcc-13.2.0-checksum", "", Name{"gcc", "13.2.0-checksum", ""}},
		// An output Nix did not append is not taken from the name.
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-glibc-2.39", "dev", Name{"glibc", "2.39", ""}},
		// No version: a suffix that looks like an output stays part of the name.
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-foo-bin", "", Name{"foo-bin", "", ""}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-iana-etc", "", Name{"iana-etc", "", ""}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-iana-etc-20240318", "", Name{"iana-etc", "20240318", ""}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-etc", "", Name{"etc", "", ""}},
		// A dash and a digit in the pname: the name alone splits it there
		// (the evaluated pname and version put it right, see withMeta).
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-font-adobe-100dpi-1.0.4", "", Name{"font-adobe", "100dpi-1.0.4", ""}},
		// Dots and dashes in names, as parseDrvName splits them.
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-python3.12-requests-2.31.0", "", Name{"python3.12-requests", "2.31.0", ""}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-perl5.38.2-Foo-Bar-1.0", "", Name{"perl5.38.2-Foo-Bar", "1.0", ""}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-libsqlite3-0-3.40.1-2+deb12u2", "", Name{"libsqlite3", "0-3.40.1-2+deb12u2", ""}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-util-linux-minimal-2.39.4-lib", "", Name{"util-linux-minimal", "2.39.4", "lib"}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-hello-2.12.1.tar.gz", "", Name{"hello", "2.12.1.tar.gz", ""}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-source", "", Name{"source", "", ""}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-hello-", "", Name{"hello-", "", ""}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-a--1", "", Name{"a", "-1", ""}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-.dotfile-1", "", Name{".dotfile", "1", ""}},
	} {
		t.Run(tc.path+"/"+tc.output, func(t *testing.T) {
			assert.Equal(t, ParseName(tc.path, tc.output), tc.want)
		})
	}
}
