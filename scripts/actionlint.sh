#!/usr/bin/env bash
# Lints the GitHub workflows with actionlint, installing the pinned version
# first (from the Go module proxy, into .cache/ of this repository).
# actionlint also checks every run: script with shellcheck when that is on
# PATH (scripts/setup.sh installs it).
# Arguments are passed to actionlint (default: all of .github/workflows).
set -euo pipefail
cd "$(dirname "$0")/.."

actionlint=$(./scripts/go-tool.sh actionlint github.com/rhysd/actionlint/cmd/actionlint v1.7.12)
if ! command -v shellcheck >/dev/null; then
  echo "actionlint: shellcheck is not installed, so run: scripts go unchecked (scripts/setup.sh installs it)" >&2
fi
exec "$actionlint" "$@"
