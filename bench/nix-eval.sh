#!/usr/bin/env bash
# How long the Nix phase of a build takes when evaluating the flake is
# what costs (nixpkgs' stdenv takes seconds to evaluate; the stand-in
# nixpkgs nothing), on Debian trixie's Nix 2.26 in the chroot
# scripts/trixie-nix.sh makes, with a fresh store of the script's own.
# The flake's packages share one evaluation of about 0.7 s. In one run,
# for this tree and for BASE (a git revision, default the last one before
# nix build took the derivations by path), ROUNDS (default 5) builds each,
#   cold  with an empty ~/.cache/nix (Nix's evaluation cache), as on a
#         fresh CI runner
#   warm  right after, with that cache
# and prints the median Nix seconds and this tree ÷ base. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup nix-eval.sh go git
[ "$(id -u)" = 0 ] || { echo "nix-eval.sh: needs root (the trixie chroot)" >&2; exit 1; }

base=${BASE:-1fcdff9}
rounds=${ROUNDS:-5}
chroot=${NIXERY_TRIXIE_DIR:-/var/cache/nixery-action/trixie}
./scripts/trixie-nix.sh "$chroot" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/nix" "$work/home" "$work/flake" "$work/base"
go build -o "$work/bin/new" ./cmd/nixery
git archive "$base" | tar -x -C "$work/base"
(cd "$work/base" && go build -o "$work/bin/old" ./cmd/nixery)

cat >"$work/flake/flake.nix" <<'NIX'
{
  outputs = { self }: let
    heavy = builtins.foldl' (a: b: a + b) 0 (builtins.genList (i: i * i) 3000000);
    pkg = name: builtins.derivation {
      inherit name; system = "x86_64-linux"; builder = "/bin/sh";
      args = [ "-c" "/bin/mkdir $out; echo ${toString heavy} > $out/sum" ];
    };
  in {
    legacyPackages.x86_64-linux = { hello = pkg "hello"; cacert = pkg "cacert"; iana-etc = pkg "iana-etc"; };
  };
}
NIX
cat >"$work/bin/rounds.sh" <<'SH'
#!/bin/sh
set -e
nixs() { "/opt/b/$1" build --nixpkgs path:/src/flake --platforms linux/amd64 --push=false --json hello 2>/dev/null |
  jq -r '.timings.nix["linux/amd64"]'; }
i=0
while [ "$i" -lt "$ROUNDS" ]; do
  for v in old new; do
    rm -rf /root/.cache/nix
    echo "$v cold $(nixs "$v")"
    echo "$v warm $(nixs "$v")"
  done
  i=$((i + 1))
done
SH
chmod +x "$work/bin/rounds.sh"
./scripts/trixie-nix.sh "$chroot" run -b "$work/bin:/opt/b" -b "$work/nix:/nix" -b "$work/home:/root" -b "$work/flake:/src/flake" -- \
  NIX_CONFIG="$(printf 'experimental-features = nix-command flakes\nsandbox = false\nbuild-users-group =\nsubstituters =\n')" \
  ROUNDS="$rounds" /bin/sh /opt/b/rounds.sh >"$work/times"

median() { grep "^$1 $2 " "$work/times" | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-6s %8s %8s %8s\n' cache base nixery ratio
for c in cold warm; do
  o=$(median old "$c") n=$(median new "$c")
  printf '%-6s %8.2f %8.2f %8.2f\n' "$c" "$o" "$n" "$(echo "$n / $o" | bc -l)"
done
echo "(Nix seconds of one build, median of $rounds, Nix 2.26; base is $base)"
