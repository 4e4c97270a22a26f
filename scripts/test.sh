#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints (warnings are errors), then
# every test: unit, property, and integration tests that start the real
# daemon and send traffic between network namespaces (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo fmt --check
cargo clippy --all-targets -- -D warnings
# Here every tool is installed, so a test that would skip is a failure.
export RVSWITCHD_REQUIRE_ALL=1
cargo nextest run --release --profile ci --no-tests=fail "$@"
