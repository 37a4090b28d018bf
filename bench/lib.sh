# shellcheck shell=bash
# Sourced by the bench/ scripts, from the repository's root.

# bench_setup NAME TOOL... stops with one line naming any TOOL missing,
# after installing what the benchmarks need (scripts/setup.sh --bench)
# when one is: setup.sh's work (package queries, nix-store --init) is
# not repeated on every run. "time" stands for GNU time at /usr/bin/time.
bench_setup() {
  local name=$1 missing
  shift
  missing=$(bench_missing "$@")
  if [ -n "$missing" ]; then
    ./scripts/setup.sh --bench >/dev/null
    missing=$(bench_missing "$@")
  fi
  if [ -n "$missing" ]; then
    echo "$name: missing$missing: install them (./scripts/setup.sh --bench does on Debian)" >&2
    exit 1
  fi
}

# bench_missing TOOL... prints " TOOL" for each TOOL not found.
bench_missing() {
  local tool
  for tool in "$@"; do
    if [ "$tool" = time ]; then
      /usr/bin/time -f %M true >/dev/null 2>&1 || printf ' %s' "GNU time (/usr/bin/time)"
    else
      command -v "$tool" >/dev/null 2>&1 || printf ' %s' "$tool"
    fi
  done
}

# Timing, for scripts that set $work (their temporary directory).
now() { date +%s.%N; }

# timed [--rss FILE] COMMAND... runs the command, its stdout to
# $work/out and stderr to $work/err, and prints the seconds it took;
# with --rss, under GNU time, which writes its peak resident memory (KiB)
# to FILE. A command that fails prints its stderr and stops the script
# (each call is an assignment of its own: set -e does not see into
# $(min ... "$(timed ...)")).
timed() {
  local t0 t1 rc=0 wrap=() dir=${work:?timed needs work, a temporary directory}
  if [ "$1" = --rss ]; then
    wrap=(/usr/bin/time -f %M -o "$2")
    shift 2
  fi
  t0=$(now)
  "${wrap[@]}" "$@" >"$dir/out" 2>"$dir/err" || rc=$?
  t1=$(now)
  if [ "$rc" != 0 ]; then
    cat "$dir/err" >&2
    echo "${0##*/}: failed (exit $rc): $*" >&2
    return 1
  fi
  echo "$t1 - $t0" | bc -l
}

# min A B is the smaller of two numbers, B when A is empty.
min() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc -l)" = 1 ]; then echo "$2"; else echo "$1"; fi; }

# The store paths a script adds stay on the machine unless it deletes them:
# store_snapshot FILE lists what the store holds now, store_added FILE
# PATH... keeps the PATHs not in it in FILE.added, and store_delete FILE
# deletes those (only those: what else is new may be another process's).
store_snapshot() { ls /nix/store >"$1"; }
store_added() {
  local snapshot=$1 p
  shift
  for p in "$@"; do
    grep -qxF "${p#/nix/store/}" "$snapshot" || echo "$p" >>"$snapshot.added"
  done
}
store_delete() {
  local added=$1.added p others
  [ -f "$added" ] || return 0
  # Outputs before the derivations that made them (a derivation is alive
  # while its output is); one at a time, so that a path another process
  # holds on to stays without stopping the others. A path that others
  # refer to stays too: Nix would delete them with it.
  { grep -v '\.drv$' "$added" || true; grep '\.drv$' "$added" || true; } | while read -r p; do
    [ -e "$p" ] || continue
    others=$(nix-store -q --referrers "$p" | grep -vxF -f "$added" || true)
    if [ -n "$others" ] || ! nix-store --delete "$p" >/dev/null 2>&1; then
      echo "note: kept $p: still in use (referenced or rooted); nix-store --delete it later" >&2
    fi
  done
}
