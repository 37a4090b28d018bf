#!/usr/bin/env bash
# Builds the release binaries of nixery: static, for linux/amd64,
# linux/arm64, darwin/amd64 and darwin/arm64, byte for byte the same on any
# machine and in any directory (pinned Go toolchain, -trimpath, no VCS stamp,
# no build ID), with SHA256SUMS and the digest of the sources (release/source).
# .github/workflows/release.yml runs it on a tag; anyone can run it on a
# checkout of that tag and get the same bytes.
#
#   scripts/build-release.sh [--record | --check] [OUTDIR]    (default OUTDIR: dist)
#
#   --record  also copy SHA256SUMS and the source digest into release/, to
#             commit with the release (the action checks downloads against them)
#   --check   fail unless the build matches what release/ records
set -euo pipefail
cd "$(dirname "$0")/.."
. action/release-lib.sh

# The Go release every release binary is built with. GOTOOLCHAIN makes the
# go command fetch exactly this one (from the module proxy) when another is
# installed, since a different Go gives different bytes.
go_toolchain=go1.26.8
# RELEASE_TARGETS builds a subset (the tests rebuild one from an empty
# build cache, to see that nothing cached leaks into the bytes).
targets=${RELEASE_TARGETS:-"linux/amd64 linux/arm64 darwin/amd64 darwin/arm64"}

mode=build
case "${1:-}" in
  --record | --check) mode=${1#--}; shift ;;
  -*) echo "build-release.sh: unknown option $1 (use --record or --check)" >&2; exit 2 ;;
esac
out=${1:-dist}

die() { echo "build-release.sh: $*" >&2; exit 1; }
command -v go >/dev/null || die "go is not installed: install Go (any release; $go_toolchain is fetched)"
command -v jq >/dev/null || die "jq is not installed: it reads the nixpkgs pin from flake.lock"

version=$(tr -d ' \n' < VERSION)
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "VERSION holds '$version', not X.Y.Z"

# The default --nixpkgs of a release binary: the nixpkgs commit flake.lock
# pins, with the NAR hash of its tree, as the flake's package bakes it, so
# that images record the same reference however nixery was built (and
# nixery reads the tree from the store when it is there).
nixpkgs=$(jq -er '.nodes[.nodes[.root].inputs.nixpkgs].locked
  | select(.type == "github" and .narHash != null)
  | "github:\(.owner)/\(.repo)/\(.rev)?narHash=\(.narHash)"' flake.lock) ||
  die "flake.lock pins no github nixpkgs to bake in as the default --nixpkgs"

mkdir -p "$out"
rm -f "$out"/nixery-* "$out/SHA256SUMS" "$out/source"
for target in $targets; do
  os=${target%/*} arch=${target#*/}
  echo "build-release.sh: nixery $version for $os/$arch" >&2
  # Everything that changes the bytes is set here rather than taken from the
  # caller's environment.
  env -u GOFLAGS -u GOEXPERIMENT -u GOAMD64 -u GOARM64 \
    GOTOOLCHAIN="$go_toolchain" GOOS="$os" GOARCH="$arch" CGO_ENABLED=0 \
    GOWORK=off GO111MODULE=on GOFLAGS=-mod=readonly \
    go build -trimpath -buildvcs=false \
    -ldflags="-s -w -buildid= -X main.version=$version -X main.defaultNixpkgs=$nixpkgs" \
    -o "$out/nixery-$os-$arch" ./cmd/nixery
done
(cd "$out" && for f in nixery-*; do printf '%s  %s\n' "$(sha256_of "$f")" "$f"; done) > "$out/SHA256SUMS"
source_digest . > "$out/source"

case $mode in
  record)
    mkdir -p release
    cp "$out/SHA256SUMS" "$out/source" release/
    echo "build-release.sh: recorded release/SHA256SUMS and release/source for $version; commit them, then tag v$version" >&2
    ;;
  check)
    cmp -s "$out/source" release/source ||
      die "release/source does not match these sources: run scripts/build-release.sh --record and commit release/ before tagging"
    cmp -s "$out/SHA256SUMS" release/SHA256SUMS ||
      die "the binaries differ from release/SHA256SUMS (built with $(go env GOVERSION) for $go_toolchain): the build is not reproducible, or release/ is stale"
    echo "build-release.sh: the binaries match release/SHA256SUMS" >&2
    ;;
esac
cat "$out/SHA256SUMS"
