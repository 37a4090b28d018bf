# An application of a team's own, as it ships it with nixery: `greet`, a
# small program for two systems with meta.mainProgram, on nixpkgs.
#
# The tests lock its nixpkgs input to the stand-in in ../nixpkgs (nix flake
# lock --override-input nixpkgs path:…), whose packages are real
# derivations made from this machine's programs; with real nixpkgs,
# pkgs.writeShellScriptBin would make it in one line. message.txt is what
# greet says: change it, and only greet's store path changes.
{
  description = "greet: the example application of nixery's tests";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      greetFor = system:
        let
          pkgs = nixpkgs.legacyPackages.${system};
          sh = "${pkgs.busybox}/bin/busybox";
        in
        builtins.derivation {
          name = "greet-1.0";
          inherit system;
          builder = "/bin/sh";
          PATH = "/usr/bin:/bin";
          message = builtins.readFile ./message.txt;
          args = [ "-eu" "-c" ''
            mkdir -p $out/bin $out/share/greet
            printf '%s' "$message" > $out/share/greet/message
            {
              echo '#!${sh} sh'
              echo "${sh} sed 's/^/greet: /' $out/share/greet/message"
              echo 'echo "greet: running as $(${sh} id -un) ($(${sh} id -u):$(${sh} id -g)) with HOME=$HOME"'
              echo 'if [ -n "$HOME" ] && ${sh} touch "$HOME/.greet" 2>/dev/null; then echo "greet: $HOME is writable"; fi'
              echo 'echo "greet: working in $(${sh} pwd)"'
              echo 'for a in "$@"; do echo "greet: argument $a"; done'
            } > $out/bin/greet
            chmod +x $out/bin/greet
          '' ];
        } // {
          pname = "greet";
          version = "1.0";
          meta = {
            description = "Says hello from inside an image";
            mainProgram = "greet";
          };
        };
      forAll = f: builtins.listToAttrs (map (system: { name = system; value = f system; }) systems);
    in
    {
      packages = forAll (system: rec {
        greet = greetFor system;
        default = greet;
        # Data only: no bin/, so no program to start.
        site = builtins.derivation {
          name = "site-1.0";
          inherit system;
          builder = "/bin/sh";
          args = [ "-c" "/bin/mkdir -p $out/share/site && echo hi > $out/share/site/index.html" ];
        } // { pname = "site"; version = "1.0"; };
      });
    };
}
