#!/usr/bin/env bash
# Builds the fuzz targets (fuzz/fuzz_targets/*) with libFuzzer instrumentation
# on the nightly toolchain, the way `cargo fuzz` would, and runs each one for
# a while. Needs only rustup's nightly toolchain (no cargo-fuzz).
#
#   scripts/fuzz.sh [SECONDS]        # default 60 per target
#
# Targets (every fuzz/fuzz_targets/*.rs, each a [[bin]] in fuzz/Cargo.toml):
#   decode        OpenFlow decoder round trip
#   packet        vnet header check and flow extraction
#   group_graph   GROUP_MOD sequences: the group graph stays acyclic and bounded
#   xlate_budget  random group/flow graphs + a packet: translation stays in budget
#
# Corpora are kept in fuzz/corpus/<target> (not committed); a crash leaves
# its input in the current directory and makes this script fail.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
triple=$(rustc -vV | sed -n 's/^host: //p')
target_dir=${FUZZ_TARGET_DIR:-$here/fuzz/target}
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing" \
    cargo +nightly build --release --manifest-path "$here/fuzz/Cargo.toml" \
    --target-dir "$target_dir" --target "$triple"
for t in "$here"/fuzz/fuzz_targets/*.rs; do
    name=$(basename "$t" .rs)
    mkdir -p "$here/fuzz/corpus/$name"
    echo "== $name ($secs s)"
    "$target_dir/$triple/release/$name" -max_total_time="$secs" -rss_limit_mb=2048 \
        "$here/fuzz/corpus/$name" 2>&1 | tail -1
done
