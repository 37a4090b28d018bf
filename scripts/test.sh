#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need, then
# checks formatting, vets and runs every test (unit and end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt wants to rewrite: $unformatted" >&2
  exit 1
fi
go vet ./...
./scripts/actionlint.sh
go test -count=1 -timeout 40m ./...

# Every fuzz target, for a short while each (FUZZTIME, default 10s): the
# package-name parser, the closure-graph parser and the tar writer.
for target in ./pkg/spec:FuzzCheckAttr ./pkg/spec:FuzzParse ./pkg/layers:FuzzParseGraph ./pkg/archive:FuzzPackNames; do
  go test -run '^$' -fuzz "^${target#*:}\$" -fuzztime "${FUZZTIME:-10s}" -fuzzminimizetime 2s "${target%%:*}"
done
