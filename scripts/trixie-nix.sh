#!/usr/bin/env bash
# A second, current Nix for the tests: Debian trixie's nix-bin (2.26) in a
# debootstrap chroot, made from the Debian mirror apt already uses.
#
#   trixie-nix.sh DIR
#       create the chroot in DIR unless it is already there (about a
#       minute and 500 MB the first time), then print its nix --version
#   trixie-nix.sh DIR run [-b HOSTDIR:DIR_IN_CHROOT]... -- [VAR=VALUE]... CMD [ARG]...
#       run CMD in the chroot with only the given variables (plus HOME and
#       PATH), with /proc, /dev and the -b directories mounted
#
# The mounts are made in a mount namespace of the command's own (unshare),
# so they vanish with it however it ends, even when killed: nothing stays
# mounted under DIR on the host, and DIR can always be removed with rm -rf.
# Binding an empty directory on /nix gives the command a fresh store.
# Needs root.
set -euo pipefail

# Everything the stand-in nixpkgs (testdata/nixpkgs) copies from the host
# it builds on, and what Nix needs to fetch: bump the version to rebuild.
packages=(nix-bin git ca-certificates netbase hello jq patchelf busybox-static)
version="1 ${packages[*]}"

usage() { echo "usage: $0 DIR [run [-b HOSTDIR:CHROOTDIR]... -- [VAR=VALUE]... CMD...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
dir=$1
shift
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
dir=${dir%/}
[ "$(id -u)" = 0 ] || { echo "$0: needs root (debootstrap, chroot, mount)" >&2; exit 1; }

# Refuses to touch a tree with something mounted inside (left by hand).
check_unmounted() {
  if findmnt -rn -o TARGET | grep -q "^$1/"; then
    echo "$0: something is mounted under $1; unmount it first (umount -R)" >&2
    exit 1
  fi
}

create() {
  if [ -f "$dir/.nixery-trixie" ] && [ "$(cat "$dir/.nixery-trixie")" = "$version" ]; then
    return
  fi
  # One run makes the chroot at a time: another (a second test.sh, or
  # setup.sh) waits for it, then finds it made.
  mkdir -p "$(dirname "$dir")"
  exec 9>"$dir.lock"
  flock 9
  if [ -f "$dir/.nixery-trixie" ] && [ "$(cat "$dir/.nixery-trixie")" = "$version" ]; then
    return
  fi
  for tool in debootstrap unshare findmnt; do
    command -v "$tool" >/dev/null || { echo "$0: $tool is missing: run scripts/setup.sh" >&2; exit 1; }
  done
  local mirror
  mirror=$(sed -n 's/^URIs: //p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  if [ -z "$mirror" ]; then
    mirror=$(awk '$1 == "deb" && $2 ~ /debian\/?$/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
  fi
  mirror=${mirror:-http://deb.debian.org/debian}
  # Built beside DIR and moved into place when complete, so that an
  # interrupted run never leaves a half-made chroot that looks ready.
  local tmp=$dir.new
  check_unmounted "$tmp"
  rm -rf "$tmp"
  mkdir -p "$(dirname "$dir")"
  echo "trixie-nix: debootstrap trixie from $mirror into $dir" >&2
  local keyring=()
  [ ! -f /usr/share/keyrings/debian-archive-keyring.gpg ] ||
    keyring=(--keyring=/usr/share/keyrings/debian-archive-keyring.gpg) # Ubuntu's default is its own
  debootstrap "${keyring[@]}" --variant=minbase trixie "$tmp" "$mirror" >"$tmp.log" 2>&1 ||
    { echo "$0: debootstrap failed; see $tmp.log" >&2; exit 1; }
  # shellcheck disable=SC2016 # expanded by the inner shell
  unshare --mount --propagation private -- sh -ec '
    mount -t proc proc "$1/proc"
    mount --rbind /dev "$1/dev"
    shift
    chroot "$0" env -i DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin \
      apt-get install -y -q --no-install-recommends "$@"
  ' "$tmp" "$tmp" "${packages[@]}" >>"$tmp.log" 2>&1 ||
    { echo "$0: installing ${packages[*]} in the chroot failed; see $tmp.log" >&2; exit 1; }
  chroot "$tmp" apt-get clean
  echo "$version" >"$tmp/.nixery-trixie"
  check_unmounted "$dir"
  rm -rf "$dir" "$tmp.log"
  mv "$tmp" "$dir"
}

run() {
  [ -f "$dir/.nixery-trixie" ] || { echo "$0: no chroot in $dir: run $0 $dir first" >&2; exit 1; }
  local binds=()
  while [ $# -gt 0 ]; do
    case $1 in
      -b) [ $# -ge 2 ] || usage; binds+=("$2"); shift 2 ;;
      --) shift; break ;;
      *) usage ;;
    esac
  done
  [ $# -ge 1 ] || usage
  local b
  for b in "${binds[@]}"; do
    case $b in /*:/*) ;; *) echo "$0: -b wants HOSTDIR:CHROOTDIR, both absolute: $b" >&2; exit 2 ;; esac
    [ -d "${b%%:*}" ] || { echo "$0: -b $b: ${b%%:*} is not a directory" >&2; exit 2; }
  done
  # shellcheck disable=SC2016 # expanded by the inner shell
  exec unshare --mount --propagation private -- bash -ec '
    dir=$1; shift
    mount -t proc proc "$dir/proc"
    mount --rbind /dev "$dir/dev"
    while [ "$1" != -- ]; do
      mkdir -p "$dir${1#*:}"
      mount --bind "${1%%:*}" "$dir${1#*:}"
      shift
    done
    shift
    exec chroot "$dir" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin "$@"
  ' bash "$dir" "${binds[@]}" -- "$@"
}

if [ $# -eq 0 ]; then
  create
  "$0" "$dir" run -- nix --version
  exit
fi
[ "$1" = run ] || usage
shift
run "$@"
