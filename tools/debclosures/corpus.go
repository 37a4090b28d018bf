package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/nixery-action/nixery-action/internal/layereval"
)

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

// writeCorpus writes the gzip'd corpus of images and updates to file.
func writeCorpus(idx *index, file string) error {
	c, err := extract(idx, images, updates)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(zw).Encode(c); err != nil {
		return fmt.Errorf("writing the corpus: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("writing the corpus: %w", err)
	}
	return os.WriteFile(file, buf.Bytes(), 0o644)
}

// extract makes the corpus of the given images: the packages their
// closures hold (and the updated libraries'), made acyclic, with the
// always-added leaves.
func extract(idx *index, images [][]string, updates []string) (*layereval.Corpus, error) {
	var roots []string
	for _, img := range images {
		roots = append(roots, img...)
	}
	deps, err := idx.graph(append(roots, updates...))
	if err != nil {
		return nil, err
	}

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
