# The Go sources of this repository as a store path of their own, so that
# edits to docs, workflows or Nix files do not rebuild nixery. Only builtins
# are used: the filter runs the same on any nixpkgs.
{
  # The repository's top directory.
  root,
  # Keep testdata directories too, for the tests that read them.
  withTestdata ? false,
}:
let
  prefix = toString root + "/";
  relative = path: builtins.substring (builtins.stringLength prefix) (builtins.stringLength path) path;
  hasSuffix =
    suffix: s:
    let
      n = builtins.stringLength s;
      k = builtins.stringLength suffix;
    in
    n >= k && builtins.substring (n - k) k s == suffix;
  inTestdata = rel: builtins.match "(.*/)?testdata/.*" rel != null;

  filter =
    path: type:
    let
      rel = relative (toString path);
      base = baseNameOf path;
    in
    if type == "directory" then
      # The go tool ignores hidden directories; testdata only when asked for.
      builtins.substring 0 1 base != "." && (withTestdata || base != "testdata")
    else
      rel == "go.mod" || rel == "go.sum" || hasSuffix ".go" base || (withTestdata && inTestdata rel);
in
builtins.path {
  name = "nixery-source";
  path = root;
  inherit filter;
}
