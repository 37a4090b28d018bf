// Command gencorpus extracts the layering evaluation corpus from Debian's
// package index: the packages the evaluated images need, with their
// installed sizes and dependencies, made acyclic as Nix closures are. It
// reads a Packages file on standard input and writes the gzip'd corpus on
// standard output; scripts/compare-layering.sh --regenerate runs it:
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

// images are common software, alone and combined, as people build images
// of it. Each also gets the always-added paths (see extras).
var images = [][]string{
	// Languages and runtimes.
	{"python3"}, {"python3", "python3-requests"}, {"python3", "python3-numpy"}, {"python3-pip"},
	{"nodejs"}, {"nodejs", "npm"}, {"ruby"}, {"perl"}, {"php-cli"}, {"golang-go"},
	{"rustc", "cargo"}, {"openjdk-17-jre-headless"}, {"lua5.4"},
	// Servers.
	{"nginx"}, {"nginx", "certbot"}, {"apache2"}, {"postgresql-15"}, {"redis-server"},
	{"mariadb-server"}, {"openssh-server"},
	// Tools.
	{"git"}, {"curl"}, {"wget"}, {"jq"}, {"bash"}, {"openssh-client"}, {"rsync"},
	{"sqlite3"}, {"gnupg"}, {"vim"}, {"emacs-nox"}, {"nano"}, {"tmux"}, {"zsh"},
	{"gdb"}, {"strace"}, {"mercurial"}, {"ansible"},
	{"gcc"}, {"g++", "make", "cmake"}, {"python3", "gcc", "make"},
	{"ffmpeg"}, {"imagemagick"}, {"graphviz"}, {"pandoc"},
	// Combinations.
	{"git", "curl", "jq"}, {"python3", "git"}, {"curl", "openssl"},
	{"git", "openssh-client", "gnupg"}, {"zip", "unzip"},
	{"bash", "coreutils", "findutils", "grep", "sed"},
	// Big closures, where the layer budget bites.
	{"python3-matplotlib", "python3-pandas"}, {"python3-scipy"}, {"jupyter-notebook"},
	{"r-base-core"}, {"texlive-latex-base"}, {"maven"}, {"gimp"}, {"libreoffice-nogui"},
	{"qemu-system-x86"},
}

// updates are widely used libraries; a new version of one rebuilds
// everything that depends on it.
var updates = []string{"libc6", "libssl3", "zlib1g", "libcurl4", "libxml2", "libsqlite3-0", "libstdc++6",
	"libpcre2-8-0", "libexpat1", "libffi8", "libgnutls30", "libncursesw6"}

// extras are the paths every image gets, as Nixery adds cacert and
// iana-etc: in Nix both are leaves, so they stand in as packages of
// their own with the size of Debian's counterparts and no dependencies.
var extras = []struct{ name, like string }{{"nss-cacert", "ca-certificates"}, {"iana-etc", "netbase"}}

// infrastructure is what Debian's packaging needs but a Nix closure would
// not hold: dependencies on these are dropped.
var infrastructure = map[string]bool{
	"dpkg": true, "debconf": true, "debconf-2.0": true, "init-system-helpers": true, "adduser": true,
	"lsb-base": true, "sysvinit-utils": true, "ucf": true, "sensible-utils": true, "install-info": true,
	"systemd": true, "systemd-sysv": true, "default-mta": true, "mail-transport-agent": true,
}

type pkg struct {
	version string
	size    uint64     // bytes
	deps    [][]string // each dependency's alternatives, in order
}

func main() {
	idx, err := parse(bufio.NewReaderSize(os.Stdin, 1<<20))
	if err != nil {
		fail(fmt.Errorf("reading the package index: %w", err))
	}
	if len(idx.pkgs) == 0 {
		fail(fmt.Errorf("no packages on standard input: pipe in a Debian Packages file"))
	}
	c, err := extract(idx, images, updates)
	if err != nil {
		fail(err)
	}
	zw, err := gzip.NewWriterLevel(os.Stdout, gzip.BestCompression)
	if err != nil {
		fail(err)
	}
	if err := json.NewEncoder(zw).Encode(c); err != nil {
		fail(fmt.Errorf("writing the corpus: %w", err))
	}
	if err := zw.Close(); err != nil {
		fail(fmt.Errorf("writing the corpus: %w", err))
	}
}

// index is a parsed Packages file.
type index struct {
	pkgs     map[string]*pkg
	provides map[string][]string // virtual package → its providers
}

// resolve picks a dependency's first alternative, a virtual package
// standing for its first provider by name; "" drops the dependency.
func (idx *index) resolve(alts []string) string {
	a := alts[0]
	if infrastructure[a] {
		return ""
	}
	if _, ok := idx.pkgs[a]; ok {
		return a
	}
	if ps := idx.provides[a]; len(ps) > 0 {
		ps = append([]string(nil), ps...)
		sort.Strings(ps)
		if !infrastructure[ps[0]] {
			return ps[0]
		}
	}
	return "" // not in this index
}

// extract makes the corpus of the given images: the packages their
// closures hold (and the updated libraries'), made acyclic, with the
// always-added leaves.
func extract(idx *index, images [][]string, updates []string) (*layereval.Corpus, error) {
	deps := map[string][]string{}
	var visit func(string)
	visit = func(name string) {
		if _, done := deps[name]; done {
			return
		}
		deps[name] = nil
		var out []string
		for _, alts := range idx.pkgs[name].deps {
			if d := idx.resolve(alts); d != "" && d != name {
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
	var roots []string
	for _, img := range images {
		roots = append(roots, img...)
	}
	for _, r := range append(roots, updates...) {
		if _, ok := idx.pkgs[r]; !ok {
			return nil, fmt.Errorf("package %s is not in the index", r)
		}
		visit(r)
	}
	breakCycles(deps)

	c := &layereval.Corpus{
		Source: "Debian bookworm main amd64 Packages: Installed-Size as narSize; Depends and Pre-Depends " +
			"(first alternative, virtual packages resolved to their first provider, packaging infrastructure dropped) " +
			"as references, cycles broken; nss-cacert and iana-etc as leaves sized as ca-certificates and netbase",
	}
	versions := map[string]*pkg{}
	for _, e := range extras {
		p, ok := idx.pkgs[e.like]
		if !ok {
			return nil, fmt.Errorf("package %s is not in the index", e.like)
		}
		if _, clash := deps[e.name]; clash {
			return nil, fmt.Errorf("package %s is already in the corpus", e.name)
		}
		versions[e.name] = p
		deps[e.name] = nil
	}
	var names []string
	for n := range deps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := idx.pkgs[n]
		if v, ok := versions[n]; ok {
			p = v
		}
		c.Packages = append(c.Packages, layereval.Package{Name: n, Version: p.version, Size: p.size, Deps: deps[n]})
	}
	for _, img := range images {
		var roots []string
		for _, e := range extras {
			roots = append(roots, e.name)
		}
		c.Images = append(c.Images, append(roots, img...))
	}
	// Only the libraries some image holds are worth updating.
	held := map[string]bool{}
	var mark func(string)
	mark = func(n string) {
		if !held[n] {
			held[n] = true
			for _, d := range deps[n] {
				mark(d)
			}
		}
	}
	for _, r := range roots {
		mark(r)
	}
	for _, u := range updates {
		if held[u] {
			c.Updates = append(c.Updates, u)
		}
	}
	return c, nil
}

// breakCycles drops the edges that close a cycle in a depth-first walk in
// name order, so the same index always gives the same graph.
func breakCycles(deps map[string][]string) {
	state := map[string]int{} // 0 new, 1 on the walk, 2 done
	var names []string
	for n := range deps {
		names = append(names, n)
	}
	sort.Strings(names)
	var visit func(string)
	visit = func(n string) {
		state[n] = 1
		var kept []string
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

// parse reads a Debian Packages file: each package's version, size and
// dependencies, and which packages provide each virtual package.
func parse(r io.Reader) (*index, error) {
	pkgs := map[string]*pkg{}
	provides := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var name string
	cur := &pkg{}
	var provided []string
	flush := func() {
		if name != "" {
			pkgs[name] = cur
			for _, p := range provided {
				provides[p] = append(provides[p], name)
			}
		}
		name, cur, provided = "", &pkg{}, nil
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
			kib, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("package %s: Installed-Size %q: %w", name, v, err)
			}
			cur.size = kib * 1024
		case "Depends", "Pre-Depends":
			for _, d := range strings.Split(v, ",") {
				var alts []string
				for _, a := range strings.Split(d, "|") {
					if a = bareName(a); a != "" {
						alts = append(alts, a)
					}
				}
				if len(alts) > 0 {
					cur.deps = append(cur.deps, alts)
				}
			}
		case "Provides":
			for _, p := range strings.Split(v, ",") {
				if p = bareName(p); p != "" {
					provided = append(provided, p)
				}
			}
		}
	}
	flush()
	return &index{pkgs: pkgs, provides: provides}, sc.Err()
}

// bareName drops a relation's version constraint and architecture
// qualifier: "libc6:any (>= 2.34)" is "libc6".
func bareName(rel string) string {
	rel = strings.TrimSpace(rel)
	if i := strings.IndexAny(rel, " (["); i >= 0 {
		rel = rel[:i]
	}
	rel, _, _ = strings.Cut(rel, ":")
	return rel
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
