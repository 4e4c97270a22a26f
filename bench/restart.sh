#!/usr/bin/env bash
# Forwarding outage across a switch restart (issue 14), rvswitchd side by
# side with Open vSwitch 3.1 in one run. Topology: h1 10.77.0.1 -veth- p1
# [switch in its own netns] p2 -veth- h2 10.77.0.2, rules in_port=1 ->
# output:2 and back, secure fail mode (no NORMAL fallback). While
# `ping -i 0.01` runs from h1 to h2, the switch gets SIGTERM and is started
# again the way an operator's `systemctl restart` does it:
#   rvswitchd: the same config; its tables come back from its state file;
#   OVS:       started through the shared harness's sut_ovs.sh, its rules
#              re-added with ovs-ofctl as soon as it answers (what ovs-save
#              or a controller does).
# and, as a third row, rvswitchd replaced by `rvswitchd --takeover` (the
# same config; the running one hands over its listeners and exits).
#
#   bench/restart.sh [RUNS]      # default 3 (needs root)
#
# Prints per run and side the pings sent and lost and the outage (lost x
# 10 ms), then the medians.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
bin=$here/target/release/rvswitchd
sut_ovs=${SUT_OVS:-$here/../shared/bench/sut_ovs.sh}
[ -x "$bin" ] || cargo build --release --manifest-path "$here/Cargo.toml"
if ! command -v ovs-vswitchd >/dev/null || ! command -v bc >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openvswitch-switch bc >/dev/null
    (service openvswitch-switch stop || systemctl stop openvswitch-switch) >/dev/null 2>&1 || true
fi
tag=$$
sw=rvr-sw-$tag h1=rvr-h1-$tag h2=rvr-h2-$tag
work=$(mktemp -d /tmp/rvs-restart.XXXXXX)
listen=127.0.0.1:36688
pid=""
cleanup() {
    for n in $sw $h1 $h2; do
        ip netns pids "$n" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
        ip netns del "$n" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
for n in $sw $h1 $h2; do ip netns add "$n"; ip -n "$n" link set lo up; done
for i in 1 2; do
    h=$h1; [ "$i" = 2 ] && h=$h2
    ip -n "$sw" link add "p$i" type veth peer name eth0 netns "$h"
    ip -n "$sw" link set "p$i" up
    ip -n "$h" addr add "10.77.0.$i/24" dev eth0
    ip -n "$h" link set eth0 up
    # checksum offload off on the hosts, as the shared harness does for
    # AF_PACKET switches
    ip netns exec "$h" ethtool -K eth0 tx off >/dev/null 2>&1 || true
done
ip netns exec "$h1" ip neigh replace 10.77.0.2 lladdr "$(ip netns exec "$h2" cat /sys/class/net/eth0/address)" dev eth0
ip netns exec "$h2" ip neigh replace 10.77.0.1 lladdr "$(ip netns exec "$h1" cat /sys/class/net/eth0/address)" dev eth0
cat > "$work/rvswitchd.toml" <<CFG
[daemon]
control_socket = "$work/rvs.ctl"
stats_listen = ""
state_dir = "$work/state"
state_save_ms = 100
[[bridge]]
name = "rvr0"
datapath_id = "0000000000000001"
fail_mode = "secure"
internal_port = false
listeners = ["ptcp:${listen##*:}:127.0.0.1"]
[[bridge.port]]
name = "p1"
ofport = 1
[[bridge.port]]
name = "p2"
ofport = 2
CFG
inns() { ip netns exec "$sw" "$@"; }
ofc() { local c=$1; shift; inns ovs-ofctl -O OpenFlow13 "$c" "tcp:$listen" "$@"; }
flows() { ofc add-flow "in_port=1,actions=output:2" && ofc add-flow "in_port=2,actions=output:1"; }

start() {   # side
    local out=$work/out-$1
    mkdir -p "$out"
    if [ "$1" = ovs ]; then
        B_PORTS="p1 p2" B_DPID=1 B_DPID_HEX=0000000000000001 B_LISTEN=$listen \
            B_CTL=$work/ovs.ctl B_OUT=$out inns bash "$sut_ovs" >> "$out/console.log" 2>&1 &
    elif [ "${2:-}" = takeover ]; then
        inns "$bin" --config "$work/rvswitchd.toml" --takeover >> "$out/console.log" 2>&1 &
    else
        inns "$bin" --config "$work/rvswitchd.toml" >> "$out/console.log" 2>&1 &
    fi
    pid=$!
    for _ in $(seq 600); do
        ofc show 2>/dev/null | grep -q '2(p2)' && return 0
        sleep 0.01
    done
    echo "$1 did not come up" >&2; tail "$out/console.log" >&2; exit 1
}
stop() {
    ip netns pids "$sw" | xargs -r kill -TERM 2>/dev/null || true
    for _ in $(seq 50); do [ -z "$(ip netns pids "$sw")" ] && break; sleep 0.1; done
    ip netns pids "$sw" | xargs -r kill -KILL 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

echo "side run sent lost outage_ms"
for r in $(seq "$runs"); do
    for side in ovs rvswitchd takeover; do
        rm -rf "$work/state"
        kind=${side/takeover/rvswitchd}
        start "$kind"
        flows
        sleep 0.5    # rvswitchd: the state file is written within state_save_ms
        ip netns exec "$h1" ping -c 1 -W 1 10.77.0.2 >/dev/null || { echo "$side: no path" >&2; exit 1; }
        ip netns exec "$h1" ping -q -i 0.01 -w 8 10.77.0.2 > "$work/ping-$side-$r" 2>&1 &
        ping_pid=$!
        sleep 2
        if [ "$side" = takeover ]; then
            old=$pid
            start "$kind" takeover
            # The old process exits once the new one forwards.
            for _ in $(seq 300); do kill -0 "$old" 2>/dev/null || break; sleep 0.01; done
            wait "$old" 2>/dev/null || true
        else
            stop
            start "$side"
        fi
        [ "$side" = ovs ] && flows
        wait "$ping_pid" || true
        stop
        sent=$(awk '/packets transmitted/ {print $1}' "$work/ping-$side-$r")
        recv=$(awk '/packets transmitted/ {print $4}' "$work/ping-$side-$r")
        lost=$((sent - recv))
        echo "$side $r $sent $lost $((lost * 10))" | tee -a "$work/results"
    done
done
echo
med() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
echo "medians over $runs runs (ping -i 0.01 for 8 s, restart or takeover at 2 s):"
for side in ovs rvswitchd takeover; do
    l=$(awk -v s="$side" '$1 == s {print $4}' "$work/results" | med)
    printf "%-10s lost %s pings, outage %s ms\n" "$side" "$l" "$((l * 10))"
done
