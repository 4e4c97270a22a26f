#!/usr/bin/env bash
# VXLAN across two hosts (issue 11), rvswitchd side by side with Open vSwitch 3.1's
# userspace (netdev) tunnel, in one run, on the same topology:
#
#   vm1 10.0.0.1 -veth- p1 [hv1: switch + vxlan, 10.99.0.1] u1 =underlay veth= u2
#       [hv2: switch + vxlan, 10.99.0.2] p1 -veth- vm2 10.0.0.2
#
# Both hosts run the same switch: two rvswitchd (vxlan port, key 100, NORMAL), or two
# Open vSwitch (scripts/ovs-tunnel-peer.sh: br-phy holding the underlay address, br-int
# with the VM port and a vxlan port, NORMAL — OVS's documented userspace tunnelling).
# VM MTU 1450. Measured per side: TCP (iperf3, 1 stream, 5 s) with the VMs' TSO/GSO
# off and on (OVS with other_config:userspace-tso-enable=true for "on", as the shared
# harness's usertso variant; without it OVS forwards veth partial checksums unfixed), 64-byte UDP frames delivered (iperf3 -u, 18-byte payload, unlimited rate,
# 5 s; Mpps received), and ping RTT (200 x 10 ms).
#
#   bench/tunnel.sh [RUNS]      # default 3 (needs root); prints every run and the medians
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
bin=$here/target/release/rvswitchd
[ -x "$bin" ] || cargo build --release --manifest-path "$here/Cargo.toml"
if ! command -v ovs-vswitchd >/dev/null || ! command -v bc >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openvswitch-switch bc >/dev/null
    (service openvswitch-switch stop || systemctl stop openvswitch-switch) >/dev/null 2>&1 || true
fi
tag=$$
hv1=rvb-hv1-$tag hv2=rvb-hv2-$tag vm1=rvb-vm1-$tag vm2=rvb-vm2-$tag
work=$(mktemp -d /tmp/rvs-tunnel.XXXXXX)
pids=()
stop_switches() {
    for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
    pids=()
}
cleanup() {
    stop_switches
    for n in $vm1 $vm2 $hv1 $hv2; do
        ip netns pids "$n" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
        ip netns del "$n" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
for n in $hv1 $hv2 $vm1 $vm2; do
    ip netns add "$n"; ip -n "$n" link set lo up
    ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
done
ip -n "$hv1" link add u1 type veth peer name u2 netns "$hv2"
ip -n "$hv1" link set u1 up; ip -n "$hv2" link set u2 up
for i in 1 2; do
    hv=$hv1 vm=$vm1; [ "$i" = 2 ] && hv=$hv2 vm=$vm2
    ip -n "$hv" link add p1 type veth peer name eth0 netns "$vm"
    ip -n "$hv" link set p1 up
    ip -n "$vm" link set eth0 mtu 1450 up
    ip -n "$vm" addr add "10.0.0.$i/24" dev eth0
done

underlay_addrs() {   # (re)assign the underlay addresses on the veths
    ip -n "$hv1" addr flush dev u1; ip -n "$hv2" addr flush dev u2
    ip -n "$hv1" addr add 10.99.0.1/24 dev u1; ip -n "$hv2" addr add 10.99.0.2/24 dev u2
    # OVS's br-phy answered for the address with its own MAC: forget it.
    ip -n "$hv1" neigh flush all; ip -n "$hv2" neigh flush all
}

start_rvs() {
    underlay_addrs
    for i in 1 2; do
        hv=$hv1 peer=10.99.0.2; [ "$i" = 2 ] && hv=$hv2 peer=10.99.0.1
        cat > "$work/rvs$i.toml" <<CFG
[daemon]
control_socket = "$work/rvs$i.ctl"
stats_listen = ""
[[bridge]]
name = "br0"
internal_port = false
fail_mode = "standalone"
restore_flows = false
[[bridge.port]]
name = "p1"
ofport = 1
[[bridge.port]]
name = "vx0"
type = "vxlan"
remote_ip = "$peer"
key = 100
ofport = 2
CFG
        ip netns exec "$hv" "$bin" --config "$work/rvs$i.toml" --log-file "$work/rvs$i.log" \
            >/dev/null 2>&1 &
        pids+=($!)
    done
    for i in 1 2; do
        for _ in $(seq 100); do [ -S "$work/rvs$i.ctl" ] && break; sleep 0.1; done
    done
}

start_ovs() {
    underlay_addrs
    for i in 1 2; do
        hv=$hv1 peer=10.99.0.2 dev=u1; [ "$i" = 2 ] && hv=$hv2 peer=10.99.0.1 dev=u2
        rm -rf "$work/ovs$i"; mkdir -p "$work/ovs$i"
        OVS_PEER_DIR=$work/ovs$i ip netns exec "$hv" bash "$here/scripts/ovs-tunnel-peer.sh" \
            vxlan "$dev" "10.99.0.$i/24" "$peer" 100 p1 > "$work/ovs$i.out" 2>&1 &
        pids+=($!)
    done
    for i in 1 2; do
        for _ in $(seq 300); do grep -q '] up:' "$work/ovs$i.out" 2>/dev/null && break; sleep 0.1; done
        grep -q '] up:' "$work/ovs$i.out" || { echo "OVS $i did not start:"; cat "$work/ovs$i.out"; exit 1; }
    done
}

offloads() {   # on|off for the VMs' TSO/GSO/checksum offloads
    for vm in $vm1 $vm2; do
        ip netns exec "$vm" ethtool -K eth0 tso "$1" gso "$1" tx "$1" >/dev/null 2>&1 || true
    done
}

connected() {
    for _ in $(seq 50); do
        ip netns exec "$vm1" ping -c 1 -W 1 10.0.0.2 >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "no connectivity" >&2; return 1
}

tcp() {        # Gbit/s of one 5 s iperf3 stream vm1 -> vm2
    ip netns exec "$vm2" iperf3 -s -D -1 >/dev/null; sleep 0.3
    ip netns exec "$vm1" iperf3 -c 10.0.0.2 -t 5 -J |
        python3 -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))' \
        2>/dev/null || echo 0
}

udp_rtt() {    # prints: udp_mpps rtt_us
    ip netns exec "$vm2" iperf3 -s -D -1 >/dev/null; sleep 0.3
    local udp rtt
    udp=$(ip netns exec "$vm1" iperf3 -c 10.0.0.2 -u -b 0 -l 18 -t 5 -J |
        python3 -c 'import json,sys; e=json.load(sys.stdin)["end"]["sum"]; print("%.4f" % ((e["packets"]-e["lost_packets"])/e["seconds"]/1e6))' \
        2>/dev/null || echo 0)
    rtt=$(ip netns exec "$vm1" ping -q -c 200 -i 0.01 10.0.0.2 |
        awk -F/ '/^rtt/ {printf "%.0f", $5*1000}')
    echo "$udp ${rtt:-0}"
}

measure_rvs() {   # prints: tcp_off tcp_on udp_mpps rtt_us
    start_rvs
    if ! connected; then
        tail -n 5 "$work"/rvs*.log >&2
        for i in 1 2; do ovs-appctl -t "$work/rvs$i.ctl" tnl/ports/show >&2 || true; done
        stop_switches; echo "0 0 0 0"; return
    fi
    offloads off; local off; off=$(tcp)
    offloads on; local on; on=$(tcp)
    offloads off; local ur; ur=$(udp_rtt)
    stop_switches
    echo "$off $on $ur"
}

measure_ovs() {   # the same; TSO on needs OVS's userspace-tso-enable (a restart)
    OVS_PEER_TSO=0 start_ovs; offloads off
    connected || { stop_switches; echo "0 0 0 0"; return; }
    local off; off=$(tcp); local ur; ur=$(udp_rtt)
    stop_switches
    OVS_PEER_TSO=1 start_ovs; offloads on
    local on=0; connected && on=$(tcp)
    stop_switches
    offloads off
    echo "$off $on $ur"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

: > "$work/rvs.res"; : > "$work/ovs.res"
for r in $(seq "$runs"); do
    for side in rvs ovs; do
        res=$("measure_$side")
        echo "run $r $side: tcp_tso_off=${res%% *} Gbit/s, $(echo "$res" | awk '{print "tcp_tso_on=" $2 " Gbit/s, udp64=" $3 " Mpps, rtt=" $4 " us"}')"
        echo "$res" >> "$work/$side.res"
    done
done
echo
printf '%-22s %12s %12s %8s\n' metric rvswitchd ovs ratio
for col in 1:tcp_tso_off_gbps 2:tcp_tso_on_gbps 3:udp64_mpps 4:rtt_us; do
    c=${col%%:*} name=${col#*:}
    a=$(awk "{print \$$c}" "$work/rvs.res" | median)
    b=$(awk "{print \$$c}" "$work/ovs.res" | median)
    if [ "$name" = rtt_us ]; then ratio=$(echo "scale=2; $b / $a" | bc 2>/dev/null || echo -); else
        ratio=$(echo "scale=2; $a / $b" | bc 2>/dev/null || echo -); fi
    printf '%-22s %12s %12s %8s\n' "$name" "$a" "$b" "${ratio}x"
done
echo "(ratio: how many times better rvswitchd is; for rtt, OVS's / ours)"
