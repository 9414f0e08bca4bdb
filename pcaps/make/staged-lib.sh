#!/bin/bash
# Helpers shared by the staged-network captures (staged-network.sh,
# staged-enterprise.sh): namespaces joined to bridges in one namespace
# kp<pid>b, with static neighbours. Source it after lib.sh; do not run it.
#
# The caller declares, before using these:
#   NSB     the bridge namespace ("${TAG}b"), already created;
#   ALL_NS  an array of the namespaces to delete on exit (new_ns adds to it);
#   MAC     an associative array, address -> MAC of the veth holding it;
#   IFOF    an associative array, address -> interface name in its namespace.
# and sets `trap staged_cleanup EXIT INT TERM`.

# /etc/netns/<ns> folders made by the caller (resolv.conf for programs that
# read /etc/resolv.conf); staged_cleanup removes them.
NETNS_ETC=()

# staged_cleanup: stops the background processes (TERM, then KILL), deletes
# every namespace and /etc/netns folder made, and the work folder.
staged_cleanup() {
    local n
    stop_background
    for n in "${ALL_NS[@]}"; do
        ip netns del "$n" 2>/dev/null || true
    done
    if [ ${#NETNS_ETC[@]} -gt 0 ]; then
        for n in "${NETNS_ETC[@]}"; do
            rm -rf "/etc/netns/$n"
        done
        rmdir /etc/netns 2>/dev/null || true
    fi
    rm -rf "$WORK"
}

# nx SHORT CMD...: CMD in namespace kp<pid>SHORT.
nx() { local n=$1; shift; ip netns exec "${TAG}$n" "$@"; }

# new_ns SHORT: a namespace kp<pid>SHORT with lo up and IPv6 off.
new_ns() {
    ip netns add "${TAG}$1"
    ALL_NS+=("${TAG}$1")
    nx "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    nx "$1" ip link set lo up
    # No tail-loss probes (RFC 8985 §7): on this loaded 2-core machine they
    # fire after a few ms and add spurious retransmissions to the capture.
    nx "$1" sysctl -qw net.ipv4.tcp_early_retrans=0
}

# attach SHORT IFNAME BRIDGE ADDR/PREFIX: veth IFNAME in kp<pid>SHORT, its
# peer kp<pid>SHORT<last char of IFNAME> a port of BRIDGE in kp<pid>b. TX
# checksum offload off on both ends (valid checksums on the wire).
attach() {
    local s=$1 ifn=$2 br=$3 cidr=$4
    local peer="${TAG}${s}${ifn: -1}"
    ip link add "$ifn" netns "${TAG}$s" type veth peer name "$peer" netns "$NSB"
    ip netns exec "$NSB" sysctl -qw net.ipv6.conf."$peer".disable_ipv6=1
    ip netns exec "$NSB" ethtool -K "$peer" tx off >/dev/null
    ip netns exec "$NSB" ip link set "$peer" master "$br" up
    nx "$s" ethtool -K "$ifn" tx off >/dev/null
    nx "$s" ip addr add "$cidr" dev "$ifn"
    nx "$s" ip link set "$ifn" up
    local a=${cidr%/*}
    MAC[$a]=$(nx "$s" cat /sys/class/net/"$ifn"/address)
    IFOF[$a]=$ifn
}

# extra_addr SHORT IFNAME ADDR/PREFIX: one more address on an attached veth.
extra_addr() {
    nx "$1" ip addr add "$3" dev "$2"
    MAC[${3%/*}]=$(nx "$1" cat /sys/class/net/"$2"/address)
    IFOF[${3%/*}]=$2
}

# neigh SHORT IFNAME ADDR...: permanent neighbour entries (no ARP on the
# wire), in one `ip -batch` per namespace.
neigh() {
    local s=$1 ifn=$2 a; shift 2
    for a in "$@"; do
        echo "neigh replace $a lladdr ${MAC[$a]} dev $ifn nud permanent"
    done | nx "$s" ip -batch -
}
