package nix

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
)

// lookupExpr finds the requested attributes in a flake's
// legacyPackages.<system> and returns, for each, whether it is missing, a
// package (with its derivation path) or something else. It is constant
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
      step = acc: name:
        if acc.found && builtins.isAttrs acc.value && acc.value ? ${name}
        then { found = true; value = acc.value.${name}; }
        else { found = false; value = null; };
      lookup = attr:
        let
          r = builtins.foldl' step { found = true; value = pkgs; }
            (builtins.filter builtins.isString (builtins.split "[.]" attr));
        in
        if !r.found then { inherit attr; status = "missing"; }
        else if builtins.isAttrs r.value && (r.value.type or null) == "derivation"
        then { inherit attr; status = "package"; drvPath = r.value.drvPath; }
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
	} `json:"packages"`
}

// lookup evaluates the attributes for a system in one Nix process and
// returns each package's derivation path, or a NotFoundError naming every
// attribute that is missing or not a package.
func (b *Builder) lookup(ctx context.Context, log io.Writer, locked, system string, attrs []string) (map[string]string, error) {
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
	drvs := map[string]string{}
	nf := &NotFoundError{System: system}
	for _, p := range res.Packages {
		switch p.Status {
		case "package":
			drvs[p.Attr] = p.DrvPath
		case "missing":
			nf.Missing = append(nf.Missing, p.Attr)
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
		if drvs[a] == "" {
			return nil, fmt.Errorf("evaluating nixpkgs for %s: nix eval did not report %s", system, a)
		}
	}
	return drvs, nil
}
