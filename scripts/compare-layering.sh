#!/usr/bin/env bash
# Prints the layering comparison of docs/layering.md: every strategy at
# layer budgets 16, 48 and 94, with and without popularity data, on the
# corpus in internal/layereval/testdata. With --regenerate, first rebuilds
# the corpus from this machine's Debian package index.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --regenerate ]; then
  index=$(ls /var/lib/apt/lists/*_bookworm_main_binary-amd64_Packages* | head -1)
  /usr/lib/apt/apt-helper cat-file "$index" | go run ./internal/layereval/gencorpus > internal/layereval/testdata/corpus.json.gz
fi
go run ./internal/layereval/compare
