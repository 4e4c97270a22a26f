#!/usr/bin/env bash
# Runs the shared side-by-side harness (rvswitchd vs Open vSwitch's userspace
# datapath, same workloads, same run) with rvswitchd as the switch under test.
#
#   bench/sidebyside.sh                       # full run: 3 runs x 10 s, 100k flows (~12 min)
#   bench/sidebyside.sh --runs 1 --dur 3 --nflows 20000 --only tcp,udp64   # quick look
#   RVSWITCHD_SUT_ENV="RVSWITCHD__DATAPATH__N_REVALIDATOR_THREADS=2" bench/sidebyside.sh --only flowsetup,reval
#   RVSWITCHD_SUT_ARGS="--port-type afxdp" bench/sidebyside.sh --only udp64   # AF_XDP ports
#
# RVSWITCHD_SUT_ENV: RVSWITCHD__SECTION__KEY overrides put in the daemon's
# environment. RVSWITCHD_SUT_ARGS: extra daemon arguments appended to its
# command line (e.g. `--port-type afxdp`: the harness's ports are opened
# with AF_XDP instead of AF_PACKET).
#
# Extra arguments go to the harness (see ../shared/bench/README.md). The
# summary table lands in the --out directory (default: a new /tmp directory).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
harness=${SIDEBYSIDE:-$here/../shared/bench/sidebyside.sh}
[ -x "$harness" ] || { echo "harness not found: $harness (set SIDEBYSIDE=)" >&2; exit 1; }
cargo build --release --manifest-path "$here/Cargo.toml"
bin=$here/target/release/rvswitchd
# RVSWITCHD_SUT_ENV carries RVSWITCHD__SECTION__KEY overrides into the daemon.
exec "$harness" "$@" --sut-cmd "exec env ${RVSWITCHD_SUT_ENV:-} $bin --dpid \$B_DPID --listen \$B_LISTEN --ports \"\$B_PORTS\" --unixctl \$B_CTL --log-file \$B_OUT/rvswitchd.log ${RVSWITCHD_SUT_ARGS:-}"
