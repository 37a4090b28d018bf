#!/usr/bin/env bash
# Installs what the tests and the example need on a fresh Debian 12 machine
# (run as root): Nix, a registry server, image clients, and Nix's offline
# single-user configuration. Safe to run again.
set -euo pipefail

packages=(docker-registry skopeo umoci podman runc busybox-static patchelf hello jq pigz apache2-utils shellcheck bc)
# Debian's Nix is ours to configure; a Nix installed another way
# (install-nix-action on GitHub runners) is kept, with its configuration.
own_nix=false
if ! command -v nix >/dev/null 2>&1 || dpkg-query -W -f='${Status}' nix-bin 2>/dev/null | grep -q 'install ok installed'; then
  packages+=(nix-bin)
  own_nix=true
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q "${missing[@]}" >/dev/null
fi

# The SBOM tests validate with the CycloneDX project's own JavaScript
# library; the machine's Node.js is used, Debian's where there is none.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "setup: installing nodejs npm" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q nodejs npm >/dev/null
fi
validator="$(dirname "$0")/../internal/cdxvalidate"
if [ ! -d "$validator/node_modules/@cyclonedx/cyclonedx-library" ]; then
  echo "setup: installing the CycloneDX validator (npm ci in internal/cdxvalidate)" >&2
  (cd "$validator" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# The Debian registry package starts a service on :5000; the tests start
# their own on free ports, so it is not needed.
systemctl disable --now docker-registry >/dev/null 2>&1 || true

# Tests set NIX_CONFIG themselves; this makes `nix` work the same way by
# hand on the machine (the README's commands).
if [ "$own_nix" = false ]; then
  exit 0
fi
mkdir -p /etc/nix
cat > /etc/nix/nix.conf <<'CONF'
experimental-features = nix-command flakes
sandbox = false
build-users-group =
substituters =
extra-platforms = aarch64-linux
CONF
