#!/bin/bash
# staged-network.pcap: a "span port" view of a small LAN with one Kaspersky
# Security Center, an internal update mirror, a managed and an unmanaged
# endpoint, a forwarding resolver, a client that only resolves, a person
# browsing kaspersky.com and a host that connects without SNI. Used to test
# install discovery (per-host verdicts), not single-name extraction.
#
# Topology (every namespace is created here and deleted on exit; no default
# route anywhere, so nothing can leave them):
#
#   LAN 10.66.0.0/24, Linux bridge "lan" in namespace kp<pid>b  <- captured
#     gw 10.66.0.1, ksc .10, mirror .11, managed .21, unmanaged .22,
#     client1 .31, browser .41, nosni .51, resolver .53
#   "internet" 10.99.0.0/24 + 8.8.8.8, bridge "net" in kp<pid>b (not captured)
#     gw 10.99.0.1, upstream DNS .53, Kaspersky servers .20 .21 .101 .105,
#     website .30, public resolver 8.8.8.8
#   gw forwards between the two; LAN hosts route only 10.99.0.0/24 and
#   8.8.8.8/32 via gw.
#
# tcpdump runs on the "lan" bridge device (promiscuous, so it sees frames the
# bridge forwards between its ports): one capture, one copy of each frame,
# in time order. IPv6 is disabled, neighbours are static (no ARP), TX
# checksum offload is off on every veth (valid checksums).
. "$(dirname "$0")/lib.sh"
OUT="$PCAP_DIR/staged-network.pcap"
LIFE=120   # seconds any background process may live (timeout)

NSB="${TAG}b"
ALL_NS=("$NSB")
declare -A MAC   # address -> MAC of the veth holding it
declare -A IFOF  # address -> interface name inside its namespace

. "$MAKE_DIR/staged-lib.sh"
trap staged_cleanup EXIT INT TERM

# ---------------------------------------------------------------- topology
ip netns add "$NSB"
ip netns exec "$NSB" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
for br in lan net; do
    # No STP: ports forward at once. No multicast querier (default).
    ip netns exec "$NSB" ip link add "$br" type bridge stp_state 0 forward_delay 0
    ip netns exec "$NSB" ip link set "$br" up
done

GW=10.66.0.1; GW_NET=10.99.0.1
KSC=10.66.0.10; MIRROR=10.66.0.11; MANAGED=10.66.0.21; UNMANAGED=10.66.0.22
CLIENT1=10.66.0.31; BROWSER=10.66.0.41; NOSNI=10.66.0.51; RESOLVER=10.66.0.53
UPSTREAM=10.99.0.53; PUBDNS=8.8.8.8
K_DS=10.99.0.20; K_KSN=10.99.0.21; K_DNL01=10.99.0.101; K_DNL05=10.99.0.105
K_S01=10.99.0.102; WEB=10.99.0.30; K_ACT=10.99.0.40

LAN_HOSTS=(ksc:$KSC mir:$MIRROR mgd:$MANAGED unm:$UNMANAGED c1:$CLIENT1
           brw:$BROWSER nos:$NOSNI res:$RESOLVER)
LAN_ADDRS=($GW)
new_ns gw
nx gw sysctl -qw net.ipv4.ip_forward=1
attach gw eth0 lan "$GW/24"
attach gw eth1 net "$GW_NET/24"
for h in "${LAN_HOSTS[@]}"; do
    s=${h%%:*}; a=${h#*:}
    new_ns "$s"
    attach "$s" eth0 lan "$a/24"
    LAN_ADDRS+=("$a")
done

new_ns up;  attach up  eth0 net "$UPSTREAM/24"
new_ns web; attach web eth0 net "$WEB/24"
new_ns ks;  attach ks  eth0 net "$K_DS/24"
for a in $K_KSN $K_DNL01 $K_DNL05; do extra_addr ks eth0 "$a/24"; done
new_ns pub; attach pub eth0 net "$PUBDNS/32"
NET_SERVERS=($UPSTREAM $WEB $K_DS $K_KSN $K_DNL01 $K_DNL05 $PUBDNS)

# Routes: LAN hosts reach only the "internet" /24 and 8.8.8.8 through gw.
for h in "${LAN_HOSTS[@]}"; do
    s=${h%%:*}; a=${h#*:}
    nx "$s" ip route add 10.99.0.0/24 via "$GW" dev eth0
    nx "$s" ip route add "$PUBDNS/32" via "$GW" dev eth0
    for o in "${LAN_ADDRS[@]}"; do
        [ "$o" = "$a" ] || neigh "$s" eth0 "$o"
    done
done
nx gw ip route add "$PUBDNS/32" dev eth1
neigh gw eth0 "${LAN_ADDRS[@]:1}"
neigh gw eth1 "${NET_SERVERS[@]}"
for s in up web ks; do
    nx "$s" ip route add 10.66.0.0/24 via "$GW_NET" dev eth0
    neigh "$s" eth0 "$GW_NET"
done
nx pub ip route add "$GW_NET/32" dev eth0
nx pub ip route add 10.66.0.0/24 via "$GW_NET" dev eth0
neigh pub eth0 "$GW_NET"

# ---------------------------------------------------------------- servers
make_cert server
CRT="$WORK/server.crt"; KEY="$WORK/server.key"

# 1. KSC: TLS on TCP 13000 (RFC 8446), datagrams on UDP 15000.
bg "${TAG}ksc" timeout $LIFE openssl s_server -4 -quiet -accept 13000 -www -cert "$CRT" -key "$KEY"
bg "${TAG}ksc" timeout $LIFE socat -u UDP4-RECVFROM:15000,bind=$KSC,fork /dev/null
wait_port "${TAG}ksc" tcp 13000
wait_port "${TAG}ksc" udp 15000

# 2. Internal update mirror: files whose first bytes are the Kaspersky update
# magics (Zeek general.sig: KLZF = x-kaspavdb, DIFF = bindiff).
MIR_DIR="$WORK/mirror"
mkdir -p "$MIR_DIR/bases/av/kdb/i386" "$MIR_DIR/index"
{ printf 'KLZF'; head -c 700 /dev/urandom; } >"$MIR_DIR/bases/av/kdb/i386/kdb-i386-0607g.klz"
{ printf 'DIFF'; head -c 300 /dev/urandom; } >"$MIR_DIR/index/u1313g.xml.dif"
bg "${TAG}mir" timeout $LIFE python3 -m http.server --bind "$MIRROR" --directory "$MIR_DIR" 80
wait_port "${TAG}mir" tcp 80

# 5. Resolver: dnsmasq forwarder to the upstream; knows the internal names.
dns() {  # dns SHORT LISTEN ARGS...: dnsmasq on one address, no /etc files
    local s=$1 addr=$2; shift 2
    bg "${TAG}$s" timeout $LIFE dnsmasq --keep-in-foreground --no-resolv --no-hosts \
        --no-poll --pid-file= --user=root --bind-interfaces --listen-address="$addr" \
        --except-interface=lo --log-facility=- --log-queries "$@"
    wait_port "${TAG}$s" udp 53
}
dns res "$RESOLVER" --server="$UPSTREAM" --local-ttl=300 \
    --host-record=kav-mirror.corp.example,$MIRROR \
    --host-record=ksc.corp.example,$KSC --local=/corp.example/
# Upstream: authoritative for the Kaspersky names; TTL 300 on every answer.
dns up "$UPSTREAM" --local-ttl=300 \
    --host-record=ds.kaspersky.com,$K_DS \
    --host-record=dc1.ksn.kaspersky-labs.com,$K_KSN \
    --host-record=dnl-01.geo.kaspersky.com,$K_DNL01 \
    --host-record=dnl-05.geo.kaspersky.com,$K_DNL05 \
    --host-record=s01.upd.kaspersky.com,$K_S01 \
    --host-record=www.kaspersky.com,$WEB \
    --host-record=support.kaspersky.com,$WEB \
    --local=/kaspersky.com/ --local=/kaspersky-labs.com/
# "Public resolver" 8.8.8.8 (only inside these namespaces).
dns pub "$PUBDNS" --local-ttl=300 \
    --host-record=activation-v2.kaspersky.com,$K_ACT --local=/kaspersky.com/

# "Internet" Kaspersky servers: TLS on 443 (all addresses), HTTP update
# server on dnl-01, a bare TCP sink on dnl-05:80.
bg "${TAG}ks" timeout $LIFE openssl s_server -4 -quiet -accept 443 -www -cert "$CRT" -key "$KEY"
DNL_DIR="$WORK/dnl"
mkdir -p "$DNL_DIR/bases/av/kdb/i386"
{ printf 'KLZF'; head -c 500 /dev/urandom; } >"$DNL_DIR/bases/av/kdb/i386/kdb-i386-0607g.klz"
bg "${TAG}ks" timeout $LIFE python3 -m http.server --bind "$K_DNL01" --directory "$DNL_DIR" 80
bg "${TAG}ks" timeout $LIFE socat -u TCP4-LISTEN:80,bind=$K_DNL05,fork,reuseaddr /dev/null
bg "${TAG}web" timeout $LIFE openssl s_server -4 -quiet -accept 443 -www -cert "$CRT" -key "$KEY"
wait_port "${TAG}ks" tcp 443
wait_port "${TAG}ks" tcp 80
wait_port "${TAG}web" tcp 443
sleep 0.5

# ---------------------------------------------------------------- capture
LOG="$WORK/tcpdump.log"
ip netns exec "$NSB" timeout $LIFE tcpdump -n -U --immediate-mode -i lan -w "$OUT" \
    "ip and not igmp" 2>"$LOG" &
CAP_PID=$!
BG_PIDS+=($CAP_PID)
for i in $(seq 50); do grep -q "listening on" "$LOG" 2>/dev/null && break; sleep 0.1; done
sleep 0.3

T=10                                    # per-client-command timeout, seconds
step() { sleep 0.4; }                   # distinct timestamps between events
q() {  # q SHORT SERVER NAME: one A query, UDP only (RFC 1035 §4.2.1)
    nx "$1" timeout $T kdig +timeout=2 +retry=0 +notcp +noall +answer "@$2" "$3" A || true
}
sc() {  # sc SHORT ADDR:PORT [s_client args]: one TLS handshake, then close
    nx "$1" timeout $T openssl s_client -connect "$2" "${@:3}" </dev/null >/dev/null 2>&1 || true
}
get() {  # get SHORT curl args...
    nx "$1" timeout $T curl -s -o /dev/null "${@:2}" || true
}

# 3. managed: agent -> KSC (TLS on 13000, no name), UDP 15000, then updates
# from the internal mirror. It never resolves a Kaspersky name.
# (s_client without -quiet: it sends the line, then closes on stdin EOF)
printf 'klnagent-sync\n' | nx mgd timeout $T openssl s_client -noservername \
    -connect "$KSC:13000" >/dev/null 2>&1 || true
step
printf 'klnagent-ping' | nx mgd timeout $T socat -u - UDP4-SENDTO:$KSC:15000 || true
step
q mgd "$RESOLVER" kav-mirror.corp.example
step
get mgd --resolve kav-mirror.corp.example:80:$MIRROR \
    http://kav-mirror.corp.example/bases/av/kdb/i386/kdb-i386-0607g.klz \
    -o /dev/null http://kav-mirror.corp.example/index/u1313g.xml.dif
step

# 4. unmanaged: resolves and contacts Kaspersky servers itself.
q unm "$RESOLVER" ds.kaspersky.com
get unm -k --resolve ds.kaspersky.com:443:$K_DS https://ds.kaspersky.com/
step
q unm "$RESOLVER" dc1.ksn.kaspersky-labs.com
sc unm "$K_KSN:443" -servername dc1.ksn.kaspersky-labs.com
step
q unm "$RESOLVER" dnl-01.geo.kaspersky.com
get unm --resolve dnl-01.geo.kaspersky.com:80:$K_DNL01 \
    http://dnl-01.geo.kaspersky.com/bases/av/kdb/i386/kdb-i386-0607g.klz
step
# the public-resolver fallback (research §0 item 2): straight to 8.8.8.8
q unm "$PUBDNS" activation-v2.kaspersky.com
step

# 5. client1 asks the resolver; the resolver forwards upstream. No connection.
q c1 "$RESOLVER" s01.upd.kaspersky.com
step

# 6. browser: a person visiting the website (resolves, then HTTPS).
q brw "$RESOLVER" www.kaspersky.com
get brw -k --resolve www.kaspersky.com:443:$WEB https://www.kaspersky.com/
step
q brw "$RESOLVER" support.kaspersky.com
get brw -k --resolve support.kaspersky.com:443:$WEB https://support.kaspersky.com/
step

# 7. nosni: resolves dnl-05, then a ClientHello without server_name and a
# plain TCP connection carrying non-HTTP bytes, both to the answered address.
q nos "$RESOLVER" dnl-05.geo.kaspersky.com
step
sc nos "$K_DNL05:443" -noservername
step
printf 'x\n' | nx nos timeout $T socat -u - TCP4:$K_DNL05:80 || true

sleep 1.2
kill -INT "$CAP_PID" 2>/dev/null || true
wait "$CAP_PID" 2>/dev/null || true
echo "wrote $OUT"
