# shellcheck shell=bash
# Shared by scripts/build-release.sh and action/install.sh (sourced,
# not run): what a release binary is built from, named the same way on the
# release machine and in the action.

# sha256_lines FILE... prints "HASH  FILE" per file (sha256sum on Linux,
# shasum on macOS runners; both print this form); with no FILE, the hash of
# standard input.
sha256_lines() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$@"
  else
    shasum -a 256 "$@"
  fi
}

# sha256_of FILE prints the file's SHA-256 in hex.
sha256_of() {
  sha256_lines "$1" | cut -d' ' -f1
}

# source_digest DIR prints a digest of everything a release binary is built
# from: VERSION, flake.lock (the default nixpkgs), go.mod, go.sum and the
# non-test Go files of cmd/, pkg/ and internal/ (the SHA-256 of their
# sorted "HASH  FILE" lines). The action compares it with release/source to
# know whether its own files are those of the release, so that a branch or a
# SHA never runs a released binary built from other code.
source_digest() (
  cd "$1" || exit 1
  files=()
  while IFS= read -r f; do
    [ -f "$f" ] || { echo "source_digest: $1/$f is missing" >&2; exit 1; }
    files+=("$f")
  done < <({
    printf '%s\n' VERSION flake.lock go.mod go.sum
    find cmd pkg internal -type f -name '*.go' ! -name '*_test.go' ! -path '*/testdata/*'
  } | LC_ALL=C sort)
  sha256_lines "${files[@]}" | sha256_lines | cut -d' ' -f1
)
