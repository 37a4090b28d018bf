#!/usr/bin/env bash
# Installs nektos/act, the GitHub Actions runner of others that the tests
# run the action under (internal/flaketest/act_test.go), pinned, into
# .cache/ of this repository (about 3 minutes on 2 cores the first time),
# and prints the path of its binary.
set -euo pipefail
GOFLAGS=-mod=mod exec "$(dirname "$0")/go-tool.sh" act github.com/nektos/act v0.2.89
