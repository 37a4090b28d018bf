#!/usr/bin/env bash
# The main job on the built-in example: builds an image of `shell hello`
# for linux/amd64 and linux/arm64 from the stand-in nixpkgs in
# testdata/nixpkgs, pushes it to a registry this script starts on
# loopback, reads it back with skopeo and runs it with podman.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

work=$(mktemp -d)
cleanup() {
  [ -n "${registry_pid:-}" ] && kill "$registry_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/nixery" ./cmd/action

# A free loopback port: one nothing answers on.
while :; do
  port=$((20000 + RANDOM % 40000))
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
done
cat > "$work/registry.yml" <<CONF
version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: $work/registry}
http: {addr: 127.0.0.1:$port}
CONF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done

image=127.0.0.1:$port/example/hello
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
