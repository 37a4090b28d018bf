# The hermetic tests, run inside a Nix build: gofmt, go vet, and
# `go test ./...` without the integration build tag. Tests that need Nix,
# root, a registry or image clients carry that tag and run in
# scripts/test.sh (go test -tags integration).
{
  buildGoModule,
  src,
  version,
  vendorHash,
}:
buildGoModule {
  pname = "nixery-unit-tests";
  inherit version src vendorHash;

  subPackages = [ "cmd/nixery" ];
  env.CGO_ENABLED = 0;

  doCheck = true;
  preCheck = ''
    export HOME=$TMPDIR
  '';
  checkPhase = ''
    runHook preCheck

    # As in buildGoModule's own checkPhase: tests may look up their sources.
    export GOFLAGS=''${GOFLAGS//-trimpath/}

    unformatted=$(find . -name '*.go' -not -path './vendor/*' -exec gofmt -l {} +)
    if [ -n "$unformatted" ]; then
      echo "gofmt wants to rewrite: $unformatted" >&2
      exit 1
    fi

    go vet ./...
    go vet -tags integration ./...

    # The source holds Go files and testdata only, so two kinds of
    # hermetic test run in scripts/test.sh alone: those that read the
    # files the repository ships (internal/flaketest: action.yml, the
    # flake, workflows; TestNixConfigMatchesScript: scripts/nix-config.sh),
    # and TestPackUnreadable, which reads its fixture as another user, who
    # cannot get past the build's own 0700 directory.
    packages=$(go list ./... | { grep -v '/internal/flaketest$' || true; })
    go test -count=1 -skip '^(TestPackUnreadable|TestNixConfigMatchesScript)$' $packages

    runHook postCheck
  '';
}
