#!/usr/bin/env bash
# Quick, rvswitchd-only flow-mod measurement for iterating on the OpenFlow agent
# (the side-by-side harness gives the comparable figures; this one skips OVS and
# the topology). Same rule files as the harness: N distinct nw_src rules.
#
#   bench/flowmod.sh [N ...]      # default: 10000 100000
#
# Prints per N: add-flows, dump-flows and del-flows wall time (with the client's
# CPU time for dump-flows, which bounds what the switch can win) and the daemon's
# RSS with N rules installed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
bin=$here/target/release/rvswitchd
[ -x "$bin" ] || cargo build --release --manifest-path "$here/Cargo.toml"
work=$(mktemp -d /tmp/rvs-flowmod.XXXXXX)
listen=127.0.0.1:${FLOWMOD_PORT:-36699}
"$bin" --dpid 1 --listen "$listen" --ports "" --unixctl "$work/ctl" --log-file "$work/log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
ofc() { ovs-ofctl -O OpenFlow13 "$@" "tcp:$listen"; }
for _ in $(seq 100); do ovs-ofctl -O OpenFlow13 show "tcp:$listen" >/dev/null 2>&1 && break; sleep 0.1; done
rss() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status"; }
echo "idle RSS: $(rss) MB"
for n in "${@:-10000 100000}"; do
    for m in $n; do
        flowmod_rules "$m" > "$work/of-$m.of"
        t0=$EPOCHREALTIME; ovs-ofctl -O OpenFlow13 add-flows "tcp:$listen" "$work/of-$m.of"; t1=$EPOCHREALTIME
        sleep 0.5
        r=$(rss)
        t2=$EPOCHREALTIME
        client=$( { /usr/bin/time -f "%U %S" ovs-ofctl -O OpenFlow13 dump-flows "tcp:$listen" > "$work/dump.txt"; } 2>&1 | tail -1)
        t3=$EPOCHREALTIME
        got=$(grep -c 'priority=100' "$work/dump.txt" || true)
        t4=$EPOCHREALTIME; ofc del-flows; t5=$EPOCHREALTIME
        printf "n=%s add=%.3fs dump=%.3fs (client user/sys %s) del=%.3fs rss=%sMB installed=%s\n" \
            "$m" "$(echo "$t1 - $t0" | bc)" "$(echo "$t3 - $t2" | bc)" "$client" \
            "$(echo "$t5 - $t4" | bc)" "$r" "$got"
    done
done
