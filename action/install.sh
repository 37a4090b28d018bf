#!/usr/bin/env bash
# Installs nixery for the action (action.yml runs it as a step): the release
# binary for this runner, for the release this copy of the action is,
# checked against the SHA-256 the action itself records in release/; or, where
# there is no such release (uses: ./, a branch, a SHA), nothing, and the
# action runs its own flake with `nix run`.
#
# Writes to $GITHUB_OUTPUT: command=PATH of the binary, or command= (empty)
# for `nix run` and then reason= why there is no binary (one line, for the
# action's message when Nix is missing). Every failure is one ::error:: line.
#
# The releases are those of the repository the action runs from
# (NIXERY_ACTION_REPOSITORY, which action.yml sets from
# github.action_repository, or GITHUB_ACTION_REPOSITORY), so that a fork
# downloads the binaries it released itself; a local copy (uses: ./, inside
# the workspace) downloads nixery-action's.
# NIXERY_TEST_RELEASES_URL replaces the releases host and
# NIXERY_TEST_STALL_SECONDS how long a download may stall, for the tests
# only; whatever the host serves must still match release/SHA256SUMS.
set -euo pipefail

action=${GITHUB_ACTION_PATH:-$(cd "$(dirname "$0")/.." && pwd)}
. "$action/action/release-lib.sh"

# releases_url prints the base URL of the releases to download from.
releases_url() {
  local repo=${NIXERY_ACTION_REPOSITORY:-${GITHUB_ACTION_REPOSITORY:-}}
  case $action/ in
    "${GITHUB_WORKSPACE:-/nonexistent}"/*) repo= ;; # uses: ./: the repository is the caller's
  esac
  if [[ ! $repo =~ ^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$ ]] || [[ $repo == */. || $repo == */.. ]]; then
    repo=nixery-action/nixery-action
  fi
  echo "https://github.com/$repo/releases/download"
}
releases=${NIXERY_TEST_RELEASES_URL:-$(releases_url)}
# A host that answers, then stalls, must not hold the job until its
# timeout: under 1 KiB/s for this long, or 10 minutes in all, fails the
# download (curl retries it, then Nix builds nixery).
stall=${NIXERY_TEST_STALL_SECONDS:-30}

fail() { echo "::error title=nixery-action::$*"; exit 1; }
output() { echo "command=$1" >> "${GITHUB_OUTPUT:-/dev/null}"; }

case ${RUNNER_OS:-$(uname -s)} in
  Linux) os=linux ;;
  macOS | Darwin) os=darwin ;;
  *) fail "nixery-action runs on Linux and macOS runners, not ${RUNNER_OS:-$(uname -s)}: use e.g. runs-on: ubuntu-24.04" ;;
esac
case ${RUNNER_ARCH:-$(uname -m)} in
  X64 | x86_64 | amd64) arch=amd64 ;;
  ARM64 | arm64 | aarch64) arch=arm64 ;;
  *) fail "nixery-action runs on x86-64 and arm64 runners, not ${RUNNER_ARCH:-$(uname -m)}" ;;
esac
asset=nixery-$os-$arch
version=$(tr -d ' \n' < "$action/VERSION")

# use_nix says why there is no binary and leaves nixery to `nix run`
# (the action checks for Nix, or installs it, after this step when
# merging, which needs no Nix otherwise).
use_nix() {
  echo "nixery-action: $1; building nixery with nix run"
  output ""
  echo "reason=$(printf '%s' "$1" | tr -d '\r\n')" >> "${GITHUB_OUTPUT:-/dev/null}"
  exit 0
}

if [ ! -f "$action/release/source" ] || [ ! -f "$action/release/SHA256SUMS" ]; then
  use_nix "this copy of the action records no release (a branch, a commit or uses: ./; a release such as @v1 has a binary)"
fi
if [ "$(source_digest "$action")" != "$(tr -d ' \n' < "$action/release/source")" ]; then
  use_nix "this copy of the action is not release v$version (a branch, a commit or uses: ./; a release such as @v1 has a binary)"
fi
want=$(awk -v a="$asset" '$2 == a { print $1 }' "$action/release/SHA256SUMS")
[ -n "$want" ] || use_nix "release v$version has no $asset"

# A directory of this run's own: another job sharing RUNNER_TEMP (a
# self-hosted runner), or another user's directory of the same name in
# /tmp, cannot swap the file between its check and its use.
dir=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/nixery-v$version.XXXXXX")
url=$releases/v$version/$asset
part=$dir/$asset.part
rm -f "$part"
status=$(curl --silent --show-error --location --retry 3 --connect-timeout 10 \
  --speed-limit 1024 --speed-time "$stall" --max-time 600 \
  --output "$part" --write-out '%{http_code}' "$url" 2>"$dir/curl.err") || status="failed $?"
case $status in
  200) ;;
  404) rm -f "$part"; use_nix "release v$version has no $asset at $url (not published yet?)" ;;
  failed*)
    rm -f "$part"
    why=$(head -n1 "$dir/curl.err")
    use_nix "downloading $url failed: ${why:-curl exit ${status#failed }}" ;;
  *) rm -f "$part"; use_nix "downloading $url answered HTTP $status" ;;
esac

got=$(sha256_of "$part")
if [ "$got" != "$want" ]; then
  rm -f "$part"
  fail "$url has SHA-256 $got, but this action records $want for $asset of v$version: not running it"
fi
chmod +x "$part"
mv -f "$part" "$dir/nixery"
echo "nixery-action: using the release binary $asset of v$version (SHA-256 $got)"
output "$dir/nixery"
