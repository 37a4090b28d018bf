#!/usr/bin/env bash
# Rebuild costs with the registry as the cache, for a two-platform image of
# the stand-in nixpkgs (shell hello largefile, linux/amd64 + linux/arm64)
# pushed to a registry this script starts on loopback:
#   1. a cold build (empty registry),
#   2. a warm rebuild with nothing changed: no layer packed, no blob
#      uploaded, and apart from Nix under 25% of the cold build's time
#      (every reused layer is verified: its diffID computed from the store
#      paths must equal the cached one),
#   3. a rebuild under a new tag (v2) with nothing changed: the layers are
#      found through the repository's cache record (tag nixery-cache), so
#      again none is packed or uploaded, and under 25% of cold apart from Nix
#      as for the warm rebuild (issue 15 aims at 15%; on this sub-second
#      fixture, process start and registry round trips are ~0.2 s of it),
#   4. a rebuild under a new tag (v3) after one package (moreutils)
#      changed: what was packed and uploaded against the size of the store
#      paths that changed.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null

. scripts/nix-config.sh
work=$(mktemp -d)
cleanup() { [ -n "${registry_pid:-}" ] && kill "$registry_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/nixery" ./cmd/nixery
. scripts/registry.sh
start_registry "$work"

# A copy of the stand-in whose moreutils can be changed; built once first,
# so that Nix's own build time is not part of what is compared.
cp -r testdata/nixpkgs "$work/nixpkgs"
nixpkgs="path:$work/nixpkgs"
image=$registry/bench/rebuild
build() { # label [tag] → prints a JSON line of the result with the wall time
  local t0 t1 tag=${2:-v1}
  t0=$(date +%s.%N)
  "$work/nixery" build --nixpkgs "$nixpkgs" --platforms linux/amd64,linux/arm64 \
    --image "$image" --tags "$tag" --json shell hello largefile >"$work/$1.json" 2>"$work/$1.log"
  t1=$(date +%s.%N)
  jq -c --arg wall "$(echo "$t1 - $t0" | bc -l)" '{
      wall: ($wall|tonumber),
      nix: ((.timings.lock // 0) + ([.timings.nix // {} | .[]] | max // 0)),
      packed, reused,
      uploaded: ([.manifests[].layers[] | select(.uploaded) | .size] | add // 0),
      digest}' "$work/$1.json"
}
"$work/nixery" build --nixpkgs "$nixpkgs" --platforms linux/amd64,linux/arm64 --output "oci:$work/warmup" shell hello largefile >/dev/null 2>&1

cold=$(build cold)
warm=$(build warm)
newtag=$(build newtag v2)
old=$(nix path-info --json "$nixpkgs#legacyPackages.x86_64-linux.moreutils" "$nixpkgs#legacyPackages.aarch64-linux.moreutils" | jq '[.[].path]')
sed -i 's/soak up standard input,/soak up all of standard input,/' "$work/nixpkgs/packages.nix"
nix build --no-link "$nixpkgs#legacyPackages.x86_64-linux.moreutils" "$nixpkgs#legacyPackages.aarch64-linux.moreutils"
changed_bytes=$(nix path-info --json "$nixpkgs#legacyPackages.x86_64-linux.moreutils" "$nixpkgs#legacyPackages.aarch64-linux.moreutils" | jq '[.[].narSize] | add')
changed=$(build changed v3)

row() { echo "$2" | jq -r --arg name "$1" '"| \($name) | \(.wall*100|round/100) | \(.nix*100|round/100) | \((.wall-.nix)*100|round/100) | \(.packed) | \(.reused) | \(.uploaded) |"'; }
echo "| build | wall s | nix s | wall − nix s | layers packed | layers reused | bytes uploaded |"
echo "|---|---:|---:|---:|---:|---:|---:|"
row "cold" "$cold"
row "warm, nothing changed" "$warm"
row "new tag v2, nothing changed" "$newtag"
row "new tag v3, moreutils changed" "$changed"
echo
pct() { jq -n --argjson c "$cold" --argjson w "$1" '((($w.wall-$w.nix)/($c.wall-$c.nix))*1000|round)/10'; }
ratio=$(pct "$warm")
newratio=$(pct "$newtag")
echo "apart from Nix, % of the cold build's: warm $ratio, new tag $newratio, new tag + moreutils changed $(pct "$changed")"
echo "changed store paths (moreutils for two systems): $changed_bytes bytes of NAR; uploaded: $(echo "$changed" | jq .uploaded) bytes compressed"
same=$(jq -n --argjson c "$cold" --argjson w "$warm" --argjson n "$newtag" '$c.digest == $w.digest and $c.digest == $n.digest')
echo "cold, warm and new-tag index digests equal: $same"
[ "$same" = true ] && [ "$(echo "$warm" | jq '.packed == 0 and .uploaded == 0')" = true ] &&
  [ "$(echo "$newtag" | jq '.packed == 0 and .uploaded == 0')" = true ] &&
  [ "$(echo "$ratio < 25" | bc -l)" = 1 ] && [ "$(echo "$newratio < 25" | bc -l)" = 1 ]
