#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need, then
# checks formatting, vets and runs every test (unit and end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

# The suite must leave the machine as it found it: /tmp's mode (apt needs
# 1777) and the machine's Nix configuration are checked after it.
nixconf=/etc/nix/nix.conf
nixconf_sum() { if [ -e "$nixconf" ]; then sha256sum "$nixconf"; else echo absent; fi; }
nixconf_before=$(nixconf_sum)
check_host() {
  local mode
  mode=$(stat -c %a /tmp)
  if [ "$mode" != 1777 ]; then
    echo "the tests left /tmp at mode $mode, not 1777" >&2
    return 1
  fi
  if [ "$(nixconf_sum)" != "$nixconf_before" ]; then
    echo "the tests changed $nixconf" >&2
    return 1
  fi
}

unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt wants to rewrite: $unformatted" >&2
  exit 1
fi
go vet ./...
# `nix run` on a Mac builds the same code for darwin.
GOOS=darwin GOARCH=arm64 go build ./...
GOOS=darwin GOARCH=arm64 go vet ./...
./scripts/actionlint.sh
go test -count=1 -timeout 40m ./...

# Every fuzz target, for a short while each (FUZZTIME, default 10s): the
# package-name parser, the closure-graph parser and the tar writer.
for target in ./pkg/spec:FuzzCheckAttr ./pkg/spec:FuzzParse ./pkg/layers:FuzzParseGraph ./pkg/archive:FuzzPackNames; do
  go test -run '^$' -fuzz "^${target#*:}\$" -fuzztime "${FUZZTIME:-10s}" -fuzzminimizetime 2s "${target%%:*}"
done

check_host
