# A stand-in for nixpkgs, for tests and first runs on machines without
# network. Its packages are real derivations with real store paths,
# references and closures, made by copying this machine's programs into the
# store and re-linking them against a glibc store path, the way nixpkgs
# links everything; so `hello` and `bash` run inside an image that holds
# nothing but their closures.
#
# It has no inputs and evaluates without network or git: use it as
# `path:<this directory>`. The aarch64-linux packages are the same host
# programs (they are never run) plus nix-support/system naming the system;
# building them needs `extra-platforms = aarch64-linux` in nix.conf.
{
  description = "Stand-in nixpkgs: a few packages built from this machine's programs";

  outputs = { self }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forSystem = system: {
        name = system;
        value = import ./packages.nix { inherit system; };
      };
    in
    {
      legacyPackages = builtins.listToAttrs (map forSystem systems);
    };
}
