#!/usr/bin/env bash
# Installs a pinned Go program from the Go module proxy into .cache/ of
# this repository, once, and prints the path of its binary.
#   scripts/go-tool.sh NAME PACKAGE VERSION
# Extra go flags come through GOFLAGS.
set -euo pipefail
cd "$(dirname "$0")/.."

name=$1 package=$2 version=$3
gobin="$PWD/.cache/$name-$version"
if [ ! -x "$gobin/$name" ]; then
  mkdir -p .cache
  # Keep the cache out of git without touching the shared .gitignore.
  [ -e .cache/.gitignore ] || echo '*' > .cache/.gitignore
  echo "$name: installing $version into $gobin" >&2
  GOBIN="$gobin" go install "$package@$version" >&2
fi
echo "$gobin/$name"
