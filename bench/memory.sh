#!/usr/bin/env bash
# Peak memory of packing a closure of about 2 GB: this machine's
# libraries (/usr/lib/x86_64-linux-gnu), /usr/share, Go toolchain
# ($(go env GOROOT)), /usr/bin and /usr/lib/gcc added to the store (and
# deleted from it at the end unless they were there before), packed into
# one layer by `nixery pack` under GNU time. TREES (directories, space-
# separated) packs others instead.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup memory.sh go nix-store tar time
. scripts/nix-config.sh
work=$(mktemp -d)
trap 'store_delete "$work/store"; rm -rf "$work"' EXIT
store_snapshot "$work/store"
go build -o "$work/nixery" ./cmd/nixery
trees=(/usr/lib/x86_64-linux-gnu /usr/share "$(go env GOROOT)" /usr/bin /usr/lib/gcc)
[ -z "${TREES:-}" ] || read -r -a trees <<<"$TREES"
mapfile -t paths < <(nix-store --add "${trees[@]}")
store_added "$work/store" "${paths[@]}"
[ ${#paths[@]} = ${#trees[@]} ] || { echo "memory.sh: nix-store --add ${trees[*]} failed" >&2; exit 1; }
rel=()
for p in "${paths[@]}"; do rel+=("${p#/}"); done
bytes=$(tar -C / -cf - "${rel[@]}" | wc -c)
/usr/bin/time -f '%M %e' -o "$work/time" "$work/nixery" pack --output "$work/blob" "${paths[@]}" >/dev/null
read -r kib secs < "$work/time"
echo "packed $((bytes / 1000000)) MB of tar in ${secs}s; peak resident memory $((kib / 1024)) MiB"
