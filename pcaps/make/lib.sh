#!/bin/bash
# Shared helpers for the capture scripts in this folder. Source it; do not run it.
#
# Network rule: every packet stays inside two network namespaces that this
# library creates ("client" and "server", joined by one veth pair) and deletes
# on exit. Nothing is routed anywhere else: the namespaces have no default route.
#
# Addresses (all inside the namespaces only):
#   client veth  10.77.0.1/24  fd77::1/64
#   server veth  10.77.0.2/24  fd77::2/64
set -euo pipefail

MAKE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PCAP_DIR=$(cd "$MAKE_DIR/.." && pwd)
# Unique names so two runs never collide (veth names must be <= 15 chars).
TAG="kp$$"
NS_C="${TAG}c"
NS_S="${TAG}s"
IF_C="${TAG}c0"
IF_S="${TAG}s0"
C4=10.77.0.1
S4=10.77.0.2
C6=fd77::1
S6=fd77::2
WORK=$(mktemp -d /tmp/kpcap.XXXXXX)
BG_PIDS=()

# stop_background: TERM to every process started with bg (and tcpdump), then
# KILL to what is left.
stop_background() {
    local p
    for p in "${BG_PIDS[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null || true
    done
    sleep 0.3
    for p in "${BG_PIDS[@]:-}"; do
        [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true
    done
}

cleanup() {
    stop_background
    ip netns del "$NS_C" 2>/dev/null || true
    ip netns del "$NS_S" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

inc() { ip netns exec "$NS_C" "$@"; }   # run in the client namespace
ins() { ip netns exec "$NS_S" "$@"; }   # run in the server namespace

# ns_setup [MTU]: create both namespaces and the veth pair.
ns_setup() {
    local mtu=${1:-1500}
    ip netns add "$NS_C"
    ip netns add "$NS_S"
    ip link add "$IF_C" netns "$NS_C" type veth peer name "$IF_S" netns "$NS_S"
    inc ip link set lo up
    ins ip link set lo up
    inc ip link set "$IF_C" mtu "$mtu" up
    ins ip link set "$IF_S" mtu "$mtu" up
    # Real checksums in the captures: no TX checksum offload on the veths.
    inc ethtool -K "$IF_C" tx off >/dev/null
    ins ethtool -K "$IF_S" tx off >/dev/null
    inc ip addr add "$C4/24" dev "$IF_C"
    ins ip addr add "$S4/24" dev "$IF_S"
    if [ "$mtu" -ge 1280 ]; then
        inc ip addr add "$C6/64" dev "$IF_C" nodad
        ins ip addr add "$S6/64" dev "$IF_S" nodad
    fi
    # Static neighbours: no ARP/ND noise in the captures.
    local mc ms
    mc=$(inc cat /sys/class/net/"$IF_C"/address)
    ms=$(ins cat /sys/class/net/"$IF_S"/address)
    inc ip neigh replace "$S4" lladdr "$ms" dev "$IF_C" nud permanent
    ins ip neigh replace "$C4" lladdr "$mc" dev "$IF_S" nud permanent
    if [ "$mtu" -ge 1280 ]; then
        inc ip -6 neigh replace "$S6" lladdr "$ms" dev "$IF_C" nud permanent
        ins ip -6 neigh replace "$C6" lladdr "$mc" dev "$IF_S" nud permanent
    fi
}

# bg NS CMD...: start CMD in namespace NS in the background, remember its pid.
bg() {
    local ns=$1; shift
    ip netns exec "$ns" "$@" &
    BG_PIDS+=($!)
    LAST_PID=$!
}

# cap_start OUT.pcap IFACE FILTER [extra tcpdump args]: capture in the client
# namespace. Sets CAP_PID. Waits until tcpdump is listening.
cap_start() {
    local out=$1 iface=$2 filter=$3; shift 3
    local log="$WORK/tcpdump.$RANDOM.log"
    ip netns exec "$NS_C" timeout 120 tcpdump -n -U --immediate-mode -i "$iface" "$@" -w "$out" "$filter" 2>"$log" &
    CAP_PID=$!
    BG_PIDS+=($CAP_PID)
    local i
    for i in $(seq 50); do
        grep -q "listening on" "$log" 2>/dev/null && break
        sleep 0.1
    done
    sleep 0.3
}

cap_stop() {
    sleep 1.2
    kill -INT "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# wait_port NS PROTO PORT: wait until something listens on PORT in NS.
wait_port() {
    local ns=$1 proto=$2 port=$3 i
    for i in $(seq 50); do
        if ip netns exec "$ns" ss -lnH -"${proto:0:1}" "sport = :$port" | grep -q .; then return 0; fi
        sleep 0.1
    done
    echo "nothing listening on $proto/$port in $ns" >&2
    return 1
}

# dnsmasq_start ARGS...: authoritative-only dnsmasq on the server address,
# never forwarding anywhere (--no-resolv, no servers).
dnsmasq_start() {
    bg "$NS_S" timeout 120 dnsmasq --keep-in-foreground --no-resolv --no-hosts \
        --no-poll --pid-file= --user=root --bind-interfaces \
        --listen-address="$S4" --except-interface=lo --log-facility=- --log-queries \
        "$@"
    wait_port "$NS_S" udp 53
}

# make_cert NAME: self-signed cert+key in $WORK/NAME.{crt,key}
make_cert() {
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=$1" \
        -addext "subjectAltName=DNS:$1" \
        -keyout "$WORK/$1.key" -out "$WORK/$1.crt" 2>/dev/null
}

# tls_server_start PORT: openssl s_server answering HTTP (-www) on the server.
tls_server_start() {
    local port=${1:-443}
    [ -f "$WORK/server.crt" ] || make_cert server
    bg "$NS_S" timeout 120 openssl s_server -quiet -accept "$port" -www \
        -cert "$WORK/server.crt" -key "$WORK/server.key"
    wait_port "$NS_S" tcp "$port"
}

# http_server_start PORT: HTTP/1.1 keep-alive server (httpd.py) on the server.
http_server_start() {
    local port=${1:-80}
    bg "$NS_S" timeout 120 python3 "$MAKE_DIR/httpd.py" --bind "$S4" --port "$port" "${@:2}"
    wait_port "$NS_S" tcp "$port"
}

# chromium_fetch URL RESOLVER_RULES [extra flags]: headless Debian chromium in
# the client namespace, bounded by a timeout. Its only route is the veth.
chromium_fetch() {
    local url=$1 rules=$2; shift 2
    local prof
    prof=$(mktemp -d "$WORK/chrome.XXXXXX")
    inc env HOME="$WORK" timeout -k 2 "${CHROME_TIMEOUT:-20}" chromium --headless --no-sandbox --disable-gpu \
        --no-first-run --disable-background-networking --disable-component-update \
        --disable-sync --user-data-dir="$prof" --ignore-certificate-errors \
        --host-resolver-rules="$rules" "$@" --dump-dom "$url" >/dev/null 2>"$WORK/chromium.log" || true
}
