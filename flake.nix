{
  description = "nixery: reproducible multi-arch container images made of Nix closures";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs =
    { self, nixpkgs }:
    let
      # The release version, from VERSION: the same string wherever nixery is
      # built (a path flake, as `uses: ./` and every action user's checkout
      # are, has no rev to add), so the derivation is the same as CI's.
      # scripts/build-release.sh reads the same file, and
      # .github/workflows/release.yml refuses a vX.Y.Z tag that differs.
      version = firstWord (builtins.readFile ./VERSION);
      firstWord = s: builtins.head (builtins.match "[[:space:]]*([^[:space:]]+)[[:space:]]*" s);

      # The NAR hash of `go mod vendor`. internal/flaketest recomputes it and
      # fails with the value to put here when go.mod, go.sum or the set of
      # imported packages changes.
      vendorHash = "sha256-Z39qXhIoJHkqqtR2CIx28gCCW2rJ5qSBCzPkVnjiZtc=";

      # nixery runs on Linux and macOS; the images it builds are always Linux
      # (on a Mac, their packages come from the binary cache or a Linux
      # builder).
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f system (checkGo nixpkgs.legacyPackages.${system}));

      # The go directive of go.mod: buildGoModule runs with GOTOOLCHAIN=local,
      # so a pinned nixpkgs whose Go is older fails with a message about
      # toolchains; say what to do instead.
      goModVersion =
        let
          lines = builtins.filter builtins.isString (builtins.split "\n" (builtins.readFile ./go.mod));
          matches = builtins.filter (m: m != null) (map (builtins.match "go ([0-9.]+)[[:space:]]*") lines);
        in
        builtins.head (builtins.head matches);
      checkGo =
        pkgs:
        if builtins.compareVersions pkgs.go.version goModVersion < 0 then
          throw "the pinned nixpkgs has Go ${pkgs.go.version}, but go.mod needs go ${goModVersion}: update flake.lock (nix flake update nixpkgs) or lower the go directive"
        else
          pkgs;

      # The pinned nixpkgs is baked into the binary as the default --nixpkgs,
      # as flake.lock pins it: github:OWNER/REPO/REV?narHash=HASH, the same
      # string scripts/build-release.sh bakes, so that images record the
      # same reference however nixery was built. nixery reads that source
      # from the store when it is there (offline, no second download), and
      # the package keeps it in nixery's closure. A nixpkgs given with
      # --override-input is not flake.lock's: its store path is baked.
      pin =
        let
          lock = builtins.fromJSON (builtins.readFile ./flake.lock);
        in
        lock.nodes.${lock.nodes.${lock.root}.inputs.nixpkgs}.locked;
      defaultNixpkgs =
        if pin.type or "" == "github" && pin.narHash or "" == nixpkgs.narHash then
          "github:${pin.owner}/${pin.repo}/${pin.rev}?narHash=${pin.narHash}"
        else
          "path:${nixpkgs}";

      source = import ./nix/source.nix;
    in
    {
      packages = forAllSystems (
        system: pkgs: {
          nixery = import ./nix/package.nix {
            inherit (pkgs) buildGoModule;
            inherit vendorHash defaultNixpkgs;
            nixpkgsSource = nixpkgs;
            inherit version;
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
            inherit version;
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

      # `nixery serve` as a NixOS service: services.nixery (nix/module.nix).
      nixosModules.default = import ./nix/module.nix { inherit self; };
      nixosModules.nixery = self.nixosModules.default;

      formatter = forAllSystems (system: pkgs: pkgs.nixfmt-tree);
    };
}
