#!/usr/bin/env bash
# Installs what rvswitchd's build, daemon and tests need on Debian 12 (run as root).
# Idempotent: a second run only checks.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

need_apt=0
for p in ovs-ofctl ovs-appctl ovs-testcontroller ovs-vswitchd ovs-pki openssl prlimit iperf3 ping ip ethtool \
    python3 stdbuf tcpdump curl tshark promtool; do
    command -v "$p" >/dev/null 2>&1 || need_apt=1
done
# tests/conformance.rs builds frames with scapy under the system python.
/usr/bin/python3 -c 'import scapy.all' >/dev/null 2>&1 || need_apt=1
if [ "$need_apt" = 1 ]; then
    apt-get update -qq
    # tshark: answer its "non-root capture" question without a prompt.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    apt-get install -y -qq openvswitch-common openvswitch-switch openvswitch-testcontroller iperf3 iputils-ping \
        iproute2 ethtool python3 python3-pip coreutils tcpdump curl openssl util-linux \
        tshark python3-scapy >/dev/null
    # promtool (the strict /metrics check in tests/daemon.rs) comes with the
    # Prometheus server package; its service is not needed (and not started
    # without systemd).
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    (service prometheus stop || systemctl stop prometheus) >/dev/null 2>&1 || true
    # The test controller package may start a service on 6653, and Open
    # vSwitch its system daemons; the tests start private instances themselves
    # (tests/tunnel.rs's interop peer), and a running system OVS would make
    # the OVS-compatible-paths tests refuse to start.
    (service openvswitch-testcontroller stop || systemctl stop openvswitch-testcontroller) >/dev/null 2>&1 || true
    (service openvswitch-switch stop || systemctl stop openvswitch-switch) >/dev/null 2>&1 || true
fi
mkdir -p /var/run/openvswitch   # ovs-ofctl monitor keeps its control socket there

if ! python3 -c 'import os_ken, eventlet' >/dev/null 2>&1; then
    python3 -m pip install -q os-ken eventlet 2>/dev/null \
        || python3 -m pip install -q --break-system-packages os-ken eventlet
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "rvswitchd needs a Rust toolchain (1.85 or newer): see https://rustup.rs" >&2
    exit 1
fi
# scripts/test.sh checks formatting and lints before the tests.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy
fi
if ! cargo nextest --version >/dev/null 2>&1; then
    cargo install --locked cargo-nextest
fi
# The packaged path (README: `cargo deb && apt install ./target/debian/*.deb`),
# which tests/daemon.rs builds, installs and starts.
if ! cargo deb --version >/dev/null 2>&1; then
    cargo install --locked cargo-deb
fi
