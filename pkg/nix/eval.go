package nix

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/nixery-action/nixery-action/pkg/suggest"
)

// lookupExpr finds the requested attributes in a flake's
// legacyPackages.<system> and returns, for each, whether it is missing, a
// package (with its derivation path and what its meta says of licences,
// homepage and description) or something else. It is constant
// Nix code: the flake reference, the system and the attribute paths reach
// it as strings through --argstr, never spliced into the code. Attribute
// paths were checked against nixpkgs' grammar, so splitting them on dots
// is exact.
const lookupExpr = `{ flake, system, attrs }:
{
  result =
    let
      legacy = (builtins.getFlake flake).legacyPackages or { };
      pkgs = legacy.${system};
      # A missing attribute keeps the set it is missing from, whose names
      # of about its length (a closer name differs by at most 3 letters)
      # are the candidates for "did you mean".
      step = acc: name:
        if !acc.found then acc
        else if builtins.isAttrs acc.value && acc.value ? ${name}
        then { found = true; value = acc.value.${name}; path = acc.path ++ [ name ]; }
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
          };
          t = builtins.tryEval (builtins.deepSeq v v);
        in
        if t.success then t.value else null;
      lookup = attr:
        let
          r = builtins.foldl' step { found = true; value = pkgs; path = [ ]; }
            (builtins.filter builtins.isString (builtins.split "[.]" attr));
        in
        if !r.found
        then { inherit attr; status = "missing"; inherit (r) name path; candidates = candidates r; }
        else if builtins.isAttrs r.value && (r.value.type or null) == "derivation"
        then { inherit attr; status = "package"; drvPath = r.value.drvPath; meta = metaOf r.value; }
        else { inherit attr; status = "not-package"; };
    in
    if builtins.isAttrs legacy && legacy ? ${system}
    then { hasSystem = true; packages = map lookup (builtins.fromJSON attrs); }
    else { hasSystem = false; packages = [ ]; };
}
`

type lookupResult struct {
	HasSystem bool `json:"hasSystem"`
	Packages  []struct {
		Attr    string `json:"attr"`
		Status  string `json:"status"`
		DrvPath string `json:"drvPath"`
		Meta    *Meta  `json:"meta"`
		// For a missing attribute: its name, the path of the set it is
		// missing from, and that set's names of about its length.
		Name       string   `json:"name"`
		Path       []string `json:"path"`
		Candidates []string `json:"candidates"`
	} `json:"packages"`
}

// Meta is what a package's meta attribute says, for SBOMs.
type Meta struct {
	Description string    `json:"description"`
	Homepage    string    `json:"homepage"` // the first, when meta.homepage is a list
	Licenses    []License `json:"licenses"`
}

// License is one entry of meta.license.
type License struct {
	SPDXID string `json:"spdxId"` // empty for licences SPDX does not list
	Name   string `json:"name"`   // fullName, else shortName
}

// found is one package the lookup found.
type found struct {
	DrvPath string
	Meta    *Meta // nil when meta failed to evaluate
}

// lookup evaluates the attributes for a system in one Nix process and
// returns each package's derivation path and meta, or a NotFoundError
// naming every attribute that is missing or not a package.
func (b *Builder) lookup(ctx context.Context, log io.Writer, locked, system string, attrs []string) (map[string]found, error) {
	attrsJSON, err := json.Marshal(attrs)
	if err != nil {
		return nil, err
	}
	out, err := b.run(ctx, log, "evaluating nixpkgs for "+system, "["+system+"] ",
		"eval", "--json", "--expr", lookupExpr, "result",
		"--argstr", "flake", locked,
		"--argstr", "system", system,
		"--argstr", "attrs", string(attrsJSON))
	if err != nil {
		return nil, err
	}
	var res lookupResult
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("evaluating nixpkgs for %s: unexpected output of nix eval: %w", system, err)
	}
	if !res.HasSystem {
		return nil, fmt.Errorf("%s has no legacyPackages.%s: is it nixpkgs, and does it support %s?", b.Flake, system, system)
	}
	drvs := map[string]found{}
	nf := &NotFoundError{System: system}
	for _, p := range res.Packages {
		switch p.Status {
		case "package":
			drvs[p.Attr] = found{DrvPath: p.DrvPath, Meta: p.Meta}
		case "missing":
			nf.Missing = append(nf.Missing, p.Attr)
			if close := suggest.Closest(p.Name, p.Candidates, 3); len(close) > 0 {
				prefix := strings.Join(append(p.Path, ""), ".")
				for i := range close {
					close[i] = prefix + close[i]
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
