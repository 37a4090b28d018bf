#!/usr/bin/env bash
# Does packing overlap uploading? Builds an image of about 740 MB of store
# paths (this machine's Go toolchain, $(go env GOROOT), /usr/bin and
# /usr/lib/gcc, copied into the store by a throwaway flake; deleted from
# the store at the end unless they were there before) and pushes it through a proxy limited to RATE
# bytes/s (default 60 MB/s) in front of a local registry. In one run it
# measures, for this tree and for BASE (a git revision, default the last
# one before packing overlapped uploading):
#   pack    nixery build --push=false --no-cache (Nix, warm, and packing)
#   push    nixery build --no-cache into a new repository (Nix, packing
#           and uploading every byte through the proxy)
# and prints push / max(pack, bytes / RATE): 1.0 is perfect overlap, 2.0
# no overlap at all when packing and uploading take as long.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup overlap.sh go nix jq bc curl git docker-registry time
. scripts/registry.sh

export NIX_CONFIG="experimental-features = nix-command flakes
sandbox = false
build-users-group =
substituters ="
rate=${RATE:-60000000}
base=${BASE:-7110a18}
work=$(mktemp -d)
cleanup() {
  if [ -n "${proxy_pid:-}" ]; then kill "$proxy_pid" 2>/dev/null || true; fi
  if [ -n "${registry_pid:-}" ]; then kill "$registry_pid" 2>/dev/null || true; fi
  wait 2>/dev/null
  store_delete "$work/store"
  rm -rf "$work"
}
trap cleanup EXIT
store_snapshot "$work/store"
goroot=$(go env GOROOT)

# The packages: real directories copied into the store, four layers' worth.
mkdir -p "$work/flake"
cat >"$work/flake/flake.nix" <<'NIX'
{
  outputs = { self }: let
    goroot = "@GOROOT@";
    pkg = system: name: src: builtins.derivation {
      inherit name system;
      builder = "/bin/sh";
      args = [ "-c" "/bin/cp -r ${src} $out" ];
    };
    forSystem = system: {
      gosrc = pkg system "go-src" "${goroot}/src";
      gopkg = pkg system "go-pkg" "${goroot}/pkg";
      gorest = pkg system "go-rest" "${goroot}/bin";
      usrbin = pkg system "usr-bin" "/usr/bin";
      gcclib = pkg system "gcc-lib" "/usr/lib/gcc";
      cacert = pkg system "cacert" "/usr/share/ca-certificates";
      iana-etc = pkg system "iana-etc" "/etc/protocols";
    };
  in { legacyPackages.x86_64-linux = forSystem "x86_64-linux"; };
}
NIX
sed -i "s|@GOROOT@|$goroot|" "$work/flake/flake.nix"
flake=path:$work/flake
# What the builds put in the store, to delete at the end: the flake's
# source, the derivations (written by this evaluation) and their outputs.
mapfile -t made < <(nix eval --json "$flake#legacyPackages.x86_64-linux" \
  --apply 'ps: builtins.concatMap (p: [ p.outPath p.drvPath ]) (builtins.attrValues ps)' | jq -r '.[]')
store_added "$work/store" "${made[@]}" "$(nix flake metadata --json "$flake" | jq -r .path)"
[ ${#made[@]} -gt 0 ] || { echo "overlap.sh: cannot evaluate the packages' flake $flake" >&2; exit 1; }

go build -o "$work/nixery" ./cmd/nixery
go build -o "$work/throttleproxy" ./bench/throttleproxy
mkdir -p "$work/base"
git archive "$base" | tar -x -C "$work/base"
# Revisions before the CLI have only cmd/action.
base_main=./cmd/nixery
[ -d "$work/base/cmd/nixery" ] || base_main=./cmd/action
(cd "$work/base" && go build -o "$work/nixery-base" "$base_main")

mkdir -p "$work/reg"
start_registry "$work/reg"
while :; do # a port nothing answers on
  port=$((20000 + RANDOM % 40000))
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
done
"$work/throttleproxy" -listen "127.0.0.1:$port" -upstream "http://$registry" -rate "$rate" &
proxy_pid=$!
up=
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && { up=1; break; }; sleep 0.1; done
[ -n "$up" ] || { echo "the throttling proxy did not start on 127.0.0.1:$port" >&2; exit 1; }
proxied=127.0.0.1:$port

build=(build --nixpkgs "$flake" --no-default-packages --no-cache --layer-budget 8)
pkgs=(gosrc gopkg gorest usrbin gcclib)
# Warm Nix (the copies are made once) and the page cache.
"$work/nixery" "${build[@]}" --push=false --json "${pkgs[@]}" >"$work/warm.json"
bytes=$(jq '[.manifests[].layers[].size] | add' "$work/warm.json")
net=$(echo "$bytes / $rate" | bc -l)

declare -A pack push rss
# Interleaved rounds, so that load from elsewhere falls on both alike;
# each figure is the fastest of REPEAT rounds (default 3).
for ((i = 1; i <= ${REPEAT:-3}; i++)); do
  for bin in nixery-base nixery; do
    extra=()
    # SBOMs are new work the base does not do; leave them out of both.
    [ "$bin" = nixery ] && extra=(--sbom=false)
    # Each timed on a line of its own: set -e does not see a failure
    # inside $(min ... "$(timed ...)").
    t=$(timed --rss "$work/rss" "$work/$bin" "${build[@]}" "${extra[@]}" --push=false "${pkgs[@]}")
    pack[$bin]=$(min "${pack[$bin]:-}" "$t")
    t=$(timed --rss "$work/rss" "$work/$bin" "${build[@]}" "${extra[@]}" --image "$proxied/bench/$bin-$i" "${pkgs[@]}")
    push[$bin]=$(min "${push[$bin]:-}" "$t")
    rss[$bin]=$(( $(cat "$work/rss") > ${rss[$bin]:-0} ? $(cat "$work/rss") : ${rss[$bin]:-0} ))
  done
done
printf '%-8s %8s %8s %8s %8s %10s\n' binary pack push net ratio "peak MiB"
for bin in nixery-base nixery; do
  limit=$(echo "if (${pack[$bin]} > $net) ${pack[$bin]} else $net" | bc -l)
  printf '%-8s %8.2f %8.2f %8.2f %8.2f %10d\n' "$bin" "${pack[$bin]}" "${push[$bin]}" "$net" "$(echo "${push[$bin]} / $limit" | bc -l)" "$((rss[$bin] / 1024))" | sed 's/nixery-base/base/'
done
echo "($((bytes / 1000000)) MB of layers through $((rate / 1000000)) MB/s; base is $base)"
