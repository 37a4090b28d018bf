#!/usr/bin/env bash
# What a team's rebuild costs after a change to its own software only: the
# example app (testdata/app, `.#greet`, its nixpkgs input locked to the
# stand-in) with nixpkgs packages beside it (shell hello largefile), two
# platforms, as a non-root user, pushed to a registry this script starts on
# loopback. Prints, for a cold build and for a rebuild after one commit
# that changes the app's message (so only greet's store path changes),
# the layers packed, the layer blobs uploaded and their bytes, and the
# ratio of uploaded bytes to the cold build's. It fails unless the rebuild
# packs and uploads only the layers that hold greet's store paths (one per
# platform) and the customisation layers that link them.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup app-rebuild.sh go nix jq bc git docker-registry

. scripts/nix-config.sh
work=$(mktemp -d)
cleanup() { [ -n "${registry_pid:-}" ] && kill "$registry_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/nixery" ./cmd/nixery
. scripts/registry.sh
start_registry "$work"

nixpkgs=path:$PWD/testdata/nixpkgs
app=$work/app
cp -r testdata/app "$app"
git() { command git -C "$app" -c user.email=ci@example.org -c user.name=CI -c init.defaultBranch=main "$@"; }
git init -q
git add -A
(cd "$app" && nix flake lock --override-input nixpkgs "$nixpkgs" 2>/dev/null)
git add -A
git commit -q -m "greet 1.0"

build() { # label → one line of figures; the JSON result in $work/label.json
  (cd "$app" && "$work/nixery" build --nixpkgs "$nixpkgs" --platforms linux/amd64,linux/arm64 \
    --image "$registry/team/greet" --tags "$1" --user app --json --sbom=false .#greet shell hello largefile) \
    >"$work/$1.json" 2>"$work/$1.log" || { cat "$work/$1.log" >&2; exit 1; }
  jq -r --arg name "$1" '
    [.manifests[].layers[]] as $l
    | ($l | map(select(.uploaded))) as $up
    | "\($name): \(.packed) layers packed, \(.reused) reused; \($up | length) of \($l | length) layer blobs uploaded, \($up | map(.size) | add // 0) bytes"' "$work/$1.json"
}
cold=$(build cold)
echo "$cold"
echo "a change to the app alone" >"$app/message.txt"
git commit -q -a -m "greet: new message"
again=$(build changed)
echo "$again"

# Which layers went again, and what they hold.
jq -r '.manifests[] | .platform as $p | .layers[] | select(.uploaded) | "  \($p): \(.size) bytes: \(.packages | join(" "))\(if .customisation then " (customisation)" else "" end)"' "$work/changed.json"
cold_bytes=$(jq '[.manifests[].layers[] | select(.uploaded) | .size] | add' "$work/cold.json")
changed_bytes=$(jq '[.manifests[].layers[] | select(.uploaded) | .size] | add // 0' "$work/changed.json")
echo "uploaded bytes, rebuild ÷ cold: $(echo "scale=6; $changed_bytes / $cold_bytes" | bc)"

# Only greet's layers and the customisation layers: 2 per platform.
bad=$(jq -r '.manifests[] | .layers[] | select(.uploaded) | select((.customisation | not) and (any(.packages[]; startswith("greet-")) | not)) | .packages | join(" ")' "$work/changed.json")
if [ -n "$bad" ] || [ "$(jq '.packed' "$work/changed.json")" -gt 4 ]; then
  echo "the rebuild packed or uploaded more than the app's layers: $bad" >&2
  exit 1
fi
