# legacyPackages.<system> of the stand-in: buildGoModule and mkShell with
# real nixpkgs' interface, the host's Go as go, and placeholders for the
# other tools of the dev shell (they only need to evaluate).
{ system, host }:
let
  # A package whose programs stand in for a tool this machine may not have.
  placeholder =
    name:
    builtins.derivation {
      inherit name system;
      builder = "/bin/sh";
      args = [
        "-c"
        ''
          export PATH=/usr/bin:/bin
          mkdir -p $out/bin
          printf '#!/bin/sh\necho "%s: stand-in package, not the real tool" >&2\nexit 1\n' ${name} > $out/bin/${name}
          chmod +x $out/bin/${name}
        ''
      ];
    };
in
{
  buildGoModule = import ./go-module.nix { inherit system host; };
  mkShell = import ./mk-shell.nix { inherit system; };

  # With its version, as real nixpkgs' go has (the flake compares it with go.mod).
  go =
    builtins.derivation {
      name = "go-host";
      inherit system;
      builder = "/bin/sh";
      args = [
        "-c"
        "export PATH=/usr/bin:/bin && mkdir -p $out/bin && ln -s ${host.goroot}/bin/go ${host.goroot}/bin/gofmt $out/bin/"
      ];
    }
    // {
      version = host.goversion;
    };

  # `nix develop` looks for it to run the shell.
  bashInteractive = builtins.derivation {
    name = "bash-host";
    inherit system;
    builder = "/bin/sh";
    args = [
      "-c"
      "export PATH=/usr/bin:/bin && mkdir -p $out/bin && ln -s /bin/bash $out/bin/bash"
    ];
  };

  gopls = placeholder "gopls";
  gotools = placeholder "goimports";
  actionlint = placeholder "actionlint";
  shellcheck = placeholder "shellcheck";
  nixfmt-tree = placeholder "treefmt";
  skopeo = placeholder "skopeo";
  umoci = placeholder "umoci";
  jq = placeholder "jq";
}
