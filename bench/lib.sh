# Shared by the benchmark scripts (sourced, not run): the workload pieces that
# must be the same in every script so their figures can be compared.

# flowmod_rules N: the N distinct `priority=100,ip,nw_src=…,nw_dst=…` rules the
# shared harness's flowmod workload uses, one per line, on stdout.
flowmod_rules() {
    awk -v n="$1" 'BEGIN{for (i = 0; i < n; i++) printf "priority=100,ip,nw_src=10.%d.%d.%d,nw_dst=10.253.0.2,actions=output:2\n",
        int(i / 65536) % 256, int(i / 256) % 256, i % 256}'
}

# two_port_ns NS: a new network namespace NS with loopback up and two veth
# pairs p1/h1 and p2/h2 (p1 and p2 become the switch's ports 1 and 2).
two_port_ns() {
    local ns=$1 i
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    for i in 1 2; do
        ip -n "$ns" link add "p$i" type veth peer name "h$i"
        ip -n "$ns" link set "p$i" up
        ip -n "$ns" link set "h$i" up
    done
}
