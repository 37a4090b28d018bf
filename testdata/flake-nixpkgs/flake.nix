# A stand-in for nixpkgs, for internal/flaketest: it offers only what this
# repository's flake.nix uses, with the meaning real nixpkgs gives it, and
# builds with this machine's Go toolchain and module cache so that the flake
# builds offline. host.nix (where the toolchain is) is written by the test.
{
  description = "Stand-in nixpkgs for testing this repository's flake offline";

  outputs =
    { self }:
    let
      host =
        if builtins.pathExists ./host.nix then
          import ./host.nix
        else
          throw "stand-in nixpkgs: host.nix is missing; internal/flaketest writes it into its copy of this directory";
      lib = import ./lib.nix;
      packagesFor = system: import ./packages.nix { inherit system host; };
    in
    {
      inherit lib;
      # The darwin sets evaluate like real nixpkgs'; building them needs a
      # Mac, which is how the tests see Nix's error for a missing builder.
      legacyPackages = lib.genAttrs [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ] packagesFor;
    };
}
