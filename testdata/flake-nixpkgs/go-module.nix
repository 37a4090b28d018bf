# Stand-in for nixpkgs' buildGoModule, built on the host's Go toolchain.
#
# Like the real one it makes two derivations: a fixed-output derivation
# holding `go mod vendor` (its NAR hash is vendorHash, so a stale hash fails
# the build the same way), then the build with -mod=vendor -trimpath,
# `go install` of subPackages into $out/bin, the check phase when doCheck,
# and postInstall. The vendoring runs offline from the host's module cache,
# which needs sandbox = false. The build runs under /bin/bash because the
# phases it evaluates are written for nixpkgs' stdenv, which is bash.
{ system, host }:
let
  inherit
    (
      {
        x86_64-linux = { goos = "linux"; goarch = "amd64"; };
        aarch64-linux = { goos = "linux"; goarch = "arm64"; };
        x86_64-darwin = { goos = "darwin"; goarch = "amd64"; };
        aarch64-darwin = { goos = "darwin"; goarch = "arm64"; };
      }
      .${system}
    )
    goos
    goarch
    ;

  # Arguments of real buildGoModule (and the stdenv attributes it passes on)
  # that the stand-in implements. Others fail, rather than being ignored.
  known = [
    "pname"
    "version"
    "src"
    "vendorHash"
    "subPackages"
    "modRoot"
    "ldflags"
    "tags"
    "env"
    "doCheck"
    "checkPhase"
    "preBuild"
    "postBuild"
    "preCheck"
    "postCheck"
    "postInstall"
    "meta"
    "passthru"
  ];

  defaultCheckPhase = ''
    runHook preCheck
    export GOFLAGS=''${GOFLAGS//-trimpath/}
    for p in $subPackages; do go test -vet=off "./$p"; done
    runHook postCheck
  '';
in
args:
let
  unknown = builtins.filter (n: !builtins.elem n known) (builtins.attrNames args);
  missing = builtins.filter (n: !(args ? ${n})) [
    "pname"
    "version"
    "src"
    "vendorHash"
    "subPackages"
  ];
  name = "${args.pname}-${args.version}";

  goModules = builtins.derivation {
    name = "${name}-go-modules";
    inherit system;
    builder = "/bin/sh";
    args = [
      "-c"
      ''
        set -eu
        export PATH=${host.goroot}/bin:/usr/bin:/bin HOME=$TMPDIR
        export GOMODCACHE=${host.gomodcache} GOPROXY=off GOSUMDB=off GOFLAGS=-mod=mod
        export GOTOOLCHAIN=local GOWORK=off GOCACHE=$TMPDIR/go-cache
        cp -r ${args.src} $TMPDIR/source
        chmod -R u+w $TMPDIR/source
        cd $TMPDIR/source/${args.modRoot or "."}
        go mod vendor -o $out
      ''
    ];
    outputHashMode = "recursive";
    outputHashAlgo = "sha256";
    outputHash = args.vendorHash;
  };

  package = builtins.derivation (
    {
      inherit name system;
      builder = "/bin/bash";
      args = [
        "-c"
        ''
          set -euo pipefail
          export PATH=${host.goroot}/bin:/usr/bin:/bin HOME=$TMPDIR
          export GOPATH=$TMPDIR/go GOCACHE=${host.gocache} GOPROXY=off GOSUMDB=off
          export GOTOOLCHAIN=local GOWORK=off GO111MODULE=on GOOS=${goos} GOARCH=${goarch}
          export GOFLAGS="-mod=vendor -trimpath"
          runHook() { eval "''${!1:-}"; }

          cp -r "$src" "$TMPDIR/source"
          chmod -R u+w "$TMPDIR/source"
          cd "$TMPDIR/source/$modRoot"
          rm -rf vendor
          cp -r "$goModules" vendor
          chmod -R u+w vendor

          runHook preBuild
          for p in $subPackages; do
            echo "Building subPackage ./$p"
            go install ''${tags:+-tags=$tags} -ldflags="$ldflags -buildid=" "./$p"
          done
          # A cross build installs into bin/GOOS_GOARCH: move it up, as nixpkgs does.
          if [ -d "$GOPATH/bin/${goos}_${goarch}" ]; then
            mv "$GOPATH/bin/${goos}_${goarch}"/* "$GOPATH/bin/"
            rmdir "$GOPATH/bin/${goos}_${goarch}"
          fi
          runHook postBuild

          if [ -n "$doCheck" ]; then
            eval "$checkPhase"
          fi

          mkdir -p "$out"
          if [ -e "$GOPATH/bin" ]; then cp -r "$GOPATH/bin" "$out"; fi
          runHook postInstall
        ''
      ];
      inherit (args) src subPackages;
      inherit goModules;
      modRoot = args.modRoot or ".";
      ldflags = toString (args.ldflags or [ ]);
      tags = builtins.concatStringsSep "," (args.tags or [ ]);
      doCheck = args.doCheck or true;
      checkPhase = args.checkPhase or defaultCheckPhase;
      preBuild = args.preBuild or "";
      postBuild = args.postBuild or "";
      preCheck = args.preCheck or "";
      postCheck = args.postCheck or "";
      postInstall = args.postInstall or "";
    }
    // builtins.mapAttrs (n: v: toString v) (args.env or { })
  );
in
if unknown != [ ] then
  throw "stand-in buildGoModule: unexpected arguments ${toString unknown}; it implements ${toString known}"
else if missing != [ ] then
  throw "stand-in buildGoModule: missing arguments ${toString missing}"
else if !builtins.isString args.vendorHash then
  throw "stand-in buildGoModule: vendorHash must be a hash string"
else
  package
  // {
    inherit (args) pname version;
    inherit goModules;
    meta = args.meta or { };
    passthru = args.passthru or { };
  }
  // (args.passthru or { })
