#!/usr/bin/env bash
# Old against new nixery, alternated in the same run, for writing OCI
# layouts (the stand-in nixpkgs' hello gotree, linux/amd64 + linux/arm64):
#   rebuild  `build --output oci:DIR` into a layout holding the same image
#            already (untimed cold build first): the layout is a cache;
#   cold     `build --output oci:DIR` into a new layout, TMPDIR on the
#            same file system: the layers are linked, not copied (its
#            upload phase is the layout write);
#   serve    a cold pull from `nixery serve` (new storage each time):
#            skopeo copies this machine's platform's image, every blob,
#            into an OCI layout;
#   probes   nix path-info --json-format probes a serve makes for three
#            pulls (a wrapper nix counts them), and what one costs.
# OLD is a git revision (default: the branch's fork point from main),
# built from `git archive`; NEW is the working tree (OLD may be HEAD only
# when the tree has changes). ROUNDS (default 5)
# rounds, the order of old and new swapped each round. Prints min and
# median per binary and new/old ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup layout-write.sh go nix git jq bc curl skopeo
. scripts/nix-config.sh
old_rev=${OLD:-$(git merge-base HEAD main 2>/dev/null || git rev-parse HEAD~1)}
if [ "$(git rev-parse "$old_rev^{commit}")" = "$(git rev-parse HEAD)" ] && git diff --quiet HEAD; then
  echo "layout-write.sh: OLD ($old_rev) is HEAD and the tree has no changes: old and new would be the same; set OLD to an earlier revision (e.g. OLD=HEAD~1)" >&2
  exit 1
fi
rounds=${ROUNDS:-5}
pkgs=(hello gotree)
platforms=linux/amd64,linux/arm64
work=$(mktemp -d)
serve_pid=
cleanup() { [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

mkdir "$work/old-src"
git archive "$old_rev" | tar -x -C "$work/old-src"
(cd "$work/old-src" && go build -o "$work/old" ./cmd/nixery)
go build -o "$work/new" ./cmd/nixery
nixpkgs="path:$PWD/testdata/nixpkgs"
"$work/new" build --nixpkgs "$nixpkgs" --platforms "$platforms" --output "oci:$work/warmup" "${pkgs[@]}" >/dev/null 2>&1
rm -rf "$work/warmup"
mkdir "$work/tmp"
export TMPDIR=$work/tmp

record() { echo "$1 $2 $3" >>"$work/times"; } # measure binary seconds

build() { # binary dir → the --json result
  "$work/$1" build --nixpkgs "$nixpkgs" --platforms "$platforms" --output "oci:$2" --json "${pkgs[@]}" 2>"$work/log"
}

# A wrapper nix on PATH that logs each call's arguments.
mkdir "$work/bin"
printf '#!/bin/sh\necho "$*" >>%q\nexec %q "$@"\n' "$work/nix-calls" "$(command -v nix)" >"$work/bin/nix"
chmod +x "$work/bin/nix"

pull() { # host image → seconds to copy this machine's platform's image
  local t0 dir=$work/pulled
  t0=$(now)
  skopeo copy -q --src-tls-verify=false "docker://$1/$2:latest" "oci:$dir:latest" >/dev/null ||
    { echo "layout-write.sh: skopeo copy of $2 from $1 failed" >&2; return 1; }
  echo "$(now) - $t0" | bc -l
  rm -rf "$dir"
}

serve_round() { # binary round
  local port storage t
  port=$((20000 + RANDOM % 20000))
  storage=$work/storage-$1-$2
  : >"$work/nix-calls"
  PATH=$work/bin:$PATH "$work/$1" serve --listen "127.0.0.1:$port" --nixpkgs "$nixpkgs" --storage "$storage" 2>"$work/serve.log" &
  serve_pid=$!
  local up=false
  for _ in $(seq 100); do
    kill -0 "$serve_pid" 2>/dev/null || break
    if curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && kill -0 "$serve_pid" 2>/dev/null; then up=true; break; fi
    sleep 0.1
  done
  [ "$up" = true ] || { echo "layout-write.sh: $1 serve did not start on 127.0.0.1:$port: $(cat "$work/serve.log")" >&2; exit 1; }
  t=$(pull "127.0.0.1:$port" "hello/gotree")
  record serve "$1" "$t"
  pull "127.0.0.1:$port" hello >/dev/null
  pull "127.0.0.1:$port" busybox >/dev/null
  kill "$serve_pid"
  wait "$serve_pid" 2>/dev/null || true
  serve_pid=
  record probes "$1" "$(grep -c -- '--json-format' "$work/nix-calls" || true)"
  rm -rf "$storage"
}

for r in $(seq "$rounds"); do
  order="old new"
  [ $((r % 2)) = 0 ] && order="new old"
  for bin in $order; do
    dir=$work/layout-$bin-$r
    build "$bin" "$dir" >/dev/null
    t0=$(now)
    res=$(build "$bin" "$dir")
    record rebuild "$bin" "$(echo "$(now) - $t0" | bc -l)"
    echo "round $r $bin rebuild: $(echo "$res" | jq -c '{packed, reused, digest}')" >&2
    rm -rf "$dir"

    t0=$(now)
    res=$(build "$bin" "$dir")
    record cold "$bin" "$(echo "$(now) - $t0" | bc -l)"
    record cold-write "$bin" "$(echo "$res" | jq '.timings.upload')"
    echo "round $r $bin cold: $(echo "$res" | jq -c '{packed, digest}')" >&2
    rm -rf "$dir"
    [ -z "$(ls -A "$TMPDIR")" ] || { echo "round $r $bin: left in TMPDIR: $(ls -A "$TMPDIR")" >&2; exit 1; }

    serve_round "$bin" "$r"
  done
done

# What one failed probe costs (this Nix is older than 2.33).
store_path=$(nix build --no-link --json "$nixpkgs#hello" | jq -r '.[0].outputs.out')
for _ in 1 2 3 4 5; do
  t0=$(now)
  nix path-info --json --recursive --closure-size --json-format 1 -- "$store_path" >/dev/null 2>&1 || true
  echo "$(now) - $t0" | bc -l
done | sort -n | sed -n 3p | xargs printf 'one failed path-info --json-format probe: median %.3f s\n'

stats() { # measure binary → "min median"
  awk -v m="$1" -v b="$2" '$1 == m && $2 == b {print $3}' "$work/times" | sort -g |
    awk '{v[NR] = $1} END {printf "%.3f %.3f", v[1], (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'
}
printf '%-11s %18s %18s %14s\n' measure "old min/median" "new min/median" "new/old min/med"
for m in rebuild cold cold-write serve probes; do
  read -r omin omed <<<"$(stats "$m" old)"
  read -r nmin nmed <<<"$(stats "$m" new)"
  ratio() { awk -v n="$1" -v o="$2" 'BEGIN { if (o > 0) printf "%.2f", n / o; else printf "-" }'; }
  printf '%-11s %8s %9s %8s %9s %6s %7s\n' "$m" "$omin" "$omed" "$nmin" "$nmed" "$(ratio "$nmin" "$omin")" "$(ratio "$nmed" "$omed")"
done
echo "(seconds; probes: calls with --json-format for 3 pulls of one serve; old = $old_rev, $rounds rounds)"
