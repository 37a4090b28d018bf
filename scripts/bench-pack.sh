#!/usr/bin/env bash
# Packing speed, measured in one run against two baselines on the same
# store paths: this machine's Go toolchain and /usr/bin, added to the Nix
# store (several hundred MB). Prints MB/s of the uncompressed tar for
#   - nixery pack (pkg/archive: tar + pgzip, hashed in one pass),
#   - the seed's packer: archive/tar into single-threaded compress/gzip at
#     its default level (internal/packbench),
#   - tar | pigz at pigz's default level,
# with sizes and ratios, and fails unless nixery pack is at least 5 times
# as fast as the seed's packer with output at most 10% larger.
set -euo pipefail
cd "$(dirname "$0")/.."

export NIX_CONFIG=${NIX_CONFIG:-"experimental-features = nix-command flakes
sandbox = false
build-users-group =
substituters ="}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

paths=$(nix-store --add /usr/local/go /usr/bin | tr '\n' ' ')
go build -o "$work/nixery" ./cmd/action
go build -o "$work/packbench" ./internal/packbench

# Warm the page cache so every packer reads from memory.
find $paths -type f -exec cat {} + >/dev/null 2>&1 || true
tar_bytes=$(tar -C / -cf - $(for p in $paths; do echo "${p#/}"; done) | wc -c)

now() { date +%s.%N; }
best_of_two() { # command... → fastest seconds
  local best=""
  for _ in 1 2; do
    local t0 t1 s
    t0=$(now); "$@" >/dev/null; t1=$(now)
    s=$(echo "$t1 - $t0" | bc -l)
    if [ -z "$best" ] || [ "$(echo "$s < $best" | bc -l)" = 1 ]; then best=$s; fi
  done
  echo "$best"
}

nixery_s=$(best_of_two "$work/nixery" pack --output "$work/nixery.gz" $paths)
nixery_size=$(stat -c %s "$work/nixery.gz")
seed_json=$("$work/packbench" -packer seed -output "$work/seed.gz" $paths)
seed_s=$(echo "$seed_json" | jq .seconds)
seed_size=$(stat -c %s "$work/seed.gz")
pigz_s=$(best_of_two sh -c "tar -C / -cf - $(for p in $paths; do printf '%s ' "${p#/}"; done) | pigz > '$work/pigz.gz'")
pigz_size=$(stat -c %s "$work/pigz.gz")

mbs() { echo "scale=1; $tar_bytes / 1000000 / $1" | bc -l; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }
printf 'store paths: %s\ntar: %d MB, %d CPUs\n\n' "$paths" $((tar_bytes / 1000000)) "$(nproc)"
printf '%-28s %8s %10s %12s %14s\n' packer seconds MB/s "size MB" "vs seed packer"
printf '%-28s %8.2f %10s %12.1f %14s\n' "nixery pack (level default)" "$nixery_s" "$(mbs "$nixery_s")" "$(echo "$nixery_size / 1000000" | bc -l)" "$(ratio "$seed_s" "$nixery_s")x faster"
printf '%-28s %8.2f %10s %12.1f %14s\n' "seed: tar + compress/gzip" "$seed_s" "$(mbs "$seed_s")" "$(echo "$seed_size / 1000000" | bc -l)" "1.00"
printf '%-28s %8.2f %10s %12.1f %14s\n' "tar | pigz" "$pigz_s" "$(mbs "$pigz_s")" "$(echo "$pigz_size / 1000000" | bc -l)" "$(ratio "$seed_s" "$pigz_s")x faster"
printf '\nnixery pack output / seed output: %s\n' "$(ratio "$nixery_size" "$seed_size")"

speedup_ok=$(echo "$seed_s / $nixery_s >= 5" | bc -l)
size_ok=$(echo "$nixery_size <= $seed_size * 1.10" | bc -l)
if [ "$speedup_ok" != 1 ] || [ "$size_ok" != 1 ]; then
  echo "FAIL: nixery pack must be at least 5x the seed's packer with output at most 10% larger" >&2
  exit 1
fi
echo "OK: at least 5x the seed's packer, output within 10% of its size"
