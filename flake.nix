{
  description = "nixery: reproducible multi-arch container images made of Nix closures";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      # The release version. .github/workflows/release.yml refuses a vX.Y.Z
      # tag that does not match it.
      version = "0.1.0";

      # The NAR hash of `go mod vendor`. internal/flaketest recomputes it and
      # fails with the value to put here when go.mod, go.sum or the set of
      # imported packages changes.
      vendorHash = "sha256-0K1nql5PEmReEEdV42J8VjQacKu7QXoFEDpNXUcWQPQ=";

      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});

      # A build from a clean checkout carries its commit, so that
      # `nixery --version` names what was built.
      fullVersion = "${version}+${self.shortRev or self.dirtyShortRev or "dirty"}";

      # The pinned nixpkgs is baked into the binary as the default --nixpkgs.
      # A path: reference to its store path works offline and costs no
      # second download; the binary's reference to it keeps the source in
      # nixery's closure, so it is present wherever nixery is.
      defaultNixpkgs = "path:${nixpkgs}";

      source = import ./nix/source.nix;
    in
    {
      packages = forAllSystems (
        system: pkgs: {
          nixery = import ./nix/package.nix {
            inherit (pkgs) buildGoModule;
            inherit vendorHash defaultNixpkgs;
            version = fullVersion;
            src = source { root = ./.; };
          };
          default = self.packages.${system}.nixery;
        }
      );

      apps = forAllSystems (
        system: pkgs: {
          nixery = {
            type = "app";
            program = "${self.packages.${system}.nixery}/bin/nixery";
            meta.description = "Build and push container images made of Nix closures";
          };
          default = self.apps.${system}.nixery;
        }
      );

      checks = forAllSystems (
        system: pkgs: {
          # Building the package also checks vendorHash against go.mod and go.sum.
          nixery = self.packages.${system}.nixery;
          unit-tests = import ./nix/unit-tests.nix {
            inherit (pkgs) buildGoModule;
            inherit vendorHash;
            version = fullVersion;
            src = source {
              root = ./.;
              withTestdata = true;
            };
          };
        }
      );

      devShells = forAllSystems (
        system: pkgs: {
          default = pkgs.mkShell {
            packages = with pkgs; [
              go
              gopls
              gotools
              actionlint
              shellcheck
              nixfmt-tree
              skopeo
              umoci
              jq
            ];
          };
        }
      );

      formatter = forAllSystems (system: pkgs: pkgs.nixfmt-tree);
    };
}
