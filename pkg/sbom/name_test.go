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
		// An output Nix did not append is not taken from the name.
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-glibc-2.39", "dev", Name{"glibc", "2.39", ""}},
		// No version: a suffix that looks like an output stays part of the name.
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-foo-bin", "", Name{"foo-bin", "", ""}},
		{"/nix/store/hhj9vcrybxfhn7a7bfx38lg8nk758lzq-iana-etc", "", Name{"iana-etc", "", ""}},
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
