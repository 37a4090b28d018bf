#!/usr/bin/env bash
# Wall time and peak memory of `nixery layers` on dense synthetic closures
# of 10,000, 30,000 and 100,000 paths (internal/closuregen, seed 13; the
# CLI computes the closure sizes), 3 runs each: the fastest run's time
# against issue 25's goals (0.5 s, 2 s and 10 s) and the largest peak
# resident memory of the runs.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup plan.sh go bc time
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/nixery" ./cmd/nixery
go build -o "$dir/closuregen" ./bench/closuregen
printf '%-8s %8s %10s %8s %s\n' paths "wall s" "peak MiB" "goal s" ""
for spec in 10000:0.5 30000:2 100000:10; do
  n=${spec%%:*} goal=${spec#*:}
  "$dir/closuregen" -n "$n" > "$dir/closure.json"
  best='' mem=0
  for _ in 1 2 3; do
    if ! /usr/bin/time -f '%e %M' -o "$dir/time" "$dir/nixery" layers --closure "$dir/closure.json" >/dev/null 2>"$dir/err"; then
      cat "$dir/err" >&2
      echo "plan.sh: nixery layers failed on the closure of $n paths" >&2
      exit 1
    fi
    read -r s kb < "$dir/time"
    if [ -z "$best" ] || [ "$(echo "$s < $best" | bc)" = 1 ]; then best=$s; fi
    if [ "$kb" -gt "$mem" ]; then mem=$kb; fi
  done
  ok=met; [ "$(echo "$best <= $goal" | bc)" = 1 ] || ok="NOT met"
  printf '%-8s %8s %10d %8s %s\n' "$n" "$best" "$((mem / 1024))" "$goal" "$ok"
done
