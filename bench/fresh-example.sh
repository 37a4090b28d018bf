#!/usr/bin/env bash
# How long does ./scripts/example.sh take on a fresh machine? Makes one
# out of Debian 12 in a chroot: debootstrap's minbase with git, ca-
# certificates and gcc (with libc6-dev), this machine's Go toolchain copied to
# /usr/local/go and its local CA certificates (what a new machine of this
# kind starts with), empty apt lists, an empty Go module and build cache,
# and a clone of HEAD. Then it times example.sh there ROUNDS times
# (default 3), each in a new copy of that chroot, apt installs, module
# downloads and compiling included, and prints the seconds of each round.
# With --parts it also times setup.sh --example, go build and the example
# one after the other.
#
# Run as root, with network access to Debian's mirror and the Go module
# proxy. Everything lives in a temporary directory, unmounted and removed
# at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "fresh-example: run as root (debootstrap, chroot, mounts)" >&2; exit 1; }
. bench/lib.sh
bench_setup fresh-example debootstrap git go

rounds=${ROUNDS:-3}
parts=false
[ "${1:-}" = --parts ] && parts=true
mirror=${MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d)
root=$work/root
unmount() {
  # Deepest first; --bind of the root last.
  for m in proc sys dev; do
    mountpoint -q "$root/$m" 2>/dev/null && umount -R "$root/$m"
  done
  if mountpoint -q "$root" 2>/dev/null; then umount "$root"; fi
  return 0
}
# still_mounted lists what is mounted under $work: never delete through
# a bind mount of /dev or /sys.
still_mounted() { awk -v w="$work" 'index($2, w) == 1 { print $2 }' /proc/mounts; }
cleanup() {
  unmount || true
  if [ -n "$(still_mounted)" ]; then
    echo "fresh-example: still mounted, left in place: $(still_mounted | tr '\n' ' ')" >&2
    return
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "fresh-example: making the Debian 12 base in $work (not timed)" >&2
debootstrap --variant=minbase --include=ca-certificates,git,gcc,libc6-dev bookworm "$work/base" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -20 "$work/debootstrap.log" >&2; exit 1; }
cp -a "$(go env GOROOT)" "$work/base/usr/local/go"
cp /etc/apt/sources.list.d/*.sources "$work/base/etc/apt/sources.list.d/" 2>/dev/null || true
cp /etc/apt/sources.list "$work/base/etc/apt/sources.list" 2>/dev/null || true
cp /etc/resolv.conf "$work/base/etc/resolv.conf"
cp -a /usr/local/share/ca-certificates/. "$work/base/usr/local/share/ca-certificates/"
chroot "$work/base" update-ca-certificates >/dev/null 2>&1
rm -rf "$work/base/var/lib/apt/lists/"* "$work/base/var/cache/apt/archives/"*.deb
mkdir -p "$work/base/work"
git clone -q . "$work/base/work/project"

# in_fresh COMMAND runs a shell command in a new copy of the base, as root
# with a login-like environment, and unmounts it afterwards.
in_fresh() {
  local rc=0
  [ -z "$(still_mounted)" ] || { echo "fresh-example: $root is still mounted" >&2; return 1; }
  rm -rf "$root"
  cp -a "$work/base" "$root"
  mount --bind "$root" "$root" # podman's layer applier needs / to be a mount point
  mount --make-private "$root"
  mount -t proc proc "$root/proc"
  mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys"
  mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"
  chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb GOFLAGS=-buildvcs=false \
    PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/bash -c "cd /work/project && $1" || rc=$?
  unmount
  return "$rc"
}

# Expanded in the chroot, not here.
# shellcheck disable=SC2016
timer='t() { local s; s=$(date +%s%N); "$@" >>/work/log 2>&1 || { echo "$* failed:"; tail -20 /work/log; exit 1; }; echo "$*: $(( ($(date +%s%N) - s) / 1000000 )) ms"; }'
for ((i = 1; i <= rounds; i++)); do
  sleep 10 # let the copy's writeback settle
  in_fresh "$timer; t ./scripts/example.sh"
done
if [ "$parts" = true ]; then
  sleep 10
  in_fresh "$timer; t ./scripts/setup.sh --example; t go build -o /tmp/nixery ./cmd/nixery; t ./scripts/example.sh"
fi
