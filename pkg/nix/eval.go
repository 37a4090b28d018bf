package nix

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/nixery-action/nixery-action/pkg/flakeref"

	"github.com/nixery-action/nixery-action/pkg/spec"
	"github.com/nixery-action/nixery-action/pkg/storepath"
	"github.com/nixery-action/nixery-action/pkg/suggest"
)

// lookupExpr finds the requested attributes in a flake's output sets
// for a system (nixpkgs: legacyPackages.<system>; another flake, as nix
// build looks: packages.<system>, then legacyPackages.<system>, then the
// flake's outputs themselves, e.g. hydraJobs.app.<system>) and returns,
// for each, whether it is missing, a package (with its derivation path,
// its default output, what its meta says of licences, homepage and
// description, and the program nix run would start), a package of
// another system, or something else.
// It is constant Nix code: the flake reference, the system, the sets and
// the attribute paths reach it as strings through --argstr, never spliced
// into the code. Attribute paths were checked against nixpkgs' grammar,
// so splitting them on dots is exact.
const lookupExpr = `{ flake, system, attrs, sets, caseless }:
{
  result =
    let
      f = builtins.getFlake flake;
      setsOf = builtins.filter (s: builtins.isAttrs (f.${s} or null)) (builtins.fromJSON sets);
      # The sets that have this system, in the order they are tried.
      roots = map (s: { set = s; value = f.${s}.${system}; })
        (builtins.filter (s: f.${s} ? ${system}) setsOf);
      # A flake reference alone names its default package, which nix
      # build looks for in packages.<system>.default, then in the older
      # output defaultPackage.<system> (then, here, legacyPackages).
      installables = builtins.elem "packages" (builtins.fromJSON sets);
      hasOld = installables && builtins.isAttrs (f.defaultPackage or null);
      oldDefault =
        if hasOld && f.defaultPackage ? ${system}
        then [ { set = "defaultPackage"; hit = { found = true; value = f.defaultPackage.${system}; path = [ ]; }; } ]
        else [ ];
      # Last, as nix build does, a flake's attribute path names itself in
      # the flake's outputs (defaultPackage.x86_64-linux): a package of
      # one system, refused for another (see lookup).
      bare = if installables then [ { set = ""; value = f; } ] else [ ];
      systems = builtins.concatLists (map (s: builtins.attrNames f.${s}) setsOf)
        ++ (if hasOld then builtins.attrNames f.defaultPackage else [ ]);
      # A missing attribute keeps the set it is missing from, whose names
      # of about its length (a closer name differs by at most 3 letters)
      # are the candidates for "did you mean".
      # With caseless (a name from a client that only sends lowercase),
      # a name the set lacks is the one name of the set that is equal to
      # it but for case. Nix has no toLower.
      lower = builtins.replaceStrings
        (builtins.genList (i: builtins.substring i 1 "ABCDEFGHIJKLMNOPQRSTUVWXYZ") 26)
        (builtins.genList (i: builtins.substring i 1 "abcdefghijklmnopqrstuvwxyz") 26);
      alike = set: name:
        if caseless == "true" && (set.type or null) != "derivation"
        then builtins.filter (n: lower n == lower name) (builtins.attrNames set)
        else [ ];
      step = acc: name:
        if !acc.found then acc
        else if builtins.isAttrs acc.value && acc.value ? ${name}
        then { found = true; value = acc.value.${name}; path = acc.path ++ [ name ]; }
        else
          let same = if builtins.isAttrs acc.value then alike acc.value name else [ ]; in
          if builtins.length same == 1
          then { found = true; value = acc.value.${builtins.head same}; path = acc.path ++ same; }
          else { found = false; inherit name; inherit (acc) path; parent = acc.value; };
      near = name: n:
        let d = builtins.stringLength n - builtins.stringLength name; in d <= 3 && d >= -3;
      candidates = r:
        if builtins.isAttrs r.parent && (r.parent.type or null) != "derivation"
        then builtins.filter (near r.name) (builtins.attrNames r.parent)
        else [ ];
      # The parts of meta an SBOM reports, as strings; a meta that fails
      # to evaluate gives null rather than failing the build.
      str = v: if builtins.isString v then v else "";
      first = v: if builtins.isList v then (if v == [ ] then "" else str (builtins.head v)) else str v;
      licence = l:
        if builtins.isAttrs l
        then { spdxId = str (l.spdxId or ""); name = str (l.fullName or l.shortName or ""); }
        else { spdxId = ""; name = str l; };
      metaOf = drv:
        let
          m = if builtins.isAttrs (drv.meta or null) then drv.meta else { };
          l = m.license or [ ];
          v = {
            description = str (m.description or "");
            homepage = first (m.homepage or "");
            licenses = map licence (if builtins.isList l then l else [ l ]);
            # What nix run starts: meta.mainProgram, else pname, else
            # the name without its version.
            mainProgram = str (m.mainProgram or drv.pname or (builtins.parseDrvName (drv.name or "")).name);
            name = str (drv.pname or (builtins.parseDrvName (drv.name or "")).name);
            version = str (drv.version or (builtins.parseDrvName (drv.name or "")).version);
          };
          t = builtins.tryEval (builtins.deepSeq v v);
        in
        if t.success then t.value else null;
      # What follows a package's installable so that nix build builds its
      # default output alone: Nix 2.9 and later build meta.outputsToInstall
      # (man pages too) unless FLAKE#ATTR^OUTPUT names one; 2.8 builds
      # the default output and knows no ^.
      selectOutput = v:
        if builtins.compareVersions builtins.nixVersion "2.9" < 0 then ""
        else "^" + (v.outputName or "out");
      # Nix 2.13 and later build a derivation this evaluation wrote by its
      # path (DRV^OUTPUT), so nix build need not evaluate the flake again
      # (for nixpkgs, seconds per system on a cold evaluation cache).
      byPath = v:
        if builtins.compareVersions builtins.nixVersion "2.13" < 0 then ""
        else v.drvPath + "^" + (v.outputName or "out");
      parts = attr: builtins.filter builtins.isString (builtins.split "[.]" attr);
      find = root: attr: builtins.foldl' step { found = true; value = root.value; path = [ ]; } (parts attr);
      # attr "" is a flake reference alone: its default package.
      lookup = attr:
        let
          name = if attr == "" then "default" else attr;
          found = builtins.filter (r: r.hit.found)
            (map (root: { inherit (root) set; hit = find root name; }) (roots ++ (if attr == "" then [ ] else bare)));
          hits =
            if attr == ""
            then builtins.filter (h: h.set == "packages") found ++ oldDefault ++ builtins.filter (h: h.set != "packages") found
            else found;
          miss = find (if roots == [ ] then { value = { }; } else builtins.head roots) name;
        in
        if hits == [ ]
        then { inherit attr; status = "missing"; inherit (miss) name path; candidates = candidates miss; }
        else
          let h = builtins.head hits; v = h.hit.value; in
          if !(builtins.isAttrs v && (v.type or null) == "derivation")
          then { inherit attr; status = "not-package"; }
          else if h.set == "" && (v.system or null) != system
          then { inherit attr; status = "other-system"; drvSystem = str (v.system or ""); }
          else {
            inherit attr; inherit (h) set; status = "package";
            drvPath = v.drvPath; outputPath = v.outPath; output = v.outputName or "out";
            select = selectOutput v; byPath = byPath v; meta = metaOf v; inherit (h.hit) path;
          };
      packages = map lookup (builtins.fromJSON attrs);
      hasSystem = roots != [ ] || oldDefault != [ ] || builtins.any (p: p.status != "missing") packages;
    in
    { inherit hasSystem systems; packages = if hasSystem then packages else [ ]; };
}
`

type lookupResult struct {
	HasSystem bool            `json:"hasSystem"`
	Systems   []string        `json:"systems"`
	Packages  []lookupPackage `json:"packages"`
}

// lookupPackage is the lookup's answer for one attribute.
type lookupPackage struct {
	Attr    string `json:"attr"`
	Set     string `json:"set"` // where it was found: legacyPackages, packages, "" for the flake's outputs
	Status  string `json:"status"`
	DrvPath string `json:"drvPath"`
	// OutPath is the path of Output, known before it is built (see
	// Roots). Not "outPath": Nix writes a set with one as that string.
	OutPath string `json:"outputPath"`
	Output  string `json:"output"` // its default output (outputName), the one built
	// DrvSystem is the system of a package found in the flake's
	// outputs for another system (status other-system).
	DrvSystem string `json:"drvSystem"`
	Select    string `json:"select"` // see found
	ByPath    string `json:"byPath"` // see found
	Meta      *Meta  `json:"meta"`
	// For a missing attribute: its name, the path of the set it is
	// missing from, and that set's names of about its length. For a
	// package, Path is its attribute path as nixpkgs spells it.
	Name       string   `json:"name"`
	Path       []string `json:"path"`
	Candidates []string `json:"candidates"`
}

// found is the package p found (status package).
func (p lookupPackage) found() found {
	return found{DrvPath: p.DrvPath, OutPath: p.OutPath, Output: p.Output, Set: p.Set, Attr: strings.Join(p.Path, "."), Select: p.Select, ByPath: p.ByPath, Meta: p.Meta}
}

// Meta is what a package's meta attribute says, for SBOMs.
type Meta struct {
	Description string    `json:"description"`
	Homepage    string    `json:"homepage"` // the first, when meta.homepage is a list
	Licenses    []License `json:"licenses"`
	// MainProgram is what nix run starts from the package's bin/:
	// meta.mainProgram, else pname, else the name without its version.
	MainProgram string `json:"mainProgram"`
	// Name and Version are pname and version, or what the derivation's
	// name splits into.
	Name    string `json:"name"`
	Version string `json:"version"`
}

// License is one entry of meta.license.
type License struct {
	SPDXID string `json:"spdxId"` // empty for licences SPDX does not list
	Name   string `json:"name"`   // fullName, else shortName
}

// found is one package the lookup found.
type found struct {
	DrvPath string
	OutPath string // the path of Output, or a placeholder (content-addressed)
	Output  string // its default output (outputName): the one output nix build builds and the package has
	Set     string // the output set it is in: legacyPackages, packages, defaultPackage; "" for the flake's outputs
	Attr    string // its attribute path in Set.<system> ("" for defaultPackage), or in the flake's outputs
	Select  string // after its installable: "^OUTPUT" (the default output) on Nix 2.9 and later, "" before
	ByPath  string // DRV^OUTPUT, what nix build is given instead on Nix 2.13 and later; "" before
	Meta    *Meta  // nil when meta failed to evaluate
}

// outputIn is the package's one output among the outputs nix build
// reported by derivation, as Package.Outputs.
func (f found) outputIn(built map[string]map[string]string) (map[string]string, bool) {
	path, ok := built[f.DrvPath][f.Output]
	if !ok {
		return nil, false
	}
	return map[string]string{f.Output: path}, true
}

// installable is what nix build is given for the package found in a
// flake as attr (FLAKE#ATTR): its derivation by path where Nix builds
// one by path, else attr with the default output selected.
func (f found) installable(attr string) string {
	if f.ByPath != "" {
		return f.ByPath
	}
	return attr + f.Select
}

// lookup evaluates the attributes of nixpkgs' legacyPackages for a
// system in one Nix process and returns each package's derivation path
// and meta, or a NotFoundError naming every attribute that is missing or
// not a package.
func (b *Builder) lookup(ctx context.Context, log io.Writer, locked, system string, attrs []string) (map[string]found, error) {
	res, err := b.evalLookup(ctx, log, "evaluating nixpkgs for "+system, locked, system, attrs, []string{"legacyPackages"}, b.Caseless)
	if err != nil {
		return nil, err
	}
	if !res.HasSystem {
		return nil, fmt.Errorf("%s has no legacyPackages.%s: is it nixpkgs, and does it support %s?", flakeref.Redacted(b.Flake), system, system)
	}
	drvs := map[string]found{}
	nf := &NotFoundError{System: system}
	for _, p := range res.Packages {
		switch p.Status {
		case "package":
			drvs[p.Attr] = p.found()
		case "missing":
			nf.Missing = append(nf.Missing, p.Attr)
			if close := closest(p.Name, p.Path, p.Candidates); len(close) > 0 {
				if b.Caseless {
					// What a client that sends lowercase can ask for.
					for i := range close {
						close[i] = strings.ToLower(close[i])
					}
				}
				if nf.Suggestions == nil {
					nf.Suggestions = map[string][]string{}
				}
				nf.Suggestions[p.Attr] = close
			}
		default:
			nf.NotPackages = append(nf.NotPackages, p.Attr)
		}
	}
	if len(nf.Missing)+len(nf.NotPackages) > 0 {
		sort.Strings(nf.Missing)
		sort.Strings(nf.NotPackages)
		return nil, nf
	}
	for _, a := range attrs {
		if drvs[a].DrvPath == "" {
			return nil, fmt.Errorf("evaluating nixpkgs for %s: nix eval did not report %s", system, a)
		}
	}
	return drvs, nil
}

// closest are the candidates nearest to a missing name, as attribute
// paths (the path of the set it is missing from before each).
func closest(name string, path, candidates []string) []string {
	close := suggest.Closest(name, candidates, 3)
	prefix := strings.Join(append(path, ""), ".")
	for i := range close {
		close[i] = prefix + close[i]
	}
	return close
}

// installableSets are where nix build looks for a flake's package.
var installableSets = []string{"packages", "legacyPackages"}

// lookupInstallables finds the installables of one flake (all with
// Flake ref, locked as locked) for a system, as nix build would:
// packages.<system>.ATTR, then legacyPackages.<system>.ATTR. A package
// the flake lacks is one line naming the flake, the attribute, the
// system and the systems the flake has, with the nearest names.
func (b *Builder) lookupInstallables(ctx context.Context, log io.Writer, ref, locked, system string, insts []spec.Installable) (map[string]found, error) {
	var names []string
	for _, i := range insts {
		name, err := withinSystem(i, system)
		if err != nil {
			return nil, err
		}
		if i.Attr == "" {
			name = "" // the default package, wherever nix build finds it
		}
		names = append(names, name)
	}
	res, err := b.evalLookup(ctx, log, fmt.Sprintf("evaluating the flake %s for %s", flakeref.Redacted(ref), system), locked, system, names, installableSets, false)
	if err != nil {
		return nil, err
	}
	systems := strings.Join(uniqueSorted(res.Systems), ", ")
	if systems == "" {
		systems = "none"
	}
	drvs := map[string]found{}
	for i, p := range res.Packages {
		inst := insts[i]
		switch p.Status {
		case "package":
			drvs[inst.Ref] = p.found()
		case "missing":
			return nil, fmt.Errorf("%s: the flake %s has no package %s for %s%s (it has packages for: %s)",
				flakeref.Redacted(inst.Ref), flakeref.Redacted(ref), inst.Name(), system, suggest.Hint(closest(p.Name, p.Path, p.Candidates)), systems)
		case "other-system":
			return nil, fmt.Errorf("%s: %s in the flake %s is a package of %s, but the image is for %s: name a package of %s, or build the image for %s alone",
				flakeref.Redacted(inst.Ref), inst.Name(), flakeref.Redacted(ref), p.DrvSystem, system, system, p.DrvSystem)
		default:
			return nil, fmt.Errorf("%s: %s in the flake %s is not a package for %s (name one inside, e.g. %s.NAME)", flakeref.Redacted(inst.Ref), inst.Name(), flakeref.Redacted(ref), system, inst.Name())
		}
	}
	if !res.HasSystem {
		return nil, fmt.Errorf("%s: the flake %s has no packages for %s (it has packages for: %s)", flakeref.Redacted(insts[0].Ref), flakeref.Redacted(ref), system, systems)
	}
	return drvs, nil
}

// withinSystem is inst's attribute path under the system's set: nix build
// also takes the full path (packages.x86_64-linux.app), which names a
// package of one system only, so it is refused for another.
func withinSystem(inst spec.Installable, system string) (string, error) {
	name := inst.Name()
	for _, set := range installableSets {
		rest, ok := strings.CutPrefix(name, set+".")
		if !ok {
			continue
		}
		sys, attr, ok := strings.Cut(rest, ".")
		switch {
		case !ok || !strings.Contains(sys, "-"):
			return name, nil // an attribute of the set itself, not a system
		case sys != system:
			return "", fmt.Errorf("%s names a package of %s, but the image is for %s: name it %s#%s", flakeref.Redacted(inst.Ref), sys, system, flakeref.Redacted(inst.Flake), attr)
		}
		return attr, nil
	}
	return name, nil
}

// evalLookup runs lookupExpr in one Nix process.
func (b *Builder) evalLookup(ctx context.Context, log io.Writer, what, locked, system string, attrs, sets []string, caseless bool) (*lookupResult, error) {
	attrsJSON, err := json.Marshal(attrs)
	if err != nil {
		return nil, err
	}
	setsJSON, err := json.Marshal(sets)
	if err != nil {
		return nil, err
	}
	out, err := b.run(ctx, log, what, b.prefix(system),
		"eval", "--json", "--expr", lookupExpr, "result",
		"--argstr", "flake", locked,
		"--argstr", "system", system,
		"--argstr", "attrs", string(attrsJSON),
		"--argstr", "sets", string(setsJSON),
		"--argstr", "caseless", fmt.Sprint(caseless))
	if err != nil {
		return nil, err
	}
	var res lookupResult
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("%s: unexpected output of nix eval: %w", what, err)
	}
	if res.HasSystem && len(res.Packages) != len(attrs) {
		return nil, fmt.Errorf("%s: unexpected output of nix eval: %d answers for %d attributes", what, len(res.Packages), len(attrs))
	}
	for _, p := range res.Packages {
		if p.Status != "package" {
			continue
		}
		if dir, ok := otherStore(p.DrvPath); ok {
			return nil, otherStoreError(what, dir)
		}
		if !storepath.Valid(p.DrvPath) || !strings.HasSuffix(p.DrvPath, ".drv") {
			return nil, fmt.Errorf("%s: unexpected output of nix eval: %q is no derivation in the store", what, p.DrvPath)
		}
		if p.Output == "" {
			return nil, fmt.Errorf("%s: unexpected output of nix eval: no output named for %s", what, p.DrvPath)
		}
	}
	return &res, nil
}

// nixStore is the store directory images hold their paths in.
var nixStore = strings.TrimSuffix(storepath.Dir, "/")

// otherStore returns the store directory of a path Nix gave that is a
// store path of a store other than /nix/store (NIX_STORE_DIR,
// local?store=/x): an absolute path whose name is a store path's.
func otherStore(p string) (string, bool) {
	dir, base := path.Split(p)
	dir = path.Clean(dir)
	if !path.IsAbs(p) || dir == nixStore || !storepath.ValidBase(base) {
		return "", false
	}
	return dir, true
}

// otherStoreError says that Nix's store is not where images need it.
func otherStoreError(what, dir string) error {
	return fmt.Errorf("%s: Nix's store is in %s, but images need Nix's store at %s: use a store in %s (see NIX_STORE_DIR, NIX_REMOTE and nix.conf's store setting)", what, dir, nixStore, nixStore)
}

func uniqueSorted(s []string) []string {
	out := unique(s)
	sort.Strings(out)
	return out
}
