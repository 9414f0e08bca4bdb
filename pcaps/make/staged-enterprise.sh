#!/bin/bash
# staged-enterprise.pcap: a "span port" view of an enterprise LAN with
# Kaspersky Security Center (KSC) traffic in its documented directions, a
# distribution point, a rogue KSC, consoles, agents managed from outside
# (another KSC on the internet, the Cloud Console), a port scan, people who
# only use Kaspersky websites, a mail server's lookups, per-client DNS
# correlation on a shared CDN address, a forward proxy, Kaspersky products
# that are not the antivirus, an OEM engine, update payloads from a mirror,
# from an IP literal in Kaspersky's address space and a decoy DIFF file, the
# public-resolver fallback and an inbound link checker. Each host, what it
# runs and the verdict it should get are in pcaps/README.md
# ("staged-enterprise.pcap"). Used for the verdict model, not name extraction.
#
# Topology (every namespace is created here and deleted on exit; no default
# route anywhere, so nothing can leave them):
#
#   LAN 10.70.0.0/24, Linux bridge "lan" in namespace kp<pid>b  <- captured
#     gw 10.70.0.1 and one namespace per host (.10 … .61, see LAN_HOSTS)
#   "internet", bridge "net" in kp<pid>b (not captured): 203.0.113.0/24
#     (TEST-NET-3, RFC 5737) servers, 198.51.100.10 (TEST-NET-2, an external
#     KSC), 77.74.176.10 and 77.74.177.5 (inside AS200107's 77.74.176.0/21,
#     Kaspersky's address space) and 8.8.8.8, all namespace addresses only
#   gw forwards between the two; LAN hosts route only those prefixes via gw.
#
# tcpdump runs on the "lan" bridge device (promiscuous: it sees what the
# bridge forwards between its ports, and floods of broadcast, multicast and
# unknown unicast): one copy of each LAN frame in time order. IPv6 is off,
# neighbours are static (no ARP in the capture; nmap's own ARP pings are
# filtered out with "ip"), TX checksum offload is off on every veth, IGMP
# is filtered out.
. "$(dirname "$0")/lib.sh"
OUT="$PCAP_DIR/staged-enterprise.pcap"
LIFE=240   # seconds any background process may live (timeout)

NSB="${TAG}b"
ALL_NS=("$NSB")
declare -A MAC   # address -> MAC of the veth holding it
declare -A IFOF  # address -> interface name inside its namespace

. "$MAKE_DIR/staged-lib.sh"
trap staged_cleanup EXIT INT TERM

# resolv SHORT SERVER: /etc/resolv.conf for programs in kp<pid>SHORT that
# resolve through the C library or their own stub (chromium, tinyproxy).
# `ip netns exec` bind-mounts /etc/netns/<ns>/resolv.conf over
# /etc/resolv.conf (ip-netns(8)).
resolv() {
    mkdir -p "/etc/netns/${TAG}$1"
    NETNS_ETC+=("${TAG}$1")
    printf 'nameserver %s\noptions timeout:2 attempts:1\n' "$2" >"/etc/netns/${TAG}$1/resolv.conf"
}

# ---------------------------------------------------------------- addresses
LAN=10.70.0
GW=$LAN.1
KSC=$LAN.10; MIRROR=$LAN.11; DP=$LAN.12; RKSC=$LAN.15; WEBCON=$LAN.20
AGENT1=$LAN.21; AGENT2=$LAN.22; AGENT3=$LAN.23; ADMIN=$LAN.24; EXTAG=$LAN.25
CLOUDAG=$LAN.26; ROGUEAG=$LAN.27; SCANNER=$LAN.30; PERSON=$LAN.31
MAILSRV=$LAN.32; HOSTA=$LAN.33; HOSTB=$LAN.34; HOSTC=$LAN.35; HOSTD=$LAN.36
PROXY=$LAN.40; VIA1=$LAN.41; VIA2=$LAN.42; VIA3=$LAN.43; VPNU=$LAN.44
KPMU=$LAN.45; AVU=$LAN.46; OEMU=$LAN.47; DIFFC=$LAN.48; IPUPD=$LAN.49
FALLB=$LAN.50; RESOLVER=$LAN.53; INTRAWEB=$LAN.60; NOSNIKS=$LAN.61
LAN_BCAST=$LAN.255
DEAD_LAN=($LAN.5 $LAN.6)          # scan targets with nothing behind them
DEAD_MAC=02:00:00:00:de:ad        # on no port of either bridge

NET=203.0.113
GW_NET=$NET.1
UPSTREAM=$NET.53; CDN=$NET.50; DEAD_NET=$NET.99
# Kaspersky names -> addresses of the "ks" namespace (all TLS on 443; the
# dnl-## and kav8 ones also plain HTTP on 80)
K_MY=$NET.30; K_KSCWEB=$NET.31; K_EU1KSC=$NET.32; K_PRODUCTS=$NET.33
K_S01=$NET.101; K_S03=$NET.103; K_KSNFILE=$NET.104; K_S05=$NET.105
K_DC1KSN=$NET.106; K_S07=$NET.107; K_S12=$NET.112; K_DNL03=$NET.113
K_ACT=$NET.114; K_BOSH=$NET.116; K_DNL05=$NET.118; K_DNL01=$NET.119
K_KSNCRYPTO=$NET.120; K_KAV8=$NET.121; K_S10=$NET.122; K_GCKIS=$NET.123
KS_ADDRS=($K_MY $K_KSCWEB $K_EU1KSC $K_PRODUCTS $K_S01 $K_S03 $K_KSNFILE $K_S05
          $K_DC1KSN $K_S07 $K_S12 $K_DNL03 $K_ACT $K_BOSH $K_DNL05 $K_DNL01
          $K_KSNCRYPTO $K_KAV8 $K_GCKIS)
EXTKSC=198.51.100.10              # a KSC on the internet (not ours)
KIP=77.74.176.10                  # Kaspersky address space, reached by IP literal
CFR=77.74.177.5                   # Kaspersky's link checker (inbound only)
PUBDNS=8.8.8.8
OFFNET=($EXTKSC $KIP $CFR $PUBDNS) # /32 routes on gw and on every LAN host

LAN_HOSTS=(ksc:$KSC mir:$MIRROR dp:$DP rksc:$RKSC wcon:$WEBCON ag1:$AGENT1
           ag2:$AGENT2 ag3:$AGENT3 adm:$ADMIN eag:$EXTAG cag:$CLOUDAG
           rag:$ROGUEAG scan:$SCANNER prs:$PERSON mail:$MAILSRV ha:$HOSTA
           hb:$HOSTB hc:$HOSTC hd:$HOSTD prx:$PROXY vp1:$VIA1 vp2:$VIA2
           vp3:$VIA3 vpn:$VPNU kpm:$KPMU av:$AVU oem:$OEMU dif:$DIFFC
           ipu:$IPUPD fb:$FALLB res:$RESOLVER web:$INTRAWEB nsk:$NOSNIKS)

# ---------------------------------------------------------------- topology
ip netns add "$NSB"
ip netns exec "$NSB" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
for br in lan net; do
    # No STP: ports forward at once. No multicast snooping: multicast is
    # flooded like broadcast, so the UDP 15001 group datagram reaches the
    # capture without any IGMP membership.
    ip netns exec "$NSB" ip link add "$br" type bridge stp_state 0 forward_delay 0 mcast_snooping 0
    ip netns exec "$NSB" ip link set "$br" up
done

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

new_ns up;   attach up   eth0 net "$UPSTREAM/24"
new_ns cdn;  attach cdn  eth0 net "$CDN/24"
new_ns ks;   attach ks   eth0 net "${KS_ADDRS[0]}/24"
for a in "${KS_ADDRS[@]:1}"; do extra_addr ks eth0 "$a/24"; done
new_ns eksc; attach eksc eth0 net "$EXTKSC/32"
new_ns kip;  attach kip  eth0 net "$KIP/32"
new_ns cfr;  attach cfr  eth0 net "$CFR/32"
new_ns pub;  attach pub  eth0 net "$PUBDNS/32"
NET_SERVERS=($UPSTREAM $CDN "${KS_ADDRS[@]}" "${OFFNET[@]}")
MAC[$DEAD_NET]=$DEAD_MAC
for a in "${DEAD_LAN[@]}"; do MAC[$a]=$DEAD_MAC; done

# Routes: LAN hosts reach only the "internet" prefixes through gw.
for h in "${LAN_HOSTS[@]}"; do
    s=${h%%:*}; a=${h#*:}
    {
        echo "route add $NET.0/24 via $GW dev eth0"
        for o in "${OFFNET[@]}"; do echo "route add $o/32 via $GW dev eth0"; done
    } | nx "$s" ip -batch -
    others=()
    for o in "${LAN_ADDRS[@]}"; do [ "$o" = "$a" ] || others+=("$o"); done
    neigh "$s" eth0 "${others[@]}"
done
neigh scan eth0 "${DEAD_LAN[@]}"
for o in "${OFFNET[@]}"; do nx gw ip route add "$o/32" dev eth1; done
neigh gw eth0 "${LAN_ADDRS[@]:1}"
neigh gw eth1 "${NET_SERVERS[@]}" "$DEAD_NET"
for s in up cdn ks; do
    nx "$s" ip route add $LAN.0/24 via "$GW_NET" dev eth0
    neigh "$s" eth0 "$GW_NET"
done
for s in eksc kip cfr pub; do
    nx "$s" ip route add "$GW_NET/32" dev eth0
    nx "$s" ip route add $LAN.0/24 via "$GW_NET" dev eth0
    neigh "$s" eth0 "$GW_NET"
done

# ---------------------------------------------------------------- servers
make_cert server
CRT="$WORK/server.crt"; KEY="$WORK/server.key"
SIM="$MAKE_DIR/kscsim.py"
# tls_srv SHORT PORT: openssl s_server answering one small file per
# connection (-WWW: "GET /klsync HTTP/1.0" -> 200 + file, then close), so
# every session carries data both ways after the handshake.
KLSYNC_DIR="$WORK/klsync"
mkdir -p "$KLSYNC_DIR"
printf 'sync-ok\n' >"$KLSYNC_DIR/klsync"
tls_srv() {
    bg "${TAG}$1" timeout $LIFE env -C "$KLSYNC_DIR" openssl s_server -4 -quiet \
        -accept "$2" -WWW -cert "$CRT" -key "$KEY"
    wait_port "${TAG}$1" tcp "$2"
}
# web_tls SHORT: openssl s_server -www on 443 (a status page per GET).
web_tls() {
    bg "${TAG}$1" timeout $LIFE openssl s_server -4 -quiet -accept 443 -www -cert "$CRT" -key "$KEY"
    LAST_TLS=$LAST_PID
    wait_port "${TAG}$1" tcp 443
}
# httpd SHORT DIR: python's http.server (HTTP/1.0, one request per connection).
httpd() {
    bg "${TAG}$1" timeout $LIFE python3 -m http.server --bind 0.0.0.0 --directory "$2" 80
    wait_port "${TAG}$1" tcp 80
}
udp_listen() {  # udp_listen SHORT PORT
    bg "${TAG}$1" python3 "$SIM" udp-listen --port "$2" --lifetime $LIFE
    wait_port "${TAG}$1" udp "$2"
}

# Update files. The first 4 bytes are the Kaspersky update magics Zeek
# recognises (general.sig: KLZF = x-kaspavdb, DIFF = bindiff).
klzf() { mkdir -p "$(dirname "$1")"; { printf 'KLZF'; head -c "$2" /dev/urandom; } >"$1"; }
index_xml() {
    mkdir -p "$(dirname "$1")"
    printf '<?xml version="1.0" encoding="utf-8"?>\n<UpdateFiles>\n <FileDescription Filename="base001.kdc" RelativeSrvPath="bases/av/kdb/i386/"/>\n</UpdateFiles>\n' >"$1"
}

# KSC .10: TLS 13000 (agents), plain TCP 14000 (legacy agents), TLS 13291
# (MMC console), TLS 13299 (Web Console / OpenAPI), UDP 13000 (agents'
# shutdown notices).
tls_srv ksc 13000
tls_srv ksc 13291
tls_srv ksc 13299
bg "${TAG}ksc" python3 "$SIM" tcp-serve --bind "$KSC" --port 14000 \
    --reply $'klserver: sync accepted\n' --lifetime $LIFE
wait_port "${TAG}ksc" tcp 14000
udp_listen ksc 13000
# Distribution point .12 and rogue KSC .15: TLS 13000.
tls_srv dp 13000
tls_srv rksc 13000
# Network Agents listen on UDP 15000 (wake-ups) and 15001 (DP multicast is
# not joined: no IGMP; the kernel drops group datagrams nobody joined).
for s in ag1 ag2 ag3 dp; do udp_listen "$s" 15000; done
# External KSC on the internet.
tls_srv eksc 13000

# Internal update mirror .11.
MIR_DIR="$WORK/mirror"
klzf "$MIR_DIR/bases/av/kdb/i386/base001.kdc" 600
index_xml "$MIR_DIR/index/u1313g.xml"
httpd mir "$MIR_DIR"
# Intranet web server .60: a file that starts with DIFF (not an update) and a page.
WEB_DIR="$WORK/intranet"
mkdir -p "$WEB_DIR"
{ printf 'DIFF'; head -c 300 /dev/urandom; } >"$WEB_DIR/file.bin"
printf '<html><body>intranet</body></html>\n' >"$WEB_DIR/index.html"
httpd web "$WEB_DIR"

# Kaspersky servers on the "internet": TLS 443 on every ks address, the
# Cloud Console agent port 23101 on eu1.ksc, plain HTTP updates.
KS_DIR="$WORK/ks"
klzf "$KS_DIR/bases/av/kdb/i386/base001.kdc" 500
klzf "$KS_DIR/bases/av/kdb/i386/base003.kdc" 500
index_xml "$KS_DIR/index/u1313g.xml"
index_xml "$KS_DIR/v6/index/u1313g.xml"
web_tls ks
tls_srv ks 23101
httpd ks "$KS_DIR"
# Shared CDN address: TLS on 443 (serves any name).
web_tls cdn; CDN_TLS=$LAST_TLS
# Kaspersky address space by IP literal: HTTP update file and TLS 443.
KIP_DIR="$WORK/kip"
klzf "$KIP_DIR/bases/av/kdb/i386/base002.kdc" 500
httpd kip "$KIP_DIR"
web_tls kip

# DNS. dns SHORT LISTEN ARGS...: dnsmasq on one address, no /etc files.
dns() {
    local s=$1 addr=$2; shift 2
    bg "${TAG}$s" timeout $LIFE dnsmasq --keep-in-foreground --no-resolv --no-hosts \
        --no-poll --pid-file= --user=root --bind-interfaces --listen-address="$addr" \
        --except-interface=lo --log-facility=- --log-queries "$@"
    wait_port "${TAG}$s" udp 53
}
# LAN resolver: forwards everything to the upstream (it caches, as dnsmasq does).
dns res "$RESOLVER" --server="$UPSTREAM"
# Upstream ("the internet's DNS"): authoritative for every name used, TTL 300.
dns up "$UPSTREAM" --local-ttl=300 \
    --host-record=my.kaspersky.com,$K_MY \
    --host-record=ksc.kaspersky.com,$K_KSCWEB \
    --host-record=eu1.ksc.kaspersky.com,$K_EU1KSC \
    --host-record=products.s.kaspersky-labs.com,$K_PRODUCTS \
    --host-record=s01.upd.kaspersky.com,$K_S01 \
    --host-record=s03.upd.kaspersky.com,$K_S03 \
    --host-record=ksn-file-geo.kaspersky-labs.com,$K_KSNFILE \
    --host-record=s05.upd.kaspersky.com,$K_S05 \
    --host-record=dc1.ksn.kaspersky-labs.com,$K_DC1KSN \
    --host-record=s07.upd.kaspersky.com,$K_S07 \
    --host-record=s09.upd.kaspersky.com,$CDN \
    --host-record=s12.upd.kaspersky.com,$K_S12 \
    --host-record=dnl-03.geo.kaspersky.com,$K_DNL03 \
    --host-record=activation-v2.kaspersky.com,$K_ACT \
    --host-record=bosh12.ucp-ntfy.kaspersky-labs.com,$K_BOSH \
    --host-record=dnl-05.geo.kaspersky.com,$K_DNL05 \
    --host-record=dnl-01.geo.kaspersky.com,$K_DNL01 \
    --host-record=ksn-crypto-file-geo.kaspersky-labs.com,$K_KSNCRYPTO \
    --host-record=kav8.zonealarm.com,$K_KAV8 \
    --host-record=gc.kis.v2.scr.kaspersky-labs.com,$K_GCKIS \
    --host-record=shop.example.net,$CDN \
    --txt-record=_spf.kaspersky-labs.com,"v=spf1 ip4:77.74.176.0/21 ~all" \
    --mx-host=kaspersky.com,mx13.kaspersky-labs.com,10 \
    --local=/kaspersky.com/ --local=/kaspersky-labs.com/ --local=/zonealarm.com/ \
    --local=/example.net/
# "Public resolver" 8.8.8.8 (a namespace address only).
dns pub "$PUBDNS" --local-ttl=300 \
    --host-record=s10.upd.kaspersky.com,$K_S10 --local=/kaspersky.com/

# Forward proxy .40: tinyproxy, resolving through the LAN resolver.
resolv prx "$RESOLVER"
cat >"$WORK/tinyproxy.conf" <<EOF
Port 8888
Listen $PROXY
Timeout 15
MaxClients 8
Allow $LAN.0/24
ConnectPort 443
ViaProxyName "proxy"
LogFile "$WORK/tinyproxy.log"
LogLevel Info
PidFile "$WORK/tinyproxy.pid"
EOF
bg "${TAG}prx" timeout $LIFE tinyproxy -d -c "$WORK/tinyproxy.conf"
wait_port "${TAG}prx" tcp 8888
# chromium resolves through the LAN resolver on these two hosts.
resolv prs "$RESOLVER"
resolv hb "$RESOLVER"
sleep 0.5

# ---------------------------------------------------------------- capture
LOG="$WORK/tcpdump.log"
# A 16 MiB buffer: nmap's burst must not overflow it on a loaded machine
# (the script fails below if tcpdump reports any drop).
ip netns exec "$NSB" timeout $LIFE tcpdump -n -U --immediate-mode -B 16384 -i lan -w "$OUT" \
    "ip and not igmp" 2>"$LOG" &
CAP_PID=$!
BG_PIDS+=($CAP_PID)
for i in $(seq 50); do grep -q "listening on" "$LOG" 2>/dev/null && break; sleep 0.1; done
sleep 0.3

T=10                                    # per-client-command timeout, seconds
step() { sleep 0.3; }                   # distinct timestamps between events
q() {  # q SHORT SERVER NAME [TYPE]: one query, UDP only (RFC 1035 §4.2.1)
    nx "$1" timeout $T kdig +timeout=2 +retry=0 +notcp +noall +answer "@$2" "$3" "${4:-A}" >/dev/null || true
}
ksc_tls() {  # ksc_tls SHORT ADDR:PORT [s_client args]: TLS session, one request, one answer
    printf 'GET /klsync HTTP/1.0\r\n\r\n' | nx "$1" timeout $T openssl s_client -quiet \
        -connect "$2" "${@:3}" >/dev/null 2>&1 || true
}
get() {  # get SHORT curl args...
    nx "$1" timeout $T curl -s -o /dev/null "${@:2}" || true
}
tls_get() {  # tls_get SHORT NAME ADDR: HTTPS GET / with SNI NAME to ADDR:443
    get "$1" -k --resolve "$2:443:$3" "https://$2/"
}
sim() { local s=$1; shift; nx "$s" timeout $T python3 "$SIM" "$@" >/dev/null 2>>"$WORK/clients.log" || true; }
chrome() {  # chrome SHORT URL: headless chromium; only URL's host is resolved
    local prof host=${2#https://}
    host=${host%%/*}
    prof=$(mktemp -d "$WORK/chrome.XXXXXX")
    # MAP * ~NOTFOUND makes every other name fail inside chromium, before any
    # packet: its background fetches never reach the wire. EXCLUDE lets the
    # page's own host resolve through /etc/resolv.conf (the LAN resolver).
    nx "$1" env HOME="$WORK" timeout -k 2 20 chromium --headless --no-sandbox --disable-gpu \
        --no-first-run --disable-background-networking --disable-component-update \
        --disable-sync --user-data-dir="$prof" --ignore-certificate-errors \
        --host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE $host" \
        --dump-dom "$2" >/dev/null 2>>"$WORK/chromium.log" || true
}

# 1. KSC .10 wakes agent1 (UDP 15000 to the agent's Network Agent); agent1
# opens its TLS session on 13000 (by address: no SNI), sends a shutdown
# notice on UDP 13000, and fetches updates and KSN itself.
sim ksc udp-send --bind "$KSC" --to "$AGENT1:15000" --data "KLNAGENT wake-up"
step
ksc_tls ag1 "$KSC:13000" -noservername
step
sim ag1 udp-send --bind "$AGENT1" --to "$KSC:13000" --data "KLNAGENT shutdown $AGENT1"
step
q ag1 "$RESOLVER" s03.upd.kaspersky.com
tls_get ag1 s03.upd.kaspersky.com "$K_S03"
step
q ag1 "$RESOLVER" ksn-file-geo.kaspersky-labs.com
tls_get ag1 ksn-file-geo.kaspersky-labs.com "$K_KSNFILE"
step

# 2. KSC wakes agent2; agent2 uses the legacy plain port 14000, sends a
# shutdown notice, and updates from the internal mirror .11 (by address).
sim ksc udp-send --bind "$KSC" --to "$AGENT2:15000" --data "KLNAGENT wake-up"
step
sim ag2 tcp-send --bind "$AGENT2" --to "$KSC:14000" --data $'klnagent: sync request\n'
step
sim ag2 udp-send --bind "$AGENT2" --to "$KSC:13000" --data "KLNAGENT shutdown $AGENT2"
step
get ag2 "http://$MIRROR/index/u1313g.xml"
get ag2 "http://$MIRROR/bases/av/kdb/i386/base001.kdc"
step

# 3. Distribution point .12 is an agent of .10; agent3 is an agent of the
# DP, sends its shutdown notice to .10 and broadcasts on UDP 15000 (subnet
# and limited broadcast); the DP multicasts on UDP 15001.
ksc_tls dp "$KSC:13000" -noservername
step
ksc_tls ag3 "$DP:13000" -noservername
step
sim ag3 udp-send --bind "$AGENT3" --to "$KSC:13000" --data "KLNAGENT shutdown $AGENT3"
step
sim ag3 udp-send --bind "$AGENT3" --to "$LAN_BCAST:15000" --broadcast --data "KLNAGENT announce"
sim ag3 udp-send --bind "$AGENT3" --to "255.255.255.255:15000" --broadcast --data "KLNAGENT announce"
step
sim dp udp-send --bind "$DP" --to "239.255.13.1:15001" --multicast --data "KLNAGENT DP multicast update"
step

# 4. A rogue KSC .15 and its agent .27.
ksc_tls rag "$RKSC:13000" -noservername
step

# 5. Consoles: Web Console server .20 -> 13299, MMC admin .24 -> 13291.
ksc_tls wcon "$KSC:13299" -noservername
step
ksc_tls adm "$KSC:13291" -noservername
step

# 6. An agent of a KSC on the internet; it also updates from s05.upd.
ksc_tls eag "$EXTKSC:13000" -noservername
step
tls_get eag s05.upd.kaspersky.com "$K_S05"
step

# 7. An agent of the Cloud Console (agent port 23101 on eu1.ksc), with KSN.
ksc_tls cag "$K_EU1KSC:23101" -servername eu1.ksc.kaspersky.com
step
tls_get cag dc1.ksn.kaspersky-labs.com "$K_DC1KSN"
step

# 8. Scanner: nmap SYN scan of 10.70.0.0/27 on 13000 and 14000 (open ports
# answer SYN-ACK and get nmap's kernel RST; closed ones RST), then hping3
# SYNs to 13000 on addresses with nothing behind them (no answer at all).
nx scan timeout 60 nmap -n -sS -T4 --max-rate 300 --max-retries 1 -p 13000,14000 "$LAN.0/27" >"$WORK/nmap.txt" 2>&1 || true
step
for a in "${DEAD_LAN[@]}" "$DEAD_NET"; do
    nx scan timeout 5 hping3 -q -I eth0 -S -p 13000 -c 2 -i u200000 "$a" >/dev/null 2>&1 || true
done
step

# 9. A person: the My Kaspersky portal and the Cloud Console web UI in
# chromium, then downloads an installer with curl.
chrome prs https://my.kaspersky.com/
step
chrome prs https://ksc.kaspersky.com/
step
get prs -k --resolve "products.s.kaspersky-labs.com:443:$K_PRODUCTS" \
    https://products.s.kaspersky-labs.com/endpoints/keswin11/kes_win.exe
step

# 10. Mail server: SPF (TXT) and MX lookups through the resolver.
q mail "$RESOLVER" _spf.kaspersky-labs.com TXT
q mail "$RESOLVER" kaspersky.com MX
step

# 11. Shared CDN address 203.0.113.50. hostA resolves s09.upd (-> .50) and
# connects with SNI; hostB's chromium resolves shop.example.net (-> .50)
# and connects (GREASE ECH, real SNI); hostD resolves s09.upd itself and
# connects without SNI; then the CDN's TLS listener stops and hostC's SYN to
# .50:443 is refused (RST).
q ha "$RESOLVER" s09.upd.kaspersky.com
tls_get ha s09.upd.kaspersky.com "$CDN"
step
chrome hb https://shop.example.net/
step
q hd "$RESOLVER" s09.upd.kaspersky.com
printf 'GET / HTTP/1.0\r\n\r\n' | nx hd timeout $T openssl s_client -quiet -noservername \
    -connect "$CDN:443" >/dev/null 2>&1 || true
step
kill "$CDN_TLS" 2>/dev/null || true
for i in $(seq 50); do nx cdn ss -lnHt "sport = :443" | grep -q . || break; sleep 0.1; done
get hc -k --connect-timeout 3 "https://$CDN/"
step

# 12. Through the forward proxy .40 (tinyproxy): CONNECT to s12.upd and TLS
# in the tunnel; an absolute-form GET of a signature base from dnl-03;
# CONNECT to activation-v2.
get vp1 -k -x "http://$PROXY:8888" https://s12.upd.kaspersky.com/
step
get vp2 -x "http://$PROXY:8888" http://dnl-03.geo.kaspersky.com/bases/av/kdb/i386/base003.kdc
step
get vp3 -k -x "http://$PROXY:8888" https://activation-v2.kaspersky.com/
step

# 13. Other Kaspersky products and the antivirus on unmanaged hosts.
# VPN user: activation, updates, KSN.
tls_get vpn activation-v2.kaspersky.com "$K_ACT"
tls_get vpn s01.upd.kaspersky.com "$K_S01"
tls_get vpn dc1.ksn.kaspersky-labs.com "$K_DC1KSN"
step
# Password Manager user: the portal and the KPM push channel.
tls_get kpm my.kaspersky.com "$K_MY"
tls_get kpm bosh12.ucp-ntfy.kaspersky-labs.com "$K_BOSH"
step
# Antivirus: the web-protection script name, updates, a signature base.
q av "$RESOLVER" gc.kis.v2.scr.kaspersky-labs.com
tls_get av s07.upd.kaspersky.com "$K_S07"
get av --resolve "dnl-05.geo.kaspersky.com:80:$K_DNL05" \
    http://dnl-05.geo.kaspersky.com/bases/av/kdb/i386/base001.kdc
step
# OEM engine (Check Point / ZoneAlarm pattern): index from dnl-01, KSN crypto, kav8.
get oem --resolve "dnl-01.geo.kaspersky.com:80:$K_DNL01" http://dnl-01.geo.kaspersky.com/index/u1313g.xml
tls_get oem ksn-crypto-file-geo.kaspersky-labs.com "$K_KSNCRYPTO"
get oem --resolve "kav8.zonealarm.com:80:$K_KAV8" http://kav8.zonealarm.com/v6/index/u1313g.xml
step

# 14. Payload and address cases.
get dif "http://$INTRAWEB/file.bin"
step
get ipu "http://$KIP/bases/av/kdb/i386/base002.kdc"
step
q fb "$PUBDNS" s10.upd.kaspersky.com
step
nx cfr timeout $T curl -s -o /dev/null -A "Kaspersky Lab CFR link resolver cfradmins@kaspersky.com" \
    "http://$INTRAWEB/" || true
step
printf 'GET / HTTP/1.0\r\n\r\n' | nx nsk timeout $T openssl s_client -quiet -noservername \
    -connect "$KIP:443" >/dev/null 2>&1 || true

sleep 1.2
kill -INT "$CAP_PID" 2>/dev/null || true
wait "$CAP_PID" 2>/dev/null || true
if ! grep -q "^0 packets dropped by kernel" "$LOG"; then
    cat "$LOG" >&2
    echo "tcpdump dropped packets; $OUT is incomplete" >&2
    exit 1
fi
[ -n "${KEEP_LOGS:-}" ] && cp -r "$WORK" "$KEEP_LOGS" 2>/dev/null || true
echo "wrote $OUT"
