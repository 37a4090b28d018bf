#!/usr/bin/env bash
# Installs nektos/act, the GitHub Actions runner of others that the tests
# run the action under (internal/flaketest/act_test.go), pinned, from the
# Go module proxy into .cache/ of this repository (about 3 minutes on 2
# cores the first time), and prints the path of its binary.
set -euo pipefail
cd "$(dirname "$0")/.."

version=v0.2.89
gobin="$PWD/.cache/act-$version"
if [ ! -x "$gobin/act" ]; then
  mkdir -p .cache
  [ -e .cache/.gitignore ] || echo '*' > .cache/.gitignore
  echo "act: installing $version into $gobin" >&2
  GOBIN="$gobin" GOFLAGS=-mod=mod go install "github.com/nektos/act@$version" >&2
fi
echo "$gobin/act"
