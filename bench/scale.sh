#!/usr/bin/env bash
# Scale curve, rvswitchd side by side with Open vSwitch 3.1 in one run (issue 13):
# how the cost of OpenFlow rules and of datapath megaflows grows with their number.
#
#   bench/scale.sh [--sizes 10000,100000,1000000] [--parts rules,megaflows|curve]
#                  [--out DIR] [--nobundle-max N] [--bundle-chunk N] [--flow-limit N] [--fs-tmax S]
#   (needs root; defaults in brackets, --sizes also from SIZES=)
#
# Environment: RVSWITCHD_BIN (default $here/target/release/rvswitchd, built with
# `cargo build --release` only when that default is missing), SHARED_BENCH (the
# shared harness directory, default $here/../shared/bench).
#
# Part "rules": for each N a fresh switch per measurement, OVS and rvswitchd
# alternating (which one goes first alternates with N), in one network namespace
# with two veth ports, started as bench/bundle.sh does (OVS through the harness's
# sut_ovs.sh, rvswitchd through the benchmark-contract flags). N distinct
# `priority=100,ip,nw_src=…,nw_dst=…,actions=output:2` rules:
#   * `ovs-ofctl -O OpenFlow13 --bundle add-flows` (wall time, client CPU,
#     switch CPU), then the switch's VmRSS (OVS: ovs-vswitchd), `dump-flows`
#     wall time (and the client's CPU time for it), the number of rules the dump
#     shows, `del-flows` wall time;
#   * for N > --bundle-chunk (250000), on another fresh switch: the same N rules
#     as consecutive bundles of at most that many rules (rvswitchd bounds what one
#     connection's open bundles may hold to 192 MiB of messages, about 1.5M of
#     these FLOW_MODs, and a bridge's connections to 384 MiB together; before
#     2026-12-02 the bound was 64 MiB and one bundle of 1M was refused with
#     OFPBFC_MSG_TOO_MANY; OVS sets no bound), then the same RSS / dump / del figures;
#   * for N <= --nobundle-max (100000): on another fresh switch, the same
#     add-flows without --bundle (one flow-mod per message, barrier at the end).
# A failed ovs-ofctl call keeps its error output in err-SIDE-N-MODE.log.
# No classifier lookup time is measured: neither switch offers a timing tool for
# one OpenFlow lookup (ofproto/trace is dominated by the client process), and the
# rule set is one exact-match subtable, which says nothing about lookup growth.
#
# Part "megaflows": the shared harness itself, once per N:
#   sidebyside.sh --only flowsetup,reval --runs 1 --nflows N --fs-tmax S
# with the datapath flow limit raised on both sides to --flow-limit (2000000):
# OVS_FLOW_LIMIT for the harness's OVS (sut_ovs.sh reads it from the environment
# the harness passes on), RVSWITCHD__DATAPATH__FLOW_LIMIT for rvswitchd. Max idle
# stays at the contract's 600 s on both. The figures are the harness's own
# (results.tsv of each run, kept under --out), plus the peak datapath flow count
# of its flow-setup series (OVS's adaptive flow limit can take flows away again).
#
# Re-running with --parts rules (or megaflows) and an existing --out replaces only
# that part's rows in results.tsv; curve.md is always drawn from all rows.
#
# Output (in --out, default a new /tmp/rvs-scale.XXXXXX): results.tsv (part, side,
# N, metric, value), curve.md (the tables: per size the figures and figure / N),
# rules.log, megaflows-N/ (the harness's directory), machine.txt.
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
sizes=${SIZES:-10000,100000,1000000}
parts=rules,megaflows
out=""
nobundle_max=100000
bundle_chunk=250000
flow_limit=2000000
fs_tmax=""
while [ $# -gt 0 ]; do
    case $1 in
      --sizes) sizes=$2; shift 2 ;;
      --parts) parts=$2; shift 2 ;;
      --out) out=$2; shift 2 ;;
      --nobundle-max) nobundle_max=$2; shift 2 ;;
      --bundle-chunk) bundle_chunk=$2; shift 2 ;;
      --flow-limit) flow_limit=$2; shift 2 ;;
      --fs-tmax) fs_tmax=$2; shift 2 ;;
      -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
      *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
isint() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }
for n in ${sizes//,/ }; do isint "$n" 100 1000000 || { echo "--sizes: each 100..1000000 (the OpenFlow table holds 1M rules, the harness 1M tuples)" >&2; exit 2; }; done
isint "$nobundle_max" 0 1000000 || { echo "--nobundle-max: 0..1000000" >&2; exit 2; }
isint "$bundle_chunk" 0 1000000 || { echo "--bundle-chunk: 0..1000000 (0: never split)" >&2; exit 2; }
isint "$flow_limit" 1000 10000000 || { echo "--flow-limit: 1000..10000000" >&2; exit 2; }
[ -z "$fs_tmax" ] || isint "$fs_tmax" 5 600 || { echo "--fs-tmax: 5..600" >&2; exit 2; }
want() { case ",$parts," in *",$1,"*) return 0 ;; esac; return 1; }
for p in ${parts//,/ }; do case $p in rules|megaflows|curve) ;; *) echo "--parts: rules,megaflows or curve (only redraw curve.md)" >&2; exit 2 ;; esac; done
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 2; }

if [ -n "${RVSWITCHD_BIN:-}" ]; then
    bin=$RVSWITCHD_BIN
    [ -x "$bin" ] || { echo "RVSWITCHD_BIN=$bin is not an executable" >&2; exit 1; }
else
    bin=$here/target/release/rvswitchd
    [ -x "$bin" ] || cargo build --release --manifest-path "$here/Cargo.toml"
fi
bin=$(readlink -f "$bin")
shared=${SHARED_BENCH:-$here/../shared/bench}
sut_ovs=$shared/sut_ovs.sh
harness=$shared/sidebyside.sh
[ -f "$sut_ovs" ] && [ -x "$harness" ] || { echo "no shared harness in $shared (set SHARED_BENCH=)" >&2; exit 1; }
if ! command -v ovs-vswitchd >/dev/null || ! command -v bc >/dev/null || [ ! -x /usr/bin/time ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openvswitch-switch bc time >/dev/null
    (service openvswitch-switch stop || systemctl stop openvswitch-switch) >/dev/null 2>&1 || true
fi

[ -n "$out" ] || out=$(mktemp -d /tmp/rvs-scale.XXXXXX)
mkdir -p "$out"; out=$(cd "$out" && pwd)
res=$out/results.tsv
# keep the rows of the parts not run this time (a re-run of one part)
if [ -f "$res" ]; then
    awk -F'\t' -v p=",$parts," 'index(p, "," $1 ",") == 0' "$res" > "$res.keep"; mv "$res.keep" "$res"
else : > "$res"; fi
work=$(mktemp -d /tmp/rvs-scale-w.XXXXXX)
ns=rvb-scale-$$
listen=127.0.0.1:36678
pid="" hpid=""
cleanup() {
    trap '' INT TERM
    if [ -n "$hpid" ] && kill -0 "$hpid" 2>/dev/null; then
        kill -TERM "$hpid" 2>/dev/null; wait "$hpid" 2>/dev/null || true   # the harness cleans up after itself
    fi
    if ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns"; then
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

want curve || {
    echo "date_utc=$(date -u +%FT%TZ)"
    echo "host_nproc=$(nproc)"
    echo "kernel=$(uname -r)"
    echo "cpu_model=$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
    echo "mem_total=$(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "ovs=$(ovs-vswitchd --version | head -1)"
    echo "rvswitchd_bin=$bin (sha256 $(sha256sum "$bin" | cut -c1-16), mtime $(date -u -r "$bin" +%FT%TZ))"
    echo "script_commit=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown) (the checkout holding this script; RVSWITCHD_BIN may come from another)"
    echo "loadavg_at_start=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "args=--sizes $sizes --parts $parts --nobundle-max $nobundle_max --bundle-chunk $bundle_chunk --flow-limit $flow_limit --fs-tmax ${fs_tmax:-auto}"
    echo
} >> "$out/machine.txt"   # one block per invocation

rec() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >> "$res"; }   # part side N metric value
fcalc() { awk "BEGIN{x = $1; printf \"%.6g\", x}"; }
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

# ------------------------------------------------------------------ part 1: rules
inns() { ip netns exec "$ns" "$@"; }
ofc=(ip netns exec "$ns" ovs-ofctl -O OpenFlow13 --timeout=900)   # an array: /usr/bin/time runs it
swpid() {   # the switch process itself (OVS: ovs-vswitchd, not ovsdb-server or the wrapper)
    local p want=rvswitchd
    [ "$1" = ovs ] && want=ovs-vswitchd
    for p in $(ip netns pids "$ns"); do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$want" ] && { echo "$p"; return 0; }
    done
    return 1
}
rss_mb() { awk '/^VmRSS/{printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); printf "%.3f", ($12 + $13) / hz}' "/proc/$1/stat"; }
start() {   # side -> a fresh switch in the namespace
    local side=$1 o=$work/out-$1
    mkdir -p "$o"
    export B_PORTS="p1 p2" B_DPID=1 B_DPID_HEX=0000000000000001 B_LISTEN=$listen \
        B_CTL=$work/ctl-$side B_OUT=$o
    if [ "$side" = ovs ]; then
        inns bash "$sut_ovs" >> "$o/console.log" 2>&1 &
    else
        inns "$bin" --dpid 1 --listen "$listen" --ports "p1 p2" --unixctl "$B_CTL" \
            --log-file "$o/rvswitchd.log" >> "$o/console.log" 2>&1 &
    fi
    pid=$!
    for _ in $(seq 600); do
        inns ovs-ofctl -O OpenFlow13 show "tcp:$listen" 2>/dev/null | grep -q '2(p2)' && return 0
        sleep 0.1
    done
    echo "$side did not come up" >&2; tail -20 "$o/console.log" >&2; exit 1
}
stop() {    # every process in the namespace: the switch and its children
    ip netns pids "$ns" | xargs -r kill -TERM 2>/dev/null || true
    for _ in $(seq 50); do [ -z "$(ip netns pids "$ns")" ] && break; sleep 0.1; done
    ip netns pids "$ns" | xargs -r kill -KILL 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
}
ctime() {   # ctime LABEL FILE CMD...: runs CMD (stdout to FILE), prints "wall_s client_cpu_s rc";
    local l=$1 f=$2 t0 t1 c rc=0; shift 2   # on failure its stderr is kept as err-LABEL.log
    t0=$EPOCHREALTIME
    /usr/bin/time -o "$work/time" -f "%U %S" "$@" > "$f" 2> "$work/stderr" || rc=$?
    t1=$EPOCHREALTIME
    if [ "$rc" != 0 ]; then
        grep -v '|timeval|\||coverage|\|^[a-z_0-9]\+ \+[0-9.]\+/sec\|poll_loop' "$work/stderr" | tail -20 > "$out/err-$l.log"
        log "rc=$rc: $*: $(tail -3 "$out/err-$l.log" | head -c 400) (all in err-$l.log)"
    fi
    c=$(awk 'END{print $1 + $2}' "$work/time" 2>/dev/null || echo nan)
    printf '%s %s %s\n' "$(fcalc "$t1 - $t0")" "$c" "$rc"
}
add_rules() {   # add_rules MODE LABEL N: bundle = one --bundle add-flows of the N rules,
    # chunked = consecutive --bundle add-flows of bundle_chunk rules each (timed as one),
    # plain = add-flows without --bundle (one FLOW_MOD per rule, a barrier at the end)
    local mode=$1 l=$2 n=$3 t0 t1 w c rc cc=0 rcs=0 f
    case $mode in
      bundle) ctime "$l" /dev/null "${ofc[@]}" --bundle add-flows "tcp:$listen" "$work/flows-$n" ;;
      plain)  ctime "$l" /dev/null "${ofc[@]}" add-flows "tcp:$listen" "$work/flows-$n" ;;
      chunked)
        rm -f "$work"/chunk-*
        split -l "$bundle_chunk" -d -a 3 "$work/flows-$n" "$work/chunk-"
        t0=$EPOCHREALTIME
        for f in "$work"/chunk-*; do
            read -r w c rc < <(ctime "$l" /dev/null "${ofc[@]}" --bundle add-flows "tcp:$listen" "$f")
            cc=$(fcalc "$cc + $c"); [ "$rc" = 0 ] || rcs=$rc
        done
        t1=$EPOCHREALTIME
        rm -f "$work"/chunk-*
        printf '%s %s %s\n' "$(fcalc "$t1 - $t0")" "$cc" "$rcs" ;;
    esac
}
measure() {   # measure SIDE N MODE: a fresh switch, add the N rules by MODE, then RSS,
    # dump-flows, del-flows; every metric prefixed with MODE_
    local side=$1 n=$2 m=$3 sp c0 c1 wall cc rc got
    start "$side"; sp=$(swpid "$side")
    sleep 0.5
    rec rules "$side" "$n" "${m}_rss_idle_mb" "$(rss_mb "$sp")"
    c0=$(cpu_s "$sp")
    read -r wall cc rc < <(add_rules "$m" "$side-$n-$m" "$n")
    c1=$(cpu_s "$sp")
    rec rules "$side" "$n" "${m}_add_s" "$wall"; rec rules "$side" "$n" "${m}_add_rc" "$rc"
    rec rules "$side" "$n" "${m}_client_cpu_s" "$cc"; rec rules "$side" "$n" "${m}_switch_cpu_s" "$(fcalc "$c1 - $c0")"
    rec rules "$side" "$n" "${m}_flowmods_per_s" "$(fcalc "$n / $wall")"
    sleep 0.5
    rec rules "$side" "$n" "${m}_rss_mb" "$(rss_mb "$sp")"
    c0=$(cpu_s "$sp")
    read -r wall cc rc < <(ctime "$side-$n-$m-dump" "$work/dump" "${ofc[@]}" dump-flows "tcp:$listen")
    c1=$(cpu_s "$sp")
    got=$(grep -c 'priority=100' "$work/dump" || true); rm -f "$work/dump"
    rec rules "$side" "$n" "${m}_dump_s" "$wall"; rec rules "$side" "$n" "${m}_dump_client_cpu_s" "$cc"
    rec rules "$side" "$n" "${m}_dump_switch_cpu_s" "$(fcalc "$c1 - $c0")"; rec rules "$side" "$n" "${m}_installed" "$got"
    read -r wall cc rc < <(ctime "$side-$n-$m-del" /dev/null "${ofc[@]}" del-flows "tcp:$listen")
    rec rules "$side" "$n" "${m}_del_s" "$wall"
    read -r _ _ _ < <(ctime "$side-$n-$m-dump2" "$work/dump" "${ofc[@]}" dump-flows "tcp:$listen")
    rec rules "$side" "$n" "${m}_left_after_del" "$(grep -c 'priority=100' "$work/dump" || true)"; rm -f "$work/dump"
    stop
    log "rules $side N=$n $m: $(awk -F'\t' -v s="$side" -v n="$n" -v p="${m}_" '$1 == "rules" && $2 == s && $3 == n && index($4, p) == 1 {printf "%s=%s ", substr($4, length(p) + 1), $5}' "$res")"
}
rules_one() {   # side N: every mode that applies to N, each on a fresh switch
    local side=$1 n=$2
    measure "$side" "$n" bundle
    [ "$bundle_chunk" -gt 0 ] && [ "$n" -gt "$bundle_chunk" ] && measure "$side" "$n" chunked
    [ "$n" -le "$nobundle_max" ] && measure "$side" "$n" plain
    return 0
}
if want rules; then
    two_port_ns "$ns"
    k=0
    for n in ${sizes//,/ }; do
        flowmod_rules "$n" > "$work/flows-$n"
        if [ $((k % 2)) = 0 ]; then order="ovs rvswitchd"; else order="rvswitchd ovs"; fi
        for side in $order; do rules_one "$side" "$n"; done
        rm -f "$work/flows-$n"
        k=$((k + 1))
    done 2>&1 | tee -a "$out/rules.log"
    ip netns del "$ns"
fi

# ------------------------------------------------------------------ part 2: megaflows
if want megaflows; then
    for n in ${sizes//,/ }; do
        t=${fs_tmax:-$(( n / 5000 < 60 ? 60 : (n / 5000 > 300 ? 300 : n / 5000) ))}
        d=$out/megaflows-$n
        rm -rf "$d"
        log "megaflows N=$n: harness --only flowsetup,reval --runs 1 --nflows $n --fs-tmax $t, flow limit $flow_limit on both sides"
        OVS_FLOW_LIMIT=$flow_limit "$harness" --only flowsetup,reval --runs 1 --nflows "$n" --fs-tmax "$t" --out "$d" \
            --sut-cmd "exec env RVSWITCHD__DATAPATH__FLOW_LIMIT=$flow_limit ${RVSWITCHD_SUT_ENV:-} $bin --dpid \$B_DPID --listen \$B_LISTEN --ports \"\$B_PORTS\" --unixctl \$B_CTL --log-file \$B_OUT/rvswitchd.log" \
            > "$work/harness.log" 2>&1 &
        hpid=$!
        rc=0; wait "$hpid" || rc=$?
        hpid=""
        cp "$work/harness.log" "$d/harness-stderr.log" 2>/dev/null || true
        [ "$rc" = 0 ] || { log "harness exited $rc for N=$n (see $d)"; tail -5 "$work/harness.log" >&2; }
        # the limit really reached OVS? (sut_ovs.sh logs it)
        lim=$(sed -n 's/.*flow-limit=\([0-9]*\).*/\1/p' "$d/ovs/console.log" 2>/dev/null | tail -1)
        rec megaflows ovs "$n" flow_limit_configured "${lim:-unknown}"
        rec megaflows rvswitchd "$n" flow_limit_configured "$flow_limit"
        rec megaflows both "$n" fs_tmax_s "$t"
        for s in ovs sut; do
            f=$d/$s/flowsetup-run1.tsv
            [ -f "$f" ] && rec megaflows "$([ $s = sut ] && echo rvswitchd || echo ovs)" "$n" flows_peak \
                "$(awk 'NR > 1 && $2 > m {m = $2} END{print m + 0}' "$f")"
        done
        [ -f "$d/results.tsv" ] && awk -F'\t' -v n="$n" 'BEGIN{OFS = "\t"} ($1 == "flowsetup" || $1 == "reval") {
            s = ($2 == "sut") ? "rvswitchd" : $2; print "megaflows", s, n, $4, $5}' "$d/results.tsv" >> "$res"
    done
fi

# ------------------------------------------------------------------ the curve
python3 - "$res" "$out/curve.md" <<'PY'
import sys, collections
res, dst = sys.argv[1], sys.argv[2]
v = collections.defaultdict(dict)           # (part, side, n) -> metric -> value
for line in open(res):
    p, s, n, m, x = line.rstrip("\n").split("\t")
    v[(p, s, int(n))][m] = x
def num(x):
    try: return float(x)
    except (TypeError, ValueError): return None
def f(x, d=3):
    return "n/a" if x is None else ("%.*f" % (d, x) if abs(x) < 1e5 else "%.0f" % x)
out = []
def table(title, part, cols, note):
    sizes = sorted({n for (p, s, n) in v if p == part})
    if not sizes: return
    out.append("### " + title + "\n\n" + note + "\n")
    hdr = ["N", "side"] + [c[0] for c in cols]
    out.append("| " + " | ".join(hdr) + " |")
    out.append("|" + "---|" * len(hdr))
    per = {}
    for n in sizes:
        for s in ("ovs", "rvswitchd"):
            d = v.get((part, s, n))
            if not d: continue
            row = [str(n), s]
            for name, fn in cols:
                x = fn(d, n)
                row.append(x if isinstance(x, str) else f(x))
                per[(s, n, name)] = x
            out.append("| " + " | ".join(row) + " |")
        r = ["", "**rvswitchd/OVS**"]
        for name, fn in cols:
            a, b = per.get(("ovs", n, name)), per.get(("rvswitchd", n, name))
            r.append("%.2f" % (b / a) if isinstance(a, float) and isinstance(b, float) and a else "")
        out.append("| " + " | ".join(r) + " |")
    out.append("")
    # growth of the per-unit columns from one size to the next: 1.0 = linear
    unit = [c[0] for c in cols if c[0].startswith("/")]
    if unit and len(sizes) > 1:
        out.append("Growth: per-unit cost at N divided by the per-unit cost at the size before (1.0 = linear, "
                   "< 1 better than linear, 2.0 = twice the cost per unit):\n")
        out.append("| N | side | " + " | ".join(unit) + " |")
        out.append("|---|---|" + "---|" * len(unit))
        for i, n in enumerate(sizes[1:]):
            for s in ("ovs", "rvswitchd"):
                row = ["%d / %d" % (n, sizes[i]), s]
                for u in unit:
                    a, b = per.get((s, sizes[i], u)), per.get((s, n, u))
                    row.append("%.2f" % (b / a) if isinstance(a, float) and isinstance(b, float) and a else "")
                out.append("| " + " | ".join(row) + " |")
        out.append("")
def g(m):   # the number, or the raw cell (e.g. "<5000" from the harness), or None
    return lambda d, n: num(d.get(m)) if num(d.get(m)) is not None else d.get(m)
def pn(m, scale):   # figure / N, in a readable unit
    return lambda d, n: (num(d.get(m)) * scale / n) if num(d.get(m)) is not None else None
def inc_b(m, idle):  # (RSS - idle RSS) / N in bytes
    def h(d, n):
        a, b = (m(d, n) if callable(m) else num(d.get(m))), (idle(d, n) if callable(idle) else num(d.get(idle)))
        return None if a is None or b is None else (a - b) * 1048576 / n
    return h
def cnt(m): return lambda d, n: d.get(m, "n/a")
def full(d, n):   # the first way of adding that installed all N rules
    for m in ("bundle", "chunked", "plain"):
        if d.get(m + "_add_rc") == "0" and d.get(m + "_installed") == str(n):
            return m
    return None
def of_full(k, scale=1, per=False):
    def h(d, n):
        m = full(d, n)
        x = num(d.get("%s_%s" % (m, k))) if m else None
        return None if x is None else (x * scale / n if per else x * scale)
    return h
def add(m, per=False):
    def h(d, n):
        if m + "_add_s" not in d: return None
        if d.get(m + "_add_rc") != "0" or d.get(m + "_installed") != str(n):
            return "refused (rc %s, %s installed)" % (d.get(m + "_add_rc"), d.get(m + "_installed")) if not per else None
        x = num(d[m + "_add_s"])
        return x * 1e6 / n if per else x
    return h
table("OpenFlow rules (priority=100,ip,nw_src,nw_dst exact; fresh switch per measurement)", "rules", [
    ("bundle add s", add("bundle")), ("/N bundle µs", add("bundle", True)),
    ("chunked add s", add("chunked")), ("/N chunked µs", add("chunked", True)),
    ("plain add s", add("plain")), ("/N plain µs", add("plain", True)),
    ("from", lambda d, n: full(d, n) or "none"), ("/N add µs", of_full("add_s", 1e6, True)),
    ("flow-mods/s", lambda d, n: (n / of_full("add_s")(d, n)) if of_full("add_s")(d, n) else None),
    ("switch CPU s", of_full("switch_cpu_s")), ("client CPU s", of_full("client_cpu_s")),
    ("RSS MB", of_full("rss_mb")), ("/N RSS B", inc_b(of_full("rss_mb"), of_full("rss_idle_mb"))),
    ("dump s", of_full("dump_s")), ("/N dump µs", of_full("dump_s", 1e6, True)),
    ("dump client CPU s", of_full("dump_client_cpu_s")),
    ("del s", of_full("del_s")), ("/N del µs", of_full("del_s", 1e6, True)),
], "bundle = one `ovs-ofctl -O OpenFlow13 --bundle add-flows` of the N rules (wall); chunked = the same N rules as "
   "consecutive bundles of at most --bundle-chunk rules, on another fresh switch; plain = add-flows without --bundle, "
   "on another fresh switch. The other columns come from the first of bundle, chunked, plain that installed all N "
   "(column 'from'): /N add µs = its add time / N, flow-mods/s = N / its add time; switch CPU = utime+stime of the switch process during the add; "
   "client CPU = ovs-ofctl's own; RSS = VmRSS of the switch process (OVS: ovs-vswitchd) with the N rules, "
   "/N RSS = (RSS - idle RSS) / N; dump = `dump-flows` wall time; del = `del-flows` wall time.")
def per_present(m, k, scale):   # figure / the flows actually present (k: count metric)
    def h(d, n):
        x, c = num(d.get(m)), num(d.get(k))
        return None if x is None or not c else x * scale / c
    return h
def per_flow_s(m):   # seconds per flow -> µs
    return lambda d, n: (num(d.get(m)) * 1e6 / n) if num(d.get(m)) is not None else None
def cpu_ns_pkt(d, n):
    c, m = num(d.get("sw_cpu_pct_traffic")), num(d.get("mflows_delivered_mpps"))
    return None if c is None or not m else c / 100 / (m * 1e6) * 1e9
table("Megaflows (shared harness: flowsetup + reval, one run, flow limit raised on both sides)", "megaflows", [
    ("flows/s to 90 %", g("flows_per_s_to_90pct")), ("t90 s", g("t90_s")), ("t99.9 s", g("t999_s")),
    ("/N t99.9 µs", per_flow_s("t999_s")),
    ("RSS MB", g("rss_mb_dpflows")),
    ("/flow RSS B", lambda d, n: (lambda a, b, c: None if None in (a, b) or not c else (a - b) * 1048576 / c)(
        num(d.get("rss_mb_dpflows")), num(d.get("rss_mb_idle")), num(d.get("flows_idle")))),
    ("RSS all MB", g("rss_all_mb_dpflows")),
    ("reval idle ms", g("dump_ms_idle")), ("/flow idle ns", per_present("dump_ms_idle", "flows_idle", 1e6)),
    ("reval traffic ms", g("dump_ms_traffic")), ("/flow traffic ns", per_present("dump_ms_traffic", "flows_traffic", 1e6)),
    ("dpctl dump s", g("dpctl_dump_s")), ("/flow dpctl µs", per_present("dpctl_dump_s", "dpctl_dump_lines", 1e6)),
    ("Mpps over N", g("mflows_delivered_mpps")), ("CPU ns/pkt", cpu_ns_pkt),
    ("flows peak", cnt("flows_peak")), ("flows final", cnt("flows_final")), ("flows traffic", cnt("flows_traffic")),
    ("flows idle", cnt("flows_idle")),
    ("dump lines", cnt("dpctl_dump_lines")), ("exact ports", cnt("exact_port_flows")),
], "From each run's results.tsv: flows/s to 90 % = 0.9 N / t90; t99.9 = time until 99.9 % of N are in the datapath "
   "(nan = not reached within --fs-tmax; then flows/s to 90 % reads <count/elapsed); flows peak = most datapath flows "
   "seen while setting up, final = at the end of setup, idle = after the idle reval window; RSS with the N flows after the reval windows (largest process; all = every "
   "process of the switch, OVS's ovsdb-server included); the /flow columns divide by the flows actually present "
   "(RSS and idle round: flows idle; round under traffic: flows traffic; dpctl dump: dump lines), not by N; reval = median `upcall/show` dump duration while the N tuples "
   "keep coming / idle; dpctl dump = `ovs-appctl dpctl/dump-flows` wall time (the harness's ovs-appctl call has a 30 s "
   "timeout: compare dump lines with N); Mpps over N = delivered during the traffic window; CPU ns/pkt = switch CPU "
   "time in that window / delivered packets (all datapath work, not a lookup time).")
open(dst, "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
echo "results in $out" >&2
