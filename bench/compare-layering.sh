#!/usr/bin/env bash
# Prints the layering comparison of docs/layering.md: every strategy at
# layer budgets 4, 8 to 12, 16, 32, 48, 94 and 124, with and without popularity data, on the
# corpus in internal/layereval/testdata.
#
# With --regenerate, first rebuilds that corpus from this machine's Debian
# package index (run `apt-get update` if there is none).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --regenerate ]; then
  shopt -s nullglob
  indexes=(/var/lib/apt/lists/*_bookworm_main_binary-amd64_Packages*)
  if [ ${#indexes[@]} -eq 0 ]; then
    echo "compare-layering: no Debian bookworm main package index in /var/lib/apt/lists: run apt-get update" >&2
    exit 1
  fi
  index=${indexes[0]}
  out=internal/layereval/testdata/corpus.json.gz
  /usr/lib/apt/apt-helper cat-file "$index" | go run ./tools/debclosures -corpus "$out.tmp"
  mv "$out.tmp" "$out"
  echo "regenerated $out from $index" >&2
fi

go run ./bench/compare-layering
