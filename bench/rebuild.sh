#!/usr/bin/env bash
# Rebuild costs with the registry as the cache, for a two-platform image of
# the stand-in nixpkgs (shell hello largefile, linux/amd64 + linux/arm64)
# pushed to a registry this script starts on loopback. ROUNDS times
# (default 3), each into a repository of its own:
#   1. a cold build (empty repository),
#   2. a warm rebuild with nothing changed: no layer packed, no blob
#      uploaded (every reused layer is verified: its diffID computed from
#      the store paths must equal the cached one),
#   3. a rebuild under a new tag (v2) with nothing changed: the layers are
#      found through the repository's cache record (tag nixery-cache), so
#      again none is packed or uploaded;
# then once, into the last round's repository:
#   4. a rebuild under a new tag (v3) after one package (moreutils)
#      changed: what was packed and uploaded against the size of the store
#      paths that changed.
# Each row is the fastest of the rounds (noise only adds time). It fails
# unless 2 and 3 take at most 15% of the cold build's time apart from Nix
# (issue 15's goal) and all three give the same index.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup rebuild.sh go nix jq bc docker-registry

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
build() { # label tag repository → prints a JSON line of the result with the wall time
  local t0 t1
  t0=$(date +%s.%N)
  "$work/nixery" build --nixpkgs "$nixpkgs" --platforms linux/amd64,linux/arm64 \
    --image "$registry/bench/$3" --tags "$2" --json shell hello largefile >"$work/$1.json" 2>"$work/$1.log"
  t1=$(date +%s.%N)
  jq -c --arg wall "$(echo "$t1 - $t0" | bc -l)" '{
      wall: ($wall|tonumber),
      nix: ((.timings.lock // 0) + ([.timings.nix // {} | .[]] | max // 0)),
      packed, reused,
      uploaded: ([.manifests[].layers[] | select(.uploaded) | .size] | add // 0),
      digest}' "$work/$1.json"
}
"$work/nixery" build --nixpkgs "$nixpkgs" --platforms linux/amd64,linux/arm64 --output "oci:$work/warmup" shell hello largefile >/dev/null 2>&1

# fastest A B → whichever of two result lines took less time apart from Nix
fastest() { [ -z "$1" ] && { echo "$2"; return; }; jq -cn --argjson a "$1" --argjson b "$2" 'if ($a.wall-$a.nix) <= ($b.wall-$b.nix) then $a else $b end'; }
cold='' warm='' newtag=''
rounds=${ROUNDS:-3}
for r in $(seq "$rounds"); do
  c=$(build cold v1 "rebuild-$r"); w=$(build warm v1 "rebuild-$r"); n=$(build newtag v2 "rebuild-$r")
  echo "round $r, wall − nix s: cold $(echo "$c" | jq '.wall-.nix'), warm $(echo "$w" | jq '.wall-.nix'), new tag $(echo "$n" | jq '.wall-.nix')" >&2
  [ "$(jq -n --argjson c "$c" --argjson w "$w" --argjson n "$n" '$c.digest == $w.digest and $c.digest == $n.digest and $w.packed == 0 and $n.packed == 0 and $w.uploaded == 0 and $n.uploaded == 0')" = true ] ||
    { echo "round $r: the rebuilds packed or uploaded, or gave another index" >&2; exit 1; }
  cold=$(fastest "$cold" "$c"); warm=$(fastest "$warm" "$w"); newtag=$(fastest "$newtag" "$n")
done
sed -i 's/soak up standard input,/soak up all of standard input,/' "$work/nixpkgs/packages.nix"
nix build --no-link "$nixpkgs#legacyPackages.x86_64-linux.moreutils" "$nixpkgs#legacyPackages.aarch64-linux.moreutils"
changed_bytes=$(nix path-info --json "$nixpkgs#legacyPackages.x86_64-linux.moreutils" "$nixpkgs#legacyPackages.aarch64-linux.moreutils" | jq '[.[].narSize] | add')
changed=$(build changed v3 "rebuild-$rounds")

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
echo "whole wall time, % of the cold build's: new tag $(jq -n --argjson c "$cold" --argjson w "$newtag" '(($w.wall/$c.wall)*1000|round)/10') (issue 15: at most 50)"
echo "changed store paths (moreutils for two systems): $changed_bytes bytes of NAR; uploaded: $(echo "$changed" | jq .uploaded) bytes compressed"
echo "fastest of $rounds rounds; every round's cold, warm and new-tag index digests equal, nothing packed or uploaded by the rebuilds"
[ "$(echo "$ratio <= 15" | bc -l)" = 1 ] && [ "$(echo "$newratio <= 15" | bc -l)" = 1 ]
