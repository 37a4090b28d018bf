# Packages that collide at the image root, for the collision tests: each
# provides bin/tool (and bin/NAME-only): alpha and beta as nixpkgs
# packages, app as a package of the team's own flake.
{
  outputs = { self }: let
    pkg = name: builtins.derivation {
      inherit name;
      system = "x86_64-linux";
      builder = "/bin/sh";
      args = [ "-c" "/bin/mkdir -p $out/bin && echo ${name} > $out/bin/tool && echo ${name} > $out/bin/${name}-only" ];
    };
  in {
    legacyPackages.x86_64-linux = { alpha = pkg "alpha"; beta = pkg "beta"; };
    packages.x86_64-linux.app = pkg "app";
  };
}
