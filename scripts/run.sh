#!/usr/bin/env bash
# Sets up and runs the daemon on the shipped default config (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release
mkdir -p /run/rvswitchd
exec target/release/rvswitchd --config "${1:-config/rvswitchd.toml}"
