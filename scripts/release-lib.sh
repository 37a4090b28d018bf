# shellcheck shell=bash
# Shared by scripts/build-release.sh and scripts/action-install.sh (sourced,
# not run): what a release binary is built from, named the same way on the
# release machine and in the action.

# sha256_of FILE prints the file's SHA-256 in hex (sha256sum on Linux,
# shasum on macOS runners).
sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

# source_digest DIR prints a digest of everything a release binary is built
# from: VERSION, flake.lock (the default nixpkgs), go.mod, go.sum and the
# non-test Go files of cmd/, pkg/ and internal/. The action compares it with
# release/source to know whether its own files are those of the release, so
# that a branch or a SHA never runs a released binary built from other code.
source_digest() (
  cd "$1" || exit 1
  list=$(mktemp)
  trap 'rm -f "$list"' EXIT
  {
    printf '%s\n' VERSION flake.lock go.mod go.sum
    find cmd pkg internal -type f -name '*.go' ! -name '*_test.go' ! -path '*/testdata/*'
  } | LC_ALL=C sort > "$list"
  while IFS= read -r f; do
    [ -f "$f" ] || { echo "source_digest: $1/$f is missing" >&2; exit 1; }
    printf '%s  %s\n' "$(sha256_of "$f")" "$f"
  done < "$list" > "$list.sums"
  sha256_of "$list.sums"
  rm -f "$list.sums"
)
