# The nixery command, built from ./cmd/nixery with nixpkgs' buildGoModule.
{
  buildGoModule,
  src,
  version,
  vendorHash,
  # The flake reference `nixery build` uses when --nixpkgs is not given.
  defaultNixpkgs,
  # Its source tree, kept in nixery's closure: nixery reads the default
  # from the store, offline, wherever nixery is installed.
  nixpkgsSource,
}:
buildGoModule {
  pname = "nixery";
  inherit version src vendorHash;

  subPackages = [ "cmd/nixery" ];

  # A static binary: nothing but the default nixpkgs' source in its closure.
  env.CGO_ENABLED = 0;

  ldflags = [
    "-s"
    "-w"
    "-X main.version=${version}"
    "-X main.defaultNixpkgs=${defaultNixpkgs}"
  ];

  postInstall = ''
    mkdir -p $out/share/nixery
    ln -s ${nixpkgsSource} $out/share/nixery/nixpkgs
  '';

  # The tests need Nix and a registry, which the build sandbox has not; the
  # ones that need neither run in the flake's unit-tests check.
  doCheck = false;

  meta = {
    description = "Build reproducible multi-arch container images made of Nix closures";
    homepage = "https://github.com/nixery-action/nixery-action";
    mainProgram = "nixery";
  };
}
