package spec

import (
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestParse(t *testing.T) {
	shell := []string{"bashInteractive", "cacert", "coreutils", "iana-etc", "moreutils", "nano"}
	cases := []struct {
		name      string
		args      []string
		opts      Options
		requested []string
		packages  []string
		shell     bool
		arm64     bool
	}{
		// Nixery's own cases (builder_test.go of the seed).
		{name: "simple", args: []string{"hello"},
			requested: []string{"hello"}, packages: []string{"cacert", "hello", "iana-etc"}},
		{name: "multiple", args: []string{"hello/git/htop"},
			requested: []string{"git", "hello", "htop"}, packages: []string{"cacert", "git", "hello", "htop", "iana-etc"}},
		{name: "shell", args: []string{"shell"},
			requested: []string{"shell"}, packages: shell, shell: true},
		{name: "shell multiple", args: []string{"shell/htop"},
			requested: []string{"htop", "shell"}, packages: []string{"bashInteractive", "cacert", "coreutils", "htop", "iana-etc", "moreutils", "nano"}, shell: true},
		{name: "shell arm64", args: []string{"shell/arm64"},
			requested: []string{"arm64", "shell"}, packages: shell, shell: true, arm64: true},

		// Meta-packages count anywhere, not only at the front.
		{name: "meta-packages last", args: []string{"htop/arm64/shell"},
			requested: []string{"arm64", "htop", "shell"}, packages: []string{"bashInteractive", "cacert", "coreutils", "htop", "iana-etc", "moreutils", "nano"}, shell: true, arm64: true},

		// Separators and several arguments.
		{name: "spaces commas newlines", args: []string{"git, hello\nhtop\t jq"},
			requested: []string{"git", "hello", "htop", "jq"}, packages: []string{"cacert", "git", "hello", "htop", "iana-etc", "jq"}},
		{name: "several arguments", args: []string{"hello", "git", "hello"},
			requested: []string{"git", "hello"}, packages: []string{"cacert", "git", "hello", "iana-etc"}},
		{name: "dotted attribute path", args: []string{"python3Packages.requests"},
			requested: []string{"python3Packages.requests"}, packages: []string{"cacert", "iana-etc", "python3Packages.requests"}},
		{name: "identifier characters", args: []string{"_foo-bar'2", "gcc_12"},
			requested: []string{"_foo-bar'2", "gcc_12"}, packages: []string{"_foo-bar'2", "cacert", "gcc_12", "iana-etc"}},

		// Defaults: de-duplicated when asked for, left out on request.
		{name: "defaults asked for", args: []string{"cacert hello"},
			requested: []string{"cacert", "hello"}, packages: []string{"cacert", "hello", "iana-etc"}},
		{name: "no defaults", args: []string{"hello"}, opts: Options{NoDefaults: true},
			requested: []string{"hello"}, packages: []string{"hello"}},

		// bashInteractive named directly also makes bash the command.
		{name: "bashInteractive", args: []string{"bashInteractive"},
			requested: []string{"bashInteractive"}, packages: []string{"bashInteractive", "cacert", "iana-etc"}, shell: true},
		{name: "arm64 alone", args: []string{"arm64"},
			requested: []string{"arm64"}, packages: []string{"cacert", "iana-etc"}, arm64: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.args, tc.opts)
			assert.NilError(t, err)
			assert.DeepEqual(t, s.Requested, tc.requested)
			assert.DeepEqual(t, s.Packages, tc.packages)
			assert.Equal(t, s.Shell, tc.shell)
			if tc.arm64 {
				assert.DeepEqual(t, s.Platforms, []Platform{Arm64})
			} else {
				assert.Assert(t, s.Platforms == nil)
			}
			assert.Equal(t, s.Name(), strings.Join(tc.requested, "/"))
		})
	}
}

// The order in which names are given never changes the result.
func TestParseOrderIndependent(t *testing.T) {
	orders := [][]string{
		{"shell/htop/arm64/python3Packages.requests"},
		{"python3Packages.requests", "arm64", "htop", "shell"},
		{"arm64 shell", "htop,python3Packages.requests,htop"},
	}
	first, err := Parse(orders[0], Options{})
	assert.NilError(t, err)
	for _, o := range orders[1:] {
		s, err := Parse(o, Options{})
		assert.NilError(t, err)
		assert.DeepEqual(t, s, first)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		opts Options
		want []string // substrings of the error
	}{
		{name: "injection", args: []string{`hello"; builtins.abort "x`},
			want: []string{"`hello\";`", "`\"x`", `(in ` + "`" + `hello"; builtins.abort "x` + "`)", AttrRule}},
		{name: "injection as one argument each", args: []string{`hello";`, "ok"},
			want: []string{"invalid package name `hello\";`: ", AttrRule}},
		{name: "interpolation", args: []string{"${builtins.abort}"}, want: []string{"`${builtins.abort}`"}},
		{name: "quoted attribute", args: []string{`python3Packages."requests"`}, want: []string{`python3Packages."requests"`}},
		{name: "leading digit", args: []string{"3to2"}, want: []string{"`3to2`"}},
		{name: "part with leading digit", args: []string{"python3Packages.3to2"}, want: []string{"python3Packages.3to2"}},
		{name: "empty part", args: []string{"python3Packages..requests"}, want: []string{"python3Packages..requests"}},
		{name: "trailing dot", args: []string{"hello."}, want: []string{"`hello.`"}},
		{name: "leading dot", args: []string{".hello"}, want: []string{"`.hello`"}},
		{name: "flake reference", args: []string{"nixpkgs#hello"}, want: []string{"`nixpkgs#hello`"}},
		{name: "control character", args: []string{"hel\x00lo"}, want: []string{`"hel\x00lo"`}},
		{name: "non-ASCII", args: []string{"héllo"}, want: []string{"héllo"}},
		{name: "too long", args: []string{strings.Repeat("a", 300)}, want: []string{"invalid package name", AttrRule}},
		{name: "several bad names", args: []string{"ok", "b@d", "w*rse"}, want: []string{"invalid package names `b@d`, `w*rse`"}},
		{name: "nothing", args: nil, want: []string{"no package names given"}},
		{name: "only separators", args: []string{" , / \n"}, want: []string{"no package names given"}},
		{name: "only a platform", args: []string{"arm64"}, opts: Options{NoDefaults: true}, want: []string{"arm64 only selects a platform"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.args, tc.opts)
			assert.Assert(t, err != nil)
			for _, w := range tc.want {
				assert.Assert(t, is.Contains(err.Error(), w))
			}
		})
	}
}

func TestCheckAttr(t *testing.T) {
	for _, ok := range []string{"hello", "python3Packages.requests", "_x", "a-b", "a'", "A.B.C", "gnome.gnome-shell", "x_1-2'"} {
		assert.NilError(t, CheckAttr(ok), ok)
	}
	for _, bad := range []string{"", "1a", "-a", "'a", "a.", ".a", "a..b", "a b", `a"`, "a\\b", "a;b", "a/b", "a#b", "a${b}", "a\nb", "ä"} {
		assert.Assert(t, CheckAttr(bad) != nil, "%q accepted", bad)
	}
}

// FuzzCheckAttr: whatever CheckAttr accepts can only be identifiers joined
// by dots, so no accepted name can carry Nix syntax.
func FuzzCheckAttr(f *testing.F) {
	for _, s := range []string{"hello", `hello"; builtins.abort "x`, "a.b", "a..b", "${x}", "a'b-c_d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if CheckAttr(s) != nil {
			return
		}
		if strings.ContainsAny(s, "\"\\$;{}()[]=:#/ \t\n@") || strings.Contains(s, "..") || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") {
			t.Fatalf("accepted %q", s)
		}
		s2, err := Parse([]string{s}, Options{NoDefaults: true})
		if err != nil {
			t.Fatalf("CheckAttr accepted %q but Parse refused it: %v", s, err)
		}
		if s != MetaShell && s != MetaArm64 && (len(s2.Packages) != 1 || s2.Packages[0] != s) {
			t.Fatalf("Parse(%q) = %v", s, s2.Packages)
		}
	})
}

// FuzzParse: any input either fails or gives sorted, distinct, valid
// attribute paths, whatever the order of the names.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"shell/git/htop", "hello git,curl\njq", `hello"; builtins.abort "x`, "arm64 shell python3Packages.requests", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Parse([]string{s}, Options{})
		if err != nil {
			return
		}
		for i, p := range got.Packages {
			if CheckAttr(p) != nil {
				t.Fatalf("Parse(%q) gave the invalid name %q", s, p)
			}
			if i > 0 && got.Packages[i-1] >= p {
				t.Fatalf("Parse(%q) = %v: not sorted and distinct", s, got.Packages)
			}
		}
		// Installables keep their slashes; other words split on them.
		var fields []string
		for _, w := range strings.FieldsFunc(s, isListSep) {
			if IsInstallable(w) {
				fields = append(fields, w)
			} else {
				fields = append(fields, strings.FieldsFunc(w, isNameSep)...)
			}
		}
		for i, j := 0, len(fields)-1; i < j; i, j = i+1, j-1 {
			fields[i], fields[j] = fields[j], fields[i]
		}
		again, err := Parse(fields, Options{})
		if err != nil {
			t.Fatalf("Parse(%q) failed on the names reversed: %v", s, err)
		}
		if strings.Join(again.Packages, " ") != strings.Join(got.Packages, " ") || len(again.Installables) != len(got.Installables) {
			t.Fatalf("order changed the packages: %v vs %v", got.Packages, again.Packages)
		}
	})
}

// The image's name (its title annotation) and the packages logged hide a
// flake reference's token.
func TestNameHidesCredentials(t *testing.T) {
	s, err := Parse([]string{"hello", "git+https://oauth2:s3cr3t-tok@example.com/app.git#app"}, Options{})
	assert.NilError(t, err)
	for _, shown := range []string{s.Name(), strings.Join(s.Shown(), " ")} {
		assert.Assert(t, !strings.Contains(shown, "s3cr3t-tok"), shown)
		assert.Assert(t, strings.Contains(shown, "REDACTED@example.com/app.git#app"), shown)
	}
	assert.Assert(t, strings.Contains(strings.Join(s.AllPackages(), " "), "s3cr3t-tok"), "what Nix is given keeps the token")
}

// Name hides a local flake's directory, as the title and the SBOM show
// it, and leaves a remote flake and a package as they are.
func TestNameHidesLocalDirectory(t *testing.T) {
	s, err := Parse([]string{"hello", "path:/home/runner/work/app/app#lint", "github:o/r#tool"}, Options{})
	assert.NilError(t, err)
	assert.Equal(t, s.Name(), "github:o/r#tool/hello/path:.../app#lint")
}
