#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need, then
# checks formatting, vets and runs every test (unit and end-to-end). Tests
# that need Nix, root, a registry or image clients carry the integration
# build tag (plain `go test ./...` leaves them out): every go vet and go
# test here passes -tags integration, so CI runs them all.
set -euo pipefail
cd "$(dirname "$0")/.."

start=$(date +%s)
elapsed() { echo "$(($(date +%s) - start))s"; }
step() { echo "== $(elapsed) $*" >&2; }

step setup
./scripts/setup.sh --no-trixie
# Debian trixie's Nix, in a chroot (downloads and unpacks for minutes on a
# new machine): made while the checks below run, waited for before the
# tests.
trixie_log=$(mktemp)
# On any exit: the background jobs still running (the chroot, the test
# runs, with their registries) stop too, and this script's files go.
kill_tree() { local c; for c in $(pgrep -P "$1"); do kill_tree "$c"; done; kill "$1" 2>/dev/null || true; }
cleanup() {
  local p
  for p in $(jobs -p); do kill_tree "$p"; done
  rm -f "$trixie_log" "${json:-}" "${race_json:-}" "${e2e_json:-}" "${flake_json:-}" "${act_log:-}"
}
trap cleanup EXIT
./scripts/trixie-nix.sh "${NIXERY_TRIXIE_DIR:-/var/cache/nixery-action/trixie}" >"$trixie_log" 2>&1 &
trixie_pid=$!

# The suite must leave the machine as it found it: /tmp's mode (apt needs
# 1777) and the machine's Nix configuration are checked after it.
nixconf=/etc/nix/nix.conf
nixconf_sum() { if [ -e "$nixconf" ]; then sha256sum "$nixconf"; else echo absent; fi; }
nixconf_before=$(nixconf_sum)
check_host() {
  local mode
  mode=$(stat -c %a /tmp)
  if [ "$mode" != 1777 ]; then
    echo "the tests left /tmp at mode $mode, not 1777" >&2
    return 1
  fi
  if [ "$(nixconf_sum)" != "$nixconf_before" ]; then
    echo "the tests changed $nixconf" >&2
    return 1
  fi
  # What the tests and the tools they run would leave: temporary
  # directories of Go tests, nixery, Nix and Go's os.CreateTemp. Anything
  # else new is named, but may belong to another process on the machine.
  local left ours
  left=$(comm -13 <(echo "$tmp_before") <(tmp_entries))
  ours=$(echo "$left" | grep -E '^(Test|Fuzz|Benchmark|nixery-|nix-shell\.|nix-build-|go-build|[0-9]+$)' || true)
  if [ -n "$left" ]; then
    echo "new in /tmp since the tests began: $(echo "$left" | tr '\n' ' ')" >&2
  fi
  if [ -n "$ours" ]; then
    echo "the tests left these in /tmp: $(echo "$ours" | tr '\n' ' ')" >&2
    return 1
  fi
}
# What is in /tmp, but for this script's own files (names, not paths:
# a pattern matches the whole name).
# shellcheck disable=SC2010 # the names are compared, not opened
tmp_entries() { { ls -A /tmp | grep -v -x -F -e "$(basename "${trixie_log:-x}")" -e "$(basename "${json:-x}")" -e "$(basename "${e2e_json:-x}")" -e "$(basename "${race_json:-x}")" -e "$(basename "${flake_json:-x}")" -e "$(basename "${act_log:-x}")" || true; } | sort; }

step "gofmt, vet (linux and darwin), actionlint, shellcheck"
mapfile -t go_files < <(git ls-files '*.go')
unformatted=$(gofmt -l "${go_files[@]}")
if [ -n "$unformatted" ]; then
  echo "gofmt wants to rewrite: $unformatted" >&2
  exit 1
fi
go vet -tags integration ./...
# `nix run` on a Mac builds the same code for darwin.
GOOS=darwin GOARCH=arm64 go build ./...
GOOS=darwin GOARCH=arm64 go vet -tags integration ./...
./scripts/actionlint.sh
shellcheck -x scripts/*.sh bench/*.sh
# Every test, packages in parallel; a line per top-level test as it ends
# (no package is silent for minutes), and the output of any that failed.
# The e2e package needs the trixie chroot: the other packages start at
# once, e2e when the chroot is ready.
json=$(mktemp)
race_json=$(mktemp)
e2e_json=$(mktemp)
flake_json=$(mktemp)
act_log=$(mktemp)
tmp_before=$(tmp_entries)
gotest() { # JSON-FILE PACKAGE...
  local out=$1
  shift
  go test -tags integration -json -count=1 -timeout 40m "$@" 2>&1 | tee "$out" | jq -R -r --unbuffered '
    fromjson? | select(.Action == "pass" or .Action == "fail" or .Action == "skip")
    | select((.Test // "") | contains("/") | not)
    | "\(now | strftime("%H:%M:%S")) \(.Action) \(.Package | sub("^github.com/nixery-action/nixery-action/"; "")) \(.Test // "(package)") \(.Elapsed // 0)s"'
}
step "go test (all but e2e; the concurrent pipeline under the race detector)"
# pkg/build, pkg/publish, pkg/cache and pkg/serve run layers, uploads and registry reads at once,
# and pkg/nix its platforms' Nix commands and their shared GC-roots child:
# their tests run with -race instead of without.
race_packages=(./pkg/build ./pkg/publish ./pkg/cache ./pkg/serve ./pkg/nix)
mapfile -t packages < <(go list -tags integration ./... | grep -v -e '/e2e$' -e '/pkg/build$' -e '/pkg/publish$' -e '/pkg/cache$' -e '/pkg/serve$' -e '/pkg/nix$' -e '/internal/flaketest$')
gotest "$json" "${packages[@]}" &
tests_pid=$!
gotest "$race_json" -race "${race_packages[@]}" &
race_pid=$!
# The action's tests run it under nektos/act, which is installed first
# (minutes on a new machine, with go install).
(
  if ! ./scripts/act-install.sh >"$act_log" 2>&1; then
    cat "$act_log" >&2
    echo "scripts/act-install.sh failed: internal/flaketest runs the action under nektos/act" >&2
    exit 1
  fi
  gotest "$flake_json" ./internal/flaketest
) &
flake_pid=$!
step "waiting for the trixie chroot"
if ! wait "$trixie_pid"; then
  cat "$trixie_log" >&2
  echo "scripts/trixie-nix.sh failed: the e2e tests need Debian trixie's Nix" >&2
  exit 1
fi
step "go test ./e2e"
status=0
gotest "$e2e_json" ./e2e || status=$?
wait "$tests_pid" || status=$?
wait "$race_pid" || status=$?
wait "$flake_pid" || status=$?
step "tests done"
if [ "$status" != 0 ] || grep -q '"Action":"fail"' "$json" "$race_json" "$e2e_json" "$flake_json"; then
  echo "== failed tests' output:" >&2
  cat "$json" "$race_json" "$e2e_json" "$flake_json" | jq -R -r 'fromjson? // {Action: "output", Output: (. + "\n")}' | jq -s -j '
    (map(select(.Action == "fail")) | map({key: "\(.Package) \(.Test // "")", value: true}) | from_entries) as $failed
    | .[] | select(.Action == "output" and ($failed["\(.Package) \(.Test // "")"] // false)) | .Output' >&2
  exit 1
fi

step "fuzz targets"
# Every fuzz target, for about ten seconds each: the package-name parser,
# the closure-graph parser and the tar writer. The budgets are counts of
# runs, not durations: a -fuzztime duration can fail with "context
# deadline exceeded" and no crasher when it ends (go.dev/issue/75804,
# fixed in Go 1.27). FUZZTIME (e.g. 30s or 500000x) overrides them all.
for target in ./pkg/spec:FuzzCheckAttr:100000x ./pkg/spec:FuzzParse:100000x ./pkg/layers:FuzzParseGraph:100000x ./pkg/archive:FuzzPackNames:1500x; do
  IFS=: read -r pkg name budget <<<"$target"
  go test -tags integration -run '^$' -fuzz "^$name\$" -fuzztime "${FUZZTIME:-$budget}" -fuzzminimizetime 2s "$pkg"
done

check_host
step "all passed"
