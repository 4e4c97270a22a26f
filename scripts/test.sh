#!/usr/bin/env bash
# Runs every test: unit, property, and integration tests that start the real
# daemon and send traffic between network namespaces (as root). CI runs this.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# Here every tool is installed, so a test that would skip is a failure.
export RVSWITCHD_REQUIRE_ALL=1
cargo nextest run --release --profile ci --no-tests=fail "$@"
