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

# The Go release every release binary is built with: the official build,
# downloaded as the module golang.org/toolchain (checked against the
# checksum database, as GOTOOLCHAIN does) and run directly, since a
# different Go gives different bytes, and a Go on PATH reporting the same
# version may be another build (nixpkgs' Go is patched).
go_toolchain=go1.26.8
# RELEASE_TARGETS builds a subset (the tests rebuild one from an empty
# build cache, to see that nothing cached leaks into the bytes).
targets=${RELEASE_TARGETS:-"linux/amd64 linux/arm64 darwin/amd64 darwin/arm64"}

usage="usage: scripts/build-release.sh [--record | --check] [OUTDIR]"
die() { echo "build-release.sh: $*" >&2; exit 1; }
usage_error() { echo "build-release.sh: $1; $usage" >&2; exit 2; }

mode=build out=
for arg in "$@"; do
  case $arg in
    --record | --check)
      [ "$mode" = build ] || usage_error "--$mode and $arg together"
      mode=${arg#--} ;;
    -*) usage_error "unknown option $arg" ;;
    "") usage_error "an empty OUTDIR" ;;
    *)
      [ -z "$out" ] || usage_error "one OUTDIR, not both $out and $arg"
      out=$arg ;;
  esac
done
out=${out:-dist}

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

# official_goroot prints the directory of the official $go_toolchain for
# this machine, downloading it (once; the module cache keeps it) with the
# go on PATH, outside any module and with the caller's proxy settings.
official_goroot() {
  local host scratch json
  host=$(GOTOOLCHAIN=local go env GOHOSTOS)-$(GOTOOLCHAIN=local go env GOHOSTARCH) || return 1
  scratch=$(mktemp -d)
  json=$(cd "$scratch" && GOTOOLCHAIN=local GOFLAGS=-mod=mod GOWORK=off \
    go mod download -json "golang.org/toolchain@v0.0.1-$go_toolchain.$host" 2>&1) || true
  rmdir "$scratch"
  jq -er 'select(.Dir and (.Error | not)) | .Dir' <<<"$json" 2>/dev/null && return
  echo "build-release.sh: downloading golang.org/toolchain@v0.0.1-$go_toolchain.$host failed: $(jq -r '.Error // empty' <<<"$json" 2>/dev/null || head -n1 <<<"$json")" >&2
  return 1
}
goroot=$(official_goroot) || die "cannot get Go $go_toolchain (see above): check GOPROXY and the network"
gobin=$goroot/bin/go
# A module's files are not executable: mark the commands, as the go
# command does when it switches to a toolchain it downloaded.
find "$goroot/bin" "$goroot/pkg/tool" -type f ! -perm -u+x -exec chmod a+x {} + ||
  die "cannot make the commands of $goroot executable"
[ "$(GOTOOLCHAIN=local GOROOT="$goroot" "$gobin" env GOVERSION)" = "$go_toolchain" ] ||
  die "$gobin is not $go_toolchain: remove $goroot and run again"

# The build sees nothing of the caller's environment but where modules come
# from and where the caches are (go.sum pins every module, and the cache is
# keyed by everything else); every setting that changes the bytes is fixed
# here, and GOENV=off ignores a `go env -w` file.
fetch=(GOPROXY GOSUMDB GOPRIVATE GONOPROXY GONOSUMDB GOINSECURE GOMODCACHE GOCACHE)
values=()
while IFS= read -r v; do values+=("$v"); done < <(GOTOOLCHAIN=local GOROOT="$goroot" "$gobin" env "${fetch[@]}")
build_env=(HOME="${HOME:-/nonexistent}" PATH="$PATH" TMPDIR="${TMPDIR:-/tmp}"
  GOROOT="$goroot" GOTOOLCHAIN=local GOENV=off GOFLAGS=-mod=readonly GOWORK=off GO111MODULE=on
  CGO_ENABLED=0 GOAMD64=v1 GOARM64=v8.0 GOFIPS140=off)
for i in "${!fetch[@]}"; do
  build_env+=("${fetch[$i]}=${values[$i]:-}")
done
echo "build-release.sh: Go $go_toolchain from $goroot" >&2

mkdir -p "$out"
rm -f "$out"/nixery-* "$out/SHA256SUMS" "$out/source"
for target in $targets; do
  os=${target%/*} arch=${target#*/}
  echo "build-release.sh: nixery $version for $os/$arch" >&2
  env -i "${build_env[@]}" GOOS="$os" GOARCH="$arch" \
    "$gobin" build -trimpath -buildvcs=false \
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
      die "the binaries differ from release/SHA256SUMS (built with $go_toolchain from $goroot, GOAMD64=v1 GOARM64=v8.0 GOFIPS140=off, no GOEXPERIMENT): release/ is stale (run --record on the release commit), or the build is not reproducible"
    echo "build-release.sh: the binaries match release/SHA256SUMS" >&2
    ;;
esac
cat "$out/SHA256SUMS"
