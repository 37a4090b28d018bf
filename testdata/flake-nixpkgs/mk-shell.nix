# Stand-in for nixpkgs' mkShell: a bash derivation (so `nix develop` can
# enter it) whose PATH holds the bin directories of its packages.
{ system }:
let
  known = [
    "name"
    "packages"
    "inputsFrom"
    "shellHook"
    "env"
  ];
in
args:
let
  unknown = builtins.filter (n: !builtins.elem n known) (builtins.attrNames args);
  packages = args.packages or [ ];
in
if unknown != [ ] then
  throw "stand-in mkShell: unexpected arguments ${toString unknown} (real mkShell takes ${toString known} here)"
else
  builtins.derivation (
    {
      name = args.name or "nix-shell";
      inherit system;
      builder = "/bin/bash";
      # `nix develop` writes the environment to each of $outputs, as stdenv sets it.
      outputs = [ "out" ];
      args = [
        "-c"
        "echo 'mkShell: use nix develop' > $out"
      ];
      PATH = builtins.concatStringsSep ":" (map (p: "${p}/bin") packages ++ [ "/usr/bin:/bin" ]);
      shellHook = args.shellHook or "";
    }
    // builtins.mapAttrs (n: v: toString v) (args.env or { })
  )
