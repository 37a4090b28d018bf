package nix

import (
	"context"
	"errors"
	"slices"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// lixMetadata is `nix flake metadata --json path:/src/nixpkgs` on Lix
// 2.95, which still prints "path" (lix-project/lix 2.95.3,
// lix/nix/flake.cc).
const lixMetadata = `{"lastModified":1786195404,"locked":{"lastModified":1786195404,"narHash":"sha256-MIfaEjtgsUINambJiSikQ1onJPOTCwW2lkau4MDN30A=","path":"/src/nixpkgs","type":"path"},"locks":{"nodes":{"root":{}},"root":"root","version":7},"original":{"path":"/src/nixpkgs","type":"path"},"originalUrl":"path:/src/nixpkgs","path":"/nix/store/g8dq2k3b8qmixdgz490lqp1s1zy46d9g-source","resolved":{"path":"/src/nixpkgs","type":"path"},"resolvedUrl":"path:/src/nixpkgs","url":"path:/src/nixpkgs?lastModified=1786195404&narHash=sha256-MIfaEjtgsUINambJiSikQ1onJPOTCwW2lkau4MDN30A%3D"}`

// lixUnknownFlag is Lix 2.95's stderr for `nix path-info --json-format 1`
// with FORCE_COLOR set: its UsageError (lix/libutil/args.cc, "unrecognised
// flag '%1%'") behind the red prefix of showErrorInfo
// (lix/libutil/error.cc: ANSI_RED "error" ":" ANSI_NORMAL " ", with
// ANSI_RED "\e[31;1m" and ANSI_NORMAL "\e[0m" from lix/libutil/ansicolor.hh),
// all at 2.95.3.
const lixUnknownFlag = "\x1b[31;1merror:\x1b[0m unrecognised flag '--json-format'\nTry 'nix --help' for more information.\n"

// lixPathInfo is Lix 2.95's path-info JSON: a list, as Nix 2.18 and
// older print it (lix/libstore/store-api.cc, Store::pathInfoToJSON).
const lixPathInfo = `[{"closureSize":1000,"narHash":"sha256-FePFYIlMuycIXPZbWi7LGEiMmZSX9FMbaQenWBzm1Sc=","narSize":1000,"path":"/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-hello","references":[],"valid":true}]`

// lixBuild answers the lookup, the build and both path-info calls of one
// Build of hello, the first path-info refused as stderr says.
func lixBuild(f *fakeNix, pathInfoErr string) {
	f.answer("metadata", 1, lixMetadata, "", 0)
	f.answer("eval", 1, `{"hasSystem":true,"packages":[{"attr":"hello","drvPath":"/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-hello.drv","status":"package","output":"out"}]}`, "", 0)
	f.answer("build", 1, `[{"drvPath":"/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-hello.drv","outputs":{"out":"/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-hello"}}]`, "", 0)
	f.answer("path-info", 1, "", pathInfoErr, 1)
	f.answer("path-info", 2, lixPathInfo, "", 0)
}

// Nix gets only the variables it needs: never the registry password, the
// workflow's tokens or the colour switches; NO_COLOR is always set.
func TestNixEnvironment(t *testing.T) {
	f := newFakeNix(t)
	lixBuild(f, lixUnknownFlag)
	pass := map[string]string{
		"NIX_CONFIG": "sandbox = false", "NIX_USER_CONF_FILES": "/etc/x.conf", "NIX_REMOTE": "daemon",
		"HOME": "/home/u", "PATH": "/usr/bin:/bin", "TMPDIR": "/tmp/x", "USER": "u",
		"https_proxy": "http://proxy:3128", "HTTPS_PROXY": "http://proxy:3128", "no_proxy": "localhost",
		"SSL_CERT_FILE": "/etc/ssl/x.pem", "NIX_SSL_CERT_FILE": "/etc/ssl/y.pem", "XDG_CONFIG_HOME": "/home/u/.config",
		"SSH_AUTH_SOCK": "/run/ssh.sock", "GIT_SSH_COMMAND": "ssh -i key", "AWS_PROFILE": "cache", "LC_ALL": "C.UTF-8",
	}
	secret := map[string]string{
		"INPUT_PASSWORD": "hunter2", "NIXERY_PASSWORD": "hunter3", "GITHUB_TOKEN": "ghs_secret",
		"ACTIONS_RUNTIME_TOKEN": "rt", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "idt", "INPUT_USERNAME": "me",
		"FORCE_COLOR": "1", "CLICOLOR_FORCE": "1", "NO_COLOR": "", "NPM_TOKEN": "npm", "DOCKER_AUTH_CONFIG": "{}",
	}
	for k, v := range pass {
		t.Setenv(k, v)
	}
	for k, v := range secret {
		t.Setenv(k, v)
	}
	b := &Builder{Flake: "path:/src/nixpkgs", Nix: f.path}
	_, err := b.Build(context.Background(), "x86_64-linux", []string{"hello"})
	assert.NilError(t, err)
	calls := len(f.calls())
	assert.Equal(t, calls, 5) // metadata, eval, build, path-info twice
	for n := 1; n <= calls; n++ {
		env := f.env(n)
		for k, v := range pass {
			assert.Equal(t, env[k], v, "%s in call %d", k, n)
		}
		for k := range secret {
			if k != "NO_COLOR" {
				_, leaked := env[k]
				assert.Assert(t, !leaked, "%s reached Nix in call %d", k, n)
			}
		}
		assert.Equal(t, env["NO_COLOR"], "1")
	}

	// An explicit environment is filtered the same way.
	assert.DeepEqual(t, nixEnv([]string{"GITHUB_TOKEN=x", "NIX_PATH=a", "NO_COLOR=0", "bad", "HOME=/h"}),
		[]string{"NIX_PATH=a", "HOME=/h", "NO_COLOR=1"})
}

// Lix colours its errors when FORCE_COLOR or CLICOLOR_FORCE is set and
// NO_COLOR is not (lix/libutil/terminal.cc, shouldANSI, 2.95.3), so
// TestNixEnvironment checks that Nix gets NO_COLOR=1 and neither of the
// others. A Nix that colours anyway (this fake one) still has its messages
// matched: here path-info's refusal of --json-format, after which the
// build goes on without the flag.
func TestColouredErrors(t *testing.T) {
	f := newFakeNix(t)
	lixBuild(f, lixUnknownFlag)
	b := &Builder{Flake: "path:/src/nixpkgs", Nix: f.path}
	res, err := b.Build(context.Background(), "x86_64-linux", []string{"hello"})
	assert.NilError(t, err)
	assert.Equal(t, string(res.Closure), lixPathInfo)
	calls := f.calls()
	assert.DeepEqual(t, calls[3][:5], []string{"path-info", "--json", "--recursive", "--closure-size", "--json-format"})
	assert.DeepEqual(t, calls[4], []string{"path-info", "--json", "--recursive", "--closure-size", "--", "/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-hello"})

	// A failure quotes Nix without escape codes.
	f = newFakeNix(t)
	f.answer("metadata", 1, "", "\x1b[31;1merror:\x1b[0m getting status of '\x1b[35;1m/src/nixpkgs\x1b[0m': No such file or directory\n", 1)
	_, err = (&Builder{Flake: "path:/src/nixpkgs", Nix: f.path}).Build(context.Background(), "x86_64-linux", []string{"hello"})
	var ce *CommandError
	assert.Assert(t, errors.As(err, &ce), "%v", err)
	assert.Equal(t, ce.Headline, "getting status of '/src/nixpkgs': No such file or directory")
	assert.Assert(t, !is.Contains(err.Error(), "\x1b")().Success(), "%q", err.Error())
}

func TestStripANSI(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                                         "plain",
		"\x1b[31;1merror:\x1b[0m x":                     "error: x",
		"\x1b[1mbold\x1b[0m and \x1b[Kclear":            "bold and clear",
		"\x1b]8;;https://nixos.org\x07link\x1b]8;;\x07": "link",
		"\x1b]8;;file:///x\x1b\\f\x1b]8;;\x1b\\":        "f",
	} {
		assert.Equal(t, string(stripANSI([]byte(in))), want)
	}
}

// A Nix that refuses --json-format is probed once per process, not once
// per Builder: the CLI and nixery serve make a Builder for every build.
func TestJSONFormatProbedOnce(t *testing.T) {
	f := newFakeNix(t)
	lixBuild(f, lixUnknownFlag)
	f.answer("metadata", 2, lixMetadata, "", 0)
	f.answer("eval", 2, `{"hasSystem":true,"packages":[{"attr":"hello","drvPath":"/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-hello.drv","status":"package","output":"out"}]}`, "", 0)
	f.answer("build", 2, `[{"drvPath":"/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-hello.drv","outputs":{"out":"/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-hello"}}]`, "", 0)
	f.answer("path-info", 3, lixPathInfo, "", 0)
	for range 2 {
		b := &Builder{Flake: "path:/src/nixpkgs", Nix: f.path}
		res, err := b.Build(context.Background(), "x86_64-linux", []string{"hello"})
		assert.NilError(t, err)
		assert.Equal(t, string(res.Closure), lixPathInfo)
	}
	var probes, pathInfos int
	for _, c := range f.calls() {
		if c[0] == "path-info" {
			pathInfos++
			if slices.Contains(c, "--json-format") {
				probes++
			}
		}
	}
	assert.Equal(t, pathInfos, 3) // the probe, then one call per build
	assert.Equal(t, probes, 1)
}

// A Nix that says it is older than 2.33 is not given --json-format at
// all: no refused call first. A newer one is given it.
func TestJSONFormatFromVersion(t *testing.T) {
	for version, flag := range map[string]bool{
		"nix (Nix) 2.28.4":                   false,
		"nix (Determinate Nix 3.8.2) 2.30.1": false,
		"nix (Nix) 2.33.0":                   true,
		"nix (Lix, like Nix) 2.95.3":         true, // refuses it: probed
	} {
		f := newFakeNix(t)
		f.setVersion(version)
		f.answer("metadata", 1, lixMetadata, "", 0)
		f.answer("eval", 1, `{"hasSystem":true,"packages":[{"attr":"hello","drvPath":"/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-hello.drv","status":"package","output":"out"}]}`, "", 0)
		f.answer("build", 1, `[{"drvPath":"/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-hello.drv","outputs":{"out":"/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-hello"}}]`, "", 0)
		f.answer("path-info", 1, lixPathInfo, "", 0)
		b := &Builder{Flake: "path:/src/nixpkgs", Nix: f.path}
		res, err := b.Build(context.Background(), "x86_64-linux", []string{"hello"})
		assert.NilError(t, err, version)
		assert.Equal(t, string(res.Closure), lixPathInfo, version)
		calls := f.calls()
		last := calls[len(calls)-1]
		assert.Equal(t, last[0], "path-info", version)
		assert.Equal(t, slices.Contains(last, "--json-format"), flag, version)
	}
}
