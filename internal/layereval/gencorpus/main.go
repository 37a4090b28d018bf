// Command gencorpus extracts the layering evaluation corpus from Debian's
// package index: the packages the evaluated images need, with their
// installed sizes and dependencies, made acyclic as Nix closures are.
//
//	/usr/lib/apt/apt-helper cat-file /var/lib/apt/lists/*_bookworm_main_binary-amd64_Packages.lz4 |
//	  go run ./internal/layereval/gencorpus > internal/layereval/testdata/corpus.json.gz
package main

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/nixery-action/nixery-action/internal/layereval"
)

// images are common software, alone and combined, as people build them.
var images = [][]string{
	{"python3"}, {"python3", "python3-requests"}, {"python3", "python3-numpy"}, {"python3-pip"},
	{"nodejs"}, {"nodejs", "npm"}, {"git"}, {"curl"}, {"wget"}, {"nginx"}, {"apache2"},
	{"postgresql-15"}, {"redis-server"}, {"mariadb-server"}, {"openjdk-17-jre-headless"},
	{"ruby"}, {"perl"}, {"gcc"}, {"g++", "make"}, {"cmake"}, {"emacs-nox"}, {"vim"},
	{"nano"}, {"bash"}, {"openssh-client"}, {"openssh-server"}, {"ffmpeg"}, {"imagemagick"},
	{"rsync"}, {"jq"}, {"sqlite3"}, {"php-cli"}, {"golang-go"}, {"rustc", "cargo"},
	{"htop"}, {"tmux"}, {"zsh"}, {"fish"}, {"gnupg"}, {"ansible"}, {"tesseract-ocr"},
	{"ghostscript"}, {"graphviz"}, {"pandoc"}, {"mercurial"}, {"subversion"}, {"lua5.4"},
	{"gdb"}, {"valgrind"}, {"strace"}, {"zip", "unzip"}, {"git", "curl", "jq"},
	{"python3", "git"}, {"curl", "openssl"}, {"nginx", "certbot"}, {"bash", "coreutils", "findutils", "grep", "sed"},
	{"python3", "gcc", "make"}, {"git", "openssh-client", "gnupg"},
	// Big closures, where the budget matters.
	{"python3-matplotlib"}, {"python3-pandas"}, {"python3-scipy"}, {"jupyter-notebook"},
	{"r-base-core"}, {"octave"}, {"texlive-latex-base"}, {"maven"}, {"inkscape"}, {"gimp"},
	{"libreoffice-nogui"}, {"qemu-system-x86"}, {"postgis"}, {"python3-matplotlib", "python3-pandas"},
}

// updates are widely used libraries whose new version rebuilds everything
// that depends on them.
var updates = []string{"libssl3", "zlib1g", "libc6", "libcurl4", "libxml2", "libsqlite3-0", "libstdc++6", "libpcre2-8-0", "libexpat1", "libffi8", "libncursesw6", "libgnutls30"}

// infrastructure is what Debian's packaging needs but a Nix closure would
// not hold: dependencies on these are dropped.
var infrastructure = map[string]bool{
	"dpkg": true, "debconf": true, "debconf-2.0": true, "init-system-helpers": true, "adduser": true,
	"lsb-base": true, "sysvinit-utils": true, "ucf": true, "sensible-utils": true, "install-info": true,
	"systemd": true, "systemd-sysv": true, "default-mta": true, "mail-transport-agent": true,
}

type pkg struct {
	version string
	size    uint64
	deps    [][]string // alternatives
}

func main() {
	pkgs, provides, err := parse(bufio.NewReaderSize(os.Stdin, 1<<20))
	if err != nil {
		fail(err)
	}
	resolve := func(alts []string) string {
		for _, a := range alts {
			if infrastructure[a] {
				return ""
			}
			if _, ok := pkgs[a]; ok {
				return a
			}
			if ps := provides[a]; len(ps) > 0 {
				sort.Strings(ps)
				return ps[0]
			}
		}
		return ""
	}
	// The closure of every image, then the union, with dependency edges
	// in name order so cycles are broken the same way each time.
	deps := map[string][]string{}
	var visit func(string)
	visit = func(name string) {
		if _, done := deps[name]; done {
			return
		}
		deps[name] = nil
		var out []string
		for _, alts := range pkgs[name].deps {
			if d := resolve(alts); d != "" && d != name {
				out = append(out, d)
			}
		}
		sort.Strings(out)
		out = dedupe(out)
		deps[name] = out
		for _, d := range out {
			visit(d)
		}
	}
	roots := append([]string{"ca-certificates", "netbase"}, updates...)
	for _, img := range images {
		roots = append(roots, img...)
	}
	for _, r := range roots {
		if _, ok := pkgs[r]; !ok {
			fail(fmt.Errorf("package %s is not in the index", r))
		}
		visit(r)
	}
	breakCycles(deps)

	c := layereval.Corpus{
		Source:  "Debian bookworm main amd64 Packages: Installed-Size as narSize, Depends and Pre-Depends (first alternative that exists, virtual packages resolved to their first provider) as references, cycles broken",
		Updates: updates,
	}
	var names []string
	for n := range deps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c.Packages = append(c.Packages, layereval.Package{Name: n, Version: pkgs[n].version, Size: pkgs[n].size, Deps: deps[n]})
	}
	for _, img := range images {
		c.Images = append(c.Images, append([]string{"ca-certificates", "netbase"}, img...))
	}
	zw := gzip.NewWriter(os.Stdout)
	enc := json.NewEncoder(zw)
	if err := enc.Encode(c); err != nil {
		fail(err)
	}
	if err := zw.Close(); err != nil {
		fail(err)
	}
}

// breakCycles drops the edges that close a cycle, visiting in name order.
func breakCycles(deps map[string][]string) {
	state := map[string]int{}
	var names []string
	for n := range deps {
		names = append(names, n)
	}
	sort.Strings(names)
	var visit func(string)
	visit = func(n string) {
		state[n] = 1
		kept := deps[n][:0:0]
		for _, d := range deps[n] {
			if state[d] == 1 {
				continue // back edge
			}
			kept = append(kept, d)
			if state[d] == 0 {
				visit(d)
			}
		}
		deps[n] = kept
		state[n] = 2
	}
	for _, n := range names {
		if state[n] == 0 {
			visit(n)
		}
	}
}

func parse(r io.Reader) (map[string]*pkg, map[string][]string, error) {
	pkgs := map[string]*pkg{}
	provides := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var name string
	cur := &pkg{}
	flush := func() {
		if name != "" {
			pkgs[name] = cur
		}
		name, cur = "", &pkg{}
	}
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			flush()
			continue
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		switch k {
		case "Package":
			name = v
		case "Version":
			cur.version = v
		case "Installed-Size":
			kib, _ := strconv.ParseUint(v, 10, 64)
			cur.size = kib * 1024
		case "Depends", "Pre-Depends":
			for _, d := range strings.Split(v, ",") {
				var alts []string
				for _, a := range strings.Split(d, "|") {
					a = strings.TrimSpace(a)
					if i := strings.IndexAny(a, " ("); i >= 0 {
						a = a[:i]
					}
					a, _, _ = strings.Cut(a, ":")
					if a != "" {
						alts = append(alts, a)
					}
				}
				cur.deps = append(cur.deps, alts)
			}
		case "Provides":
			for _, p := range strings.Split(v, ",") {
				p = strings.TrimSpace(p)
				if i := strings.IndexAny(p, " ("); i >= 0 {
					p = p[:i]
				}
				provides[p] = append(provides[p], name)
			}
		}
	}
	flush()
	return pkgs, provides, sc.Err()
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gencorpus:", err)
	os.Exit(1)
}
