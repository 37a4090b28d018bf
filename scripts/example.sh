#!/usr/bin/env bash
# The main job on the built-in example: builds an image of `shell hello`
# for linux/amd64 and linux/arm64 from the stand-in nixpkgs in
# testdata/nixpkgs, pushes it to a registry this script starts on
# loopback, reads it back with skopeo and runs it with podman.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/nix-config.sh

work=$(mktemp -d)
cleanup() {
  if [ -n "${registry_pid:-}" ]; then kill "$registry_pid" 2>/dev/null || true; fi
  if [ -n "${build_pid:-}" ]; then kill "$build_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Compiling (CPU) and installing packages (network, disk) overlap: on a
# new machine each takes about half a minute.
go build -o "$work/nixery" ./cmd/nixery &
build_pid=$!
./scripts/setup.sh --example
wait "$build_pid"
build_pid=

. scripts/registry.sh
start_registry "$work"

image=$registry/example/hello
echo "==> nixery build (two platforms) into $image"
"$work/nixery" build --nixpkgs "path:$PWD/testdata/nixpkgs" \
  --platforms linux/amd64,linux/arm64 --image "$image" --tags v1 shell hello

echo "==> the index, as skopeo reads it"
skopeo inspect --tls-verify=false --raw "docker://$image:v1" | jq .

echo "==> podman run $image:v1 hello"
podman_dir="$work/podman"
podman --root "$podman_dir/root" --runroot "$podman_dir/run" --runtime /usr/sbin/runc \
  --cgroup-manager=cgroupfs --storage-driver=vfs --events-backend=none \
  run --quiet --rm --tls-verify=false --network=none --ulimit nofile=20000:20000 --ulimit nproc=1000:1000 \
  "$image:v1" hello
podman --root "$podman_dir/root" --runroot "$podman_dir/run" --storage-driver=vfs system reset --force >/dev/null 2>&1 || true
