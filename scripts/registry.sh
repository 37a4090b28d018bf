# shellcheck shell=bash
# Sourced by scripts: start_registry DIR starts Debian's docker-registry on
# a free loopback port with its storage under DIR, waits until it answers,
# and sets registry (127.0.0.1:PORT) and registry_pid.
start_registry() {
  local dir=$1 port
  while :; do # a port nothing answers on
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
  done
  cat > "$dir/registry.yml" <<CONF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $dir/registry}}
http: {addr: 127.0.0.1:$port}
CONF
  docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
  registry_pid=$!
  registry=127.0.0.1:$port
  for _ in $(seq 50); do
    # Ours, still running: another registry that took the port first
    # would answer too.
    kill -0 "$registry_pid" 2>/dev/null || break
    curl -fs "http://$registry/v2/" >/dev/null && kill -0 "$registry_pid" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "docker-registry did not start: $(cat "$dir/registry.log")" >&2
  return 1
}
