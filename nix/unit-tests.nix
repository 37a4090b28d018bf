# The tests that need neither Nix nor a registry, run inside a Nix build:
# gofmt, go vet, and go test of every package whose tests do not import
# internal/testenv (those need real tools and run in scripts/test.sh).
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

    packages=$(go list -f '{{.ImportPath}}{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}}' ./... |
      { grep -v '/internal/testenv' || true; } | cut -d' ' -f1)
    # TestPackUnreadable reads its fixture as another user, which cannot
    # get past the build's own 0700 directory; scripts/test.sh runs it.
    if [ -n "$packages" ]; then
      go test -count=1 -skip '^TestPackUnreadable$' $packages
    fi

    runHook postCheck
  '';
}
