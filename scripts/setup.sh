#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Installs what the tests and the example need on a fresh Debian 12 machine
# (run as root): Nix, a registry server, image clients (skopeo, umoci,
# podman, buildah, oras), bsdtar (libarchive-tools) to read layers, chattr (e2fsprogs)
# for read-only directories, and a second Nix
# (Debian trixie's, in a chroot: scripts/trixie-nix.sh). Safe to run again.
# It leaves /etc/nix/nix.conf alone: the scripts and tests give Nix their
# settings through NIX_CONFIG (scripts/nix-config.sh).
#
#   setup.sh               everything the tests need
#   setup.sh --no-trixie   the same without the trixie chroot (test.sh
#                          makes it in the background)
#   setup.sh --example     only what scripts/example.sh needs: Nix, the
#                          registry, skopeo, podman, and the host programs
#                          the stand-in nixpkgs copies
#   setup.sh --bench       what the bench/ scripts need: the --example set
#                          and git, curl, bc, pigz, zstd, GNU time and
#                          debootstrap
set -euo pipefail
mode=${1:-}

packages=(docker-registry skopeo podman runc busybox-static patchelf hello jq)
if [ "$mode" = --bench ]; then
  packages+=(git curl bc pigz zstd time debootstrap)
elif [ "$mode" != --example ]; then
  packages+=(umoci buildah libarchive-tools pigz apache2-utils shellcheck bc debootstrap debian-archive-keyring util-linux e2fsprogs time systemd)
fi
# Debian's Nix is ours to configure; a Nix installed another way
# (install-nix-action on GitHub runners) is kept, first on PATH, with its
# configuration. Debian's nix-bin is installed either way (without the
# daemon it recommends, when another Nix has one): the fresh-store e2e test
# runs it, single-user, on an empty /nix, which a Nix that lives in /nix
# cannot do.
own_nix=false
if ! command -v nix >/dev/null 2>&1 || dpkg-query -W -f='${Status}' nix-bin 2>/dev/null | grep -q 'install ok installed'; then
  packages+=(nix-bin)
  own_nix=true
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
nix_bin_alone=false
if [ "$own_nix" = false ] && ! dpkg-query -W -f='${Status}' nix-bin 2>/dev/null | grep -q 'install ok installed'; then
  nix_bin_alone=true
fi
if [ ${#missing[@]} -gt 0 ] || [ "$nix_bin_alone" = true ]; then
  echo "setup: installing ${missing[*]}$([ "$nix_bin_alone" = true ] && echo ' nix-bin')" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  [ ${#missing[@]} -eq 0 ] || apt-get install -y -q "${missing[@]}" >/dev/null
  [ "$nix_bin_alone" = false ] || apt-get install -y -q --no-install-recommends nix-bin >/dev/null
fi

# The example and the benchmarks need nothing more than that.
if [ "$mode" = --example ] || [ "$mode" = --bench ]; then
  systemctl disable --now docker-registry >/dev/null 2>&1 || true
  if [ "$own_nix" = true ]; then
    . "$(dirname "$0")/nix-config.sh"
    nix-store --init
  fi
  exit 0
fi

# The SBOM tests validate with the CycloneDX project's own JavaScript
# library; the machine's Node.js is used, Debian's where there is none.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "setup: installing nodejs npm" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q nodejs npm >/dev/null
fi
validator="$(dirname "$0")/../tools/cdxvalidate"
if [ ! -d "$validator/node_modules/@cyclonedx/cyclonedx-library" ]; then
  echo "setup: installing the CycloneDX validator (npm ci in tools/cdxvalidate)" >&2
  (cd "$validator" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# The SBOM tests fetch the SBOM with oras (ORAS, a client we did not
# write), as the README shows; Debian 12 has no package, so it is built
# from its module, pinned, with the Go the tests use.
oras_version=1.3.6
if ! oras version 2>/dev/null | grep -q "^Version: *$oras_version\$"; then
  echo "setup: installing oras $oras_version (go install)" >&2
  GOBIN=/usr/local/bin GOFLAGS=-mod=mod go install "oras.land/oras/cmd/oras@v$oras_version"
fi

# The Debian registry package starts a service on :5000; the tests start
# their own on free ports, so it is not needed.
systemctl disable --now docker-registry >/dev/null 2>&1 || true

# The e2e tests run the build on Debian trixie's Nix 2.26 too, in a chroot
# cached here (about 500 MB, made once; minutes on a new machine, so
# scripts/test.sh makes it with --no-trixie in the background instead).
if [ "$mode" != --no-trixie ]; then
  "$(dirname "$0")/trixie-nix.sh" "${NIXERY_TRIXIE_DIR:-/var/cache/nixery-action/trixie}" >/dev/null
fi

# A never-used store is set up by the first Nix command, and concurrent
# first commands corrupt it; the test packages start Nix concurrently, so
# one command runs alone first.
if [ "$own_nix" = true ]; then
  . "$(dirname "$0")/nix-config.sh"
  nix-store --init
fi
