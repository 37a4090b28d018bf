#!/usr/bin/env bash
# Packing speed, measured in one run against baselines on the same store
# paths: this machine's Go toolchain and /usr/bin, added to the Nix store
# (several hundred MB; deleted again at the end unless they were there
# before). For each packer it prints the seconds (the fastest
# of REPEAT rounds, default 3), MB/s of the uncompressed tar, the output size
# and the speed relative to the seed's packer:
#   - pkg/archive (reproducible tar + pgzip, hashed in one pass), timed
#     inside bench/packbench -packer nixery as the seed's and pgzip's
#     packers are: this row's ratio is the packing speed against the seed,
#   - the nixery pack command, timed from outside: the same packing plus
#     the process's start and the fsync of its output file, which
#     the other packers do not do,
#   - the seed's packer: archive/tar into single-threaded compress/gzip at
#     its default level (bench/packbench -packer seed),
#   - a plain tar into pgzip at nixery's level (bench/packbench -packer pgzip),
#   - tar | pigz at pigz's default level,
#   - nixery pack --compression zstd:L for each L of ZSTD_LEVELS (default
#     "1 3 7": the encoder's fastest, default and better speeds), and
#     tar | zstd -3 -T$(nproc) for reference.
# Then it times decompressing each blob (what a pull pays; the fastest of
# REPEAT, from memory, in Go as the clients do: gzip with compress/gzip and
# with pgzip's reader, zstd with klauspost/compress) and prints zstd
# against nixery's gzip, all measured in this one run: speed, bytes and
# decompression time as ratios.
# It fails unless pkg/archive is at least 5 times as fast as the seed's
# packer with output at most 10% larger, and gives the same blob each run
# (gzip, and zstd at every level).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup pack.sh go nix-store jq bc tar gzip pigz zstd

. scripts/nix-config.sh
repeat=${REPEAT:-3}
work=$(mktemp -d)
# The trees added to the store here go again at the end (those that were
# there before stay).
trap 'store_delete "$work/store"; rm -rf "$work"' EXIT
store_snapshot "$work/store"

# Content-addressed: adding the same trees again gives the same paths.
mapfile -t paths < <(nix-store --add "$(go env GOROOT)" /usr/bin)
store_added "$work/store" "${paths[@]}"
[ ${#paths[@]} = 2 ] || { echo "pack.sh: nix-store --add of $(go env GOROOT) and /usr/bin failed" >&2; exit 1; }
go build -o "$work/nixery" ./cmd/nixery
go build -o "$work/packbench" ./bench/packbench

# Warm the page cache so every packer reads from memory.
find "${paths[@]}" -type f -exec cat {} + >/dev/null 2>&1 || true

rel=()
for p in "${paths[@]}"; do rel+=("${p#/}"); done
# Rounds of one run of each packer, so that load from elsewhere on the
# machine falls on all of them alike; each packer's fastest run counts.
nixery_s="" lib_s="" seed_s="" pgzip_s="" pigz_s="" zstdcli_s=""
read -r -a zlevels <<<"${ZSTD_LEVELS:-1 3 7}"
declare -A zstd_s
for ((i = 1; i <= repeat; i++)); do
  for l in "${zlevels[@]}"; do
    t=$(timed "$work/nixery" pack --compression "zstd:$l" --output "$work/nixery-$l.zst" "${paths[@]}")
    zstd_s[$l]=$(min "${zstd_s[$l]:-}" "$t")
    jq -r .digest "$work/out" >>"$work/zstd-digests-$l"
  done
  # shellcheck disable=SC2016 # expanded by the inner shell
  t=$(timed bash -c 'set -o pipefail; tar -C / -cf - "$@" | zstd -q -3 -T"$(nproc)" -c >"$0"' "$work/cli.zst" "${rel[@]}")
  zstdcli_s=$(min "$zstdcli_s" "$t")
  t=$(timed "$work/nixery" pack --output "$work/nixery.gz" "${paths[@]}")
  nixery_s=$(min "$nixery_s" "$t")
  jq -r .digest "$work/out" >>"$work/digests"
  lib=$("$work/packbench" -packer nixery -output "$work/lib.gz" "${paths[@]}")
  lib_s=$(min "$lib_s" "$(jq .seconds <<<"$lib")")
  seed=$("$work/packbench" -packer seed -output "$work/seed.gz" "${paths[@]}")
  seed_s=$(min "$seed_s" "$(jq .seconds <<<"$seed")")
  # Without -level, packbench uses nixery's default level.
  pgzip=$("$work/packbench" -packer pgzip -output "$work/pgzip.gz" "${paths[@]}")
  pgzip_s=$(min "$pgzip_s" "$(jq .seconds <<<"$pgzip")")
  # shellcheck disable=SC2016 # expanded by the inner shell
  t=$(timed bash -c 'set -o pipefail; tar -C / -cf - "$@" | pigz >"$0"' "$work/pigz.gz" "${rel[@]}")
  pigz_s=$(min "$pigz_s" "$t")
done
level=$(jq .level <<<"$pgzip")
nixery_size=$(stat -c %s "$work/nixery.gz")
tar_bytes=$(gzip -dc "$work/nixery.gz" | wc -c)
seed_size=$(jq .size <<<"$seed")
pgzip_size=$(jq .size <<<"$pgzip")
pigz_size=$(stat -c %s "$work/pigz.gz")

row() { # name seconds size
  printf '%-40s %8.2f %8.1f %9.1f %9.2fx\n' "$1" "$2" \
    "$(echo "$tar_bytes / 1000000 / $2" | bc -l)" "$(echo "$3 / 1000000" | bc -l)" "$(echo "$seed_s / $2" | bc -l)"
}
echo "store paths: ${paths[*]}"
printf 'tar: %d MB; %d CPUs; fastest of %d rounds\n\n' $((tar_bytes / 1000000)) "$(nproc)" "$repeat"
printf '%-40s %8s %8s %9s %10s\n' packer seconds MB/s "size MB" "vs seed"
row "pkg/archive (level $level)" "$lib_s" "$nixery_size"
row "nixery pack command (+ start, fsync)" "$nixery_s" "$nixery_size"
row "seed: tar + compress/gzip, one thread" "$seed_s" "$seed_size"
row "plain tar + pgzip (level $level)" "$pgzip_s" "$pgzip_size"
row "tar | pigz (level 6, $(nproc) threads)" "$pigz_s" "$pigz_size"
speedup=$(echo "$seed_s / $lib_s" | bc -l)
size_ratio=$(echo "$nixery_size / $seed_size" | bc -l)
printf '\npkg/archive: %.2fx as fast as the seed packer, output %.3f times its size\n' "$speedup" "$size_ratio"

# zstd against nixery's gzip, all from this run.
dec() { # decoder file: the fastest decompression of REPEAT, seconds
  "$work/packbench" -decompress "$1" -repeat "$repeat" "$2" | jq .seconds
}
gunzip_s=$(dec gzip "$work/nixery.gz")
unpgzip_s=$(dec pgzip "$work/nixery.gz")
gz_dec=$(min "$gunzip_s" "$unpgzip_s")
printf '\nzstd against nixery pack (gzip level %s): %s; decompression against the faster gzip reader\n' "$level" "$(nproc) CPUs"
printf '%-34s %8s %8s %9s %8s %8s %9s %8s\n' blob "pack s" MB/s "size MB" speed bytes "unpack s" unpack
zrow() { # name pack-seconds size decompress-seconds
  printf '%-34s %8.2f %8.1f %9.1f %7.2fx %7.3fx %9.2f %7.2fx\n' "$1" "$2" \
    "$(echo "$tar_bytes / 1000000 / $2" | bc -l)" "$(echo "$3 / 1000000" | bc -l)" \
    "$(echo "$nixery_s / $2" | bc -l)" "$(echo "$3 / $nixery_size" | bc -l)" "$4" "$(echo "$gz_dec / $4" | bc -l)"
}
zrow "gzip:$level (compress/gzip reader)" "$nixery_s" "$nixery_size" "$gunzip_s"
zrow "gzip:$level (pgzip reader)" "$nixery_s" "$nixery_size" "$unpgzip_s"
for l in "${zlevels[@]}"; do
  zrow "zstd:$l" "${zstd_s[$l]}" "$(stat -c %s "$work/nixery-$l.zst")" "$(dec zstd "$work/nixery-$l.zst")"
  if [ "$(sort -u "$work/zstd-digests-$l" | wc -l)" != 1 ]; then
    echo "FAIL: nixery pack --compression zstd:$l gave different blobs for the same paths" >&2
    exit 1
  fi
done
zrow "tar | zstd -3 -T$(nproc) (reference)" "$zstdcli_s" "$(stat -c %s "$work/cli.zst")" "$(dec zstd "$work/cli.zst")"
echo "(speed: pack MB/s over gzip's; bytes: size over gzip's; unpack: gzip's decompression time over this one's)"
echo "goal for zstd's default (3): speed >= 1, bytes <= 0.90, unpack >= 2; the same blob every round at every level"

digests=$(sort -u "$work/digests")
if [ "$(wc -l <<<"$digests")" != 1 ]; then
  echo "FAIL: nixery pack gave different blobs for the same paths: $digests" >&2
  exit 1
fi
if ! cmp -s "$work/lib.gz" "$work/nixery.gz"; then
  echo "FAIL: pkg/archive in packbench and the nixery pack command gave different blobs" >&2
  exit 1
fi
if [ "$(echo "$speedup >= 5" | bc -l)" != 1 ] || [ "$(echo "$size_ratio <= 1.10" | bc -l)" != 1 ]; then
  echo "FAIL: pkg/archive must be at least 5x as fast as the seed's packer with output at most 10% larger" >&2
  exit 1
fi
echo "OK: at least 5x the seed's packer, output within 10% of its size, the same blob every run ($digests)"

