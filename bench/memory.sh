#!/usr/bin/env bash
# Peak memory of packing a closure of about 2.5 GB: this machine's
# libraries, JVM, LLVM, Go toolchain and /usr/bin added to the store, packed
# into one layer by `nixery pack` under GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/nix-config.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/nixery" ./cmd/nixery
paths=$(nix-store --add /usr/lib/x86_64-linux-gnu /usr/lib/jvm /usr/lib/llvm-14 /usr/local/go /usr/bin | tr '\n' ' ')
bytes=$(tar -C / -cf - $(for p in $paths; do echo "${p#/}"; done) | wc -c)
/usr/bin/time -f '%M %e' -o "$work/time" "$work/nixery" pack --output "$work/blob" $paths >/dev/null
read -r kib secs < "$work/time"
echo "packed $((bytes / 1000000)) MB of tar in ${secs}s; peak resident memory $((kib / 1024)) MiB"
