#!/usr/bin/env bash
# Bundle commit speed, rvswitchd side by side with Open vSwitch 3.1 in one run:
# `ovs-ofctl -O OpenFlow13 --bundle add-flows` of N rules (the ONF bundle
# extension, which both switches speak in 1.3), against a fresh switch each
# time, alternating OVS and rvswitchd. OVS is started through the shared
# harness's own sut_ovs.sh (the SUT contract: B_PORTS, B_LISTEN, B_DPID,
# B_CTL, B_OUT), rvswitchd with the same variables, in the same network
# namespace with the same two veth ports.
#
#   bench/bundle.sh [N] [RUNS]      # default: 100000 3   (needs root)
#
# Per run and side it prints the wall time of the add-flows, the client's own
# CPU time (user+sys of ovs-ofctl: parsing the file and encoding the
# messages, the same for both switches) and the difference, which bounds
# what the switch adds; then the medians.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
n=${1:-100000}
runs=${2:-3}
bin=$here/target/release/rvswitchd
sut_ovs=${SUT_OVS:-$here/../shared/bench/sut_ovs.sh}
[ -x "$bin" ] || cargo build --release --manifest-path "$here/Cargo.toml"
if ! command -v ovs-vswitchd >/dev/null || ! command -v bc >/dev/null || [ ! -x /usr/bin/time ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openvswitch-switch bc time >/dev/null
    (service openvswitch-switch stop || systemctl stop openvswitch-switch) >/dev/null 2>&1 || true
fi
[ -f "$sut_ovs" ] || { echo "no $sut_ovs" >&2; exit 1; }
ns=rvb-bundle-$$
work=$(mktemp -d /tmp/rvs-bundle.XXXXXX)
listen=127.0.0.1:36677
pid=""
cleanup() {
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
two_port_ns "$ns"
flowmod_rules "$n" > "$work/flows"
inns() { ip netns exec "$ns" "$@"; }

start() {   # side -> starts the switch in the namespace
    local side=$1 out=$work/out-$1
    mkdir -p "$out"
    export B_PORTS="p1 p2" B_DPID=1 B_DPID_HEX=0000000000000001 B_LISTEN=$listen \
        B_CTL=$work/ctl-$side B_OUT=$out
    if [ "$side" = ovs ]; then
        inns bash "$sut_ovs" > "$out/console.log" 2>&1 &
    else
        inns "$bin" --dpid 1 --listen "$listen" --ports "p1 p2" --unixctl "$B_CTL" \
            --log-file "$out/rvswitchd.log" > "$out/console.log" 2>&1 &
    fi
    pid=$!
    for _ in $(seq 600); do
        inns ovs-ofctl -O OpenFlow13 show "tcp:$listen" 2>/dev/null | grep -q '2(p2)' && return 0
        sleep 0.1
    done
    echo "$side did not come up" >&2; cat "$out/console.log" >&2; exit 1
}
stop() {    # every process in the namespace: the switch and its children
    ip netns pids "$ns" | xargs -r kill -TERM 2>/dev/null || true
    for _ in $(seq 50); do [ -z "$(ip netns pids "$ns")" ] && break; sleep 0.1; done
    ip netns pids "$ns" | xargs -r kill -KILL 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
}

echo "side run wall_s client_cpu_s switch_s installed"
for r in $(seq "$runs"); do
    for side in ovs rvswitchd; do
        start "$side"
        t0=$EPOCHREALTIME
        cpu=$( { inns /usr/bin/time -f "%U %S" ovs-ofctl -O OpenFlow13 --bundle add-flows "tcp:$listen" "$work/flows"; } 2>&1 | tail -1)
        t1=$EPOCHREALTIME
        got=$(inns ovs-ofctl -O OpenFlow13 dump-flows "tcp:$listen" | grep -c 'priority=100' || true)
        stop
        wall=$(echo "$t1 - $t0" | bc)
        ccpu=$(echo "$cpu" | awk '{print $1 + $2}')
        printf "%s %s %.3f %.3f %.3f %s\n" "$side" "$r" "$wall" "$ccpu" "$(echo "$wall - $ccpu" | bc)" "$got" | tee -a "$work/results"
    done
done
echo
echo "medians over $runs runs, N=$n:"
med() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
for side in ovs rvswitchd; do
    w=$(awk -v s="$side" '$1 == s {print $3}' "$work/results" | med)
    c=$(awk -v s="$side" '$1 == s {print $4}' "$work/results" | med)
    d=$(awk -v s="$side" '$1 == s {print $5}' "$work/results" | med)
    printf "%-10s add-flows --bundle %s s (client CPU %s s, switch share %s s)\n" "$side" "$w" "$c" "$d"
done
