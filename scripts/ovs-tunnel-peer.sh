#!/usr/bin/env bash
# ovs-tunnel-peer.sh - a private Open vSwitch (userspace "netdev" datapath) acting as the
# far end of a VXLAN or Geneve tunnel, for rvswitchd's interop test and tunnel benchmark.
# Runs in the foreground inside the calling network namespace; SIGTERM stops it and
# removes everything it created.
#
# Usage: ovs-tunnel-peer.sh KIND UNDERLAY_IF LOCAL_IP/PREFIX REMOTE_IP VNI VM_PORT...
#   KIND          vxlan | geneve
#   UNDERLAY_IF   the namespace's underlay interface (its address is moved to br-phy)
#   LOCAL_IP/PFX  the underlay address, e.g. 10.99.0.2/24
#   REMOTE_IP     the rvswitchd host's underlay address
#   VNI           tunnel key
#   VM_PORT...    interfaces of local "VMs" to put on br-int
# Environment: OVS_PEER_DIR (default: a new /tmp dir) for db, sockets and logs;
#   OVS_PEER_TSO=1 turns on other_config:userspace-tso-enable.
#
# Layout, as OVS documents userspace tunnelling (Documentation/howto/userspace-tunneling):
# br-phy holds the underlay port and the underlay IP (so OVS's native tunnel code finds
# route and ARP entries through it); br-int holds the VMs and the tunnel port. Both
# bridges run NORMAL.
set -u
KIND=${1:?kind}; UNDERLAY=${2:?underlay if}; LOCAL=${3:?local ip/prefix}; REMOTE=${4:?remote}
VNI=${5:?vni}; shift 5
DIR=${OVS_PEER_DIR:-$(mktemp -d /tmp/ovs-peer.XXXXXX)}
mkdir -p "$DIR"
export OVS_RUNDIR=$DIR OVS_DBDIR=$DIR OVS_LOGDIR=$DIR
VS="ovs-vsctl --db=unix:$DIR/db.sock --timeout=30"
CTL=$DIR/ovs-vswitchd.ctl
DBPID="" VSPID=""
log() { echo "[ovs-tunnel-peer $(date +%T)] $*"; }

stop() {
    for p in $VSPID $DBPID; do
        kill -TERM "$p" 2>/dev/null || continue
        for _ in $(seq 25); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
    done
    wait 2>/dev/null
    # ovs-vswitchd leaves its TAP devices behind (with br-phy's address and
    # route): remove them, then put the underlay address back where it was.
    for d in br-phy br-int ovs-netdev; do ip link del "$d" 2>/dev/null; done
    ip addr add "$LOCAL" dev "$UNDERLAY" 2>/dev/null
    [ -z "${OVS_PEER_DIR:-}" ] && rm -rf "$DIR"
}
trap stop EXIT
trap 'exit 0' TERM INT

case $KIND in vxlan|geneve) ;; *) log "unknown kind $KIND"; exit 2 ;; esac
rm -f "$DIR/conf.db"   # a reused OVS_PEER_DIR starts from a fresh database
ovsdb-tool create "$DIR/conf.db" /usr/share/openvswitch/vswitch.ovsschema || exit 1
ovsdb-server "$DIR/conf.db" --remote="punix:$DIR/db.sock" --unixctl="$DIR/ovsdb-server.ctl" \
    --log-file="$DIR/ovsdb-server.log" -vconsole:off --no-chdir &
DBPID=$!
for _ in $(seq 100); do [ -S "$DIR/db.sock" ] && break; sleep 0.05; done
$VS --no-wait init || exit 1
[ "${OVS_PEER_TSO:-0}" = 1 ] && $VS --no-wait set Open_vSwitch . other_config:userspace-tso-enable=true
ovs-vswitchd "unix:$DIR/db.sock" --unixctl="$CTL" --log-file="$DIR/ovs-vswitchd.log" \
    -vconsole:off --no-chdir &
VSPID=$!
for _ in $(seq 200); do [ -S "$CTL" ] && break; sleep 0.05; done
[ -S "$CTL" ] || { log "ovs-vswitchd did not come up"; exit 1; }

$VS add-br br-phy -- set bridge br-phy datapath_type=netdev fail_mode=standalone \
    other-config:disable-in-band=true || exit 1
$VS add-port br-phy "$UNDERLAY" || exit 1
ip addr del "$LOCAL" dev "$UNDERLAY" 2>/dev/null
ip addr add "$LOCAL" dev br-phy
ip link set br-phy up
$VS add-br br-int -- set bridge br-int datapath_type=netdev fail_mode=standalone \
    other-config:disable-in-band=true || exit 1
$VS add-port br-int tun0 -- set interface tun0 type="$KIND" \
    options:remote_ip="$REMOTE" options:key="$VNI" || exit 1
for p in "$@"; do $VS add-port br-int "$p" || exit 1; done
# OVS learns the route from the kernel; the neighbour is snooped from ARP on br-phy —
# ping once so the first tunnelled frame finds it.
ping -c 1 -W 1 "$REMOTE" >/dev/null 2>&1
log "up: $KIND vni=$VNI local=$LOCAL remote=$REMOTE ports=$* dir=$DIR pid=$VSPID"
wait "$VSPID"
rc=$?
log "ovs-vswitchd exited (status $rc)"
exit "$rc"
