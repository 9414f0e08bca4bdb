#!/bin/bash
# Check that pcaps/staged-enterprise.pcap holds every staged event of
# staged-enterprise.sh and nothing else (no stray names, addresses, ICMP,
# ARP, retransmissions), using tshark as an independent dissector. Prints one
# line per check and exits non-zero if any check fails. Needs only tshark.
set -uo pipefail
PCAP=${1:-"$(cd "$(dirname "$0")/.." && pwd)/staged-enterprise.pcap"}
FAIL=0
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# rows FILTER FIELD...: tab-separated field rows of the frames matching FILTER
rows() {
    local f=$1; shift
    local args=() e
    for e in "$@"; do args+=(-e "$e"); done
    tshark -n -o tcp.reassemble_out_of_order:TRUE -o ip.check_checksum:TRUE \
        -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE -r "$PCAP" -Y "$f" -T fields \
        -E separator=/t -E occurrence=a -E aggregator=, "${args[@]}" 2>"$TMP/err" ||
        { echo "FAIL tshark error for filter: $f" >&2; cat "$TMP/err" >&2; touch "$TMP/tshark-failed"; }
}
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; FAIL=1; }
# expect DESC WANT FILTER FIELD...: WANT (a fixed string) is one of the rows
expect() {
    local desc=$1 want=$2; shift 2
    if rows "$@" | grep -qxF -- "$want"; then ok "$desc"; else bad "$desc (want row: $want)"; fi
}
# expect_none DESC FILTER: no frame matches FILTER
expect_none() {
    local n
    n=$(rows "$2" frame.number | wc -l)
    if [ "$n" -eq 0 ]; then ok "$1"; else bad "$1 ($n frames)"; fi
}
# expect_set DESC WANT FILTER FIELD: the sorted unique values of FIELD are WANT
expect_set() {
    local desc=$1 want=$2 got
    got=$(rows "$3" "$4" | tr ',' '\n' | grep -v '^$' | sort -u | tr '\n' ' ')
    if [ "$got" = "$want" ]; then ok "$desc"; else bad "$desc"$'\n'"     want: $want"$'\n'"     got:  $got"; fi
}

T=$'\t'
L=10.70.0
KSC=$L.10; MIRROR=$L.11; DP=$L.12; RKSC=$L.15; RESOLVER=$L.53; PROXY=$L.40
UPSTREAM=203.0.113.53; CDN=203.0.113.50; KIP=77.74.176.10; CFR=77.74.177.5

# TCP table for the session checks: one pass over the capture.
rows "tcp" tcp.stream ip.src ip.dst tcp.srcport tcp.dstport tcp.flags.syn tcp.flags.ack \
    tcp.flags.reset tcp.len >"$TMP/tcp"
# session DESC CLIENT SERVER PORT: a TCP connection from CLIENT to
# SERVER:PORT with SYN, SYN-ACK and payload bytes in both directions.
session() {
    local desc=$1 c=$2 s=$3 p=$4 n
    n=$(awk -F'\t' -v c="$c" -v s="$s" -v p="$p" '
        $2==c && $3==s && $5==p && $6==1 && $7==0 { st[$1]=1 }
        { if ($1 in st) {
            if ($2==s && $6==1 && $7==1) sa[$1]=1
            if ($2==c && $9>0) cd[$1]=1
            if ($2==s && $9>0) sd[$1]=1 } }
        END { n=0; for (k in st) if (sa[k] && cd[k] && sd[k]) n++; print n }' "$TMP/tcp")
    if [ "$n" -ge 1 ]; then ok "$desc ($n session(s): SYN, SYN-ACK, data both ways)"; else bad "$desc"; fi
}
# syn_only DESC CLIENT SERVER PORT ANSWER: CLIENT's SYNs to SERVER:PORT never
# carry data; ANSWER is synack (SYN-ACK then the client's RST), rst, or none.
syn_only() {
    local desc=$1 c=$2 s=$3 p=$4 want=$5 got
    got=$(awk -F'\t' -v c="$c" -v s="$s" -v p="$p" '
        $2==c && $3==s && $5==p && $6==1 && $7==0 { st[$1]=1; syn++ }
        { if ($1 in st) {
            if ($9>0) data=1
            if ($2==s && $6==1 && $7==1) sa=1
            if ($2==s && $8==1) srst=1
            if ($2==c && $8==1) crst=1 } }
        END { a="none"; if (sa && crst) a="synack"; else if (srst) a="rst";
              if (!syn) a="nosyn"; if (data) a="data"; print a }' "$TMP/tcp")
    if [ "$got" = "$want" ]; then ok "$desc"; else bad "$desc (want $want, got $got)"; fi
}

# ---- whole capture
expect_none "only IPv4 frames (no ARP, IPv6, IGMP, ICMP)" "!ip || igmp || icmp"
# checksum status: 0 Bad, 1 Good, 2 Unverified (validation is on in rows())
expect_none "every IP/TCP/UDP checksum verified good" \
    "ip.checksum.status!=1 || tcp.checksum.status!=1 || udp.checksum.status!=1"
expect_none "no TCP retransmission" "tcp.analysis.retransmission"
expect_set "only the planned addresses" \
    "10.70.0.1 10.70.0.10 10.70.0.11 10.70.0.12 10.70.0.15 10.70.0.20 10.70.0.21 10.70.0.22 10.70.0.23 10.70.0.24 10.70.0.25 10.70.0.255 10.70.0.26 10.70.0.27 10.70.0.30 10.70.0.31 10.70.0.32 10.70.0.33 10.70.0.34 10.70.0.35 10.70.0.36 10.70.0.40 10.70.0.41 10.70.0.42 10.70.0.43 10.70.0.44 10.70.0.45 10.70.0.46 10.70.0.47 10.70.0.48 10.70.0.49 10.70.0.5 10.70.0.50 10.70.0.53 10.70.0.6 10.70.0.60 10.70.0.61 198.51.100.10 203.0.113.101 203.0.113.103 203.0.113.104 203.0.113.105 203.0.113.106 203.0.113.107 203.0.113.112 203.0.113.113 203.0.113.114 203.0.113.116 203.0.113.118 203.0.113.119 203.0.113.120 203.0.113.121 203.0.113.30 203.0.113.31 203.0.113.32 203.0.113.33 203.0.113.50 203.0.113.53 203.0.113.99 239.255.13.1 255.255.255.255 77.74.176.10 77.74.177.5 8.8.8.8 " \
    "ip" ip.addr
expect_set "DNS query names: only the staged ones (no browser background lookups)" \
    "_spf.kaspersky-labs.com activation-v2.kaspersky.com dnl-03.geo.kaspersky.com gc.kis.v2.scr.kaspersky-labs.com kaspersky.com ksc.kaspersky.com ksn-file-geo.kaspersky-labs.com my.kaspersky.com s03.upd.kaspersky.com s09.upd.kaspersky.com s10.upd.kaspersky.com s12.upd.kaspersky.com shop.example.net " \
    "dns.flags.response==0" dns.qry.name
expect_set "TLS SNI names: only the staged ones" \
    "activation-v2.kaspersky.com bosh12.ucp-ntfy.kaspersky-labs.com dc1.ksn.kaspersky-labs.com eu1.ksc.kaspersky.com ksc.kaspersky.com ksn-crypto-file-geo.kaspersky-labs.com ksn-file-geo.kaspersky-labs.com my.kaspersky.com products.s.kaspersky-labs.com s01.upd.kaspersky.com s03.upd.kaspersky.com s05.upd.kaspersky.com s07.upd.kaspersky.com s09.upd.kaspersky.com s12.upd.kaspersky.com shop.example.net " \
    "tls.handshake.type==1" tls.handshake.extensions_server_name
expect_set "HTTP Hosts: only the staged ones" \
    "10.70.0.11 10.70.0.60 77.74.176.10 activation-v2.kaspersky.com:443 dnl-01.geo.kaspersky.com dnl-03.geo.kaspersky.com dnl-05.geo.kaspersky.com kav8.zonealarm.com s12.upd.kaspersky.com:443 " \
    "http.request" http.host
n=$(rows "frame" frame.number | wc -l)
echo "info $n frames, $(stat -c %s "$PCAP") bytes"

# ---- KSC .10, agents .21 .22 .23, DP .12, rogue KSC .15 and its agent .27
session "agent1 .21 -> ksc .10 TLS 13000" $L.21 $KSC 13000
session "agent2 .22 -> ksc .10 plain TCP 14000" $L.22 $KSC 14000
session "dp .12 -> ksc .10 TLS 13000" $DP $KSC 13000
session "agent3 .23 -> dp .12 TLS 13000" $L.23 $DP 13000
session "rogue agent .27 -> rogue ksc .15 TLS 13000" $L.27 $RKSC 13000
session "web console .20 -> ksc .10 TLS 13299" $L.20 $KSC 13299
session "admin console .24 -> ksc .10 TLS 13291" $L.24 $KSC 13291
session "ext agent .25 -> external KSC 198.51.100.10 TLS 13000" $L.25 198.51.100.10 13000
expect_set "every ClientHello on a KSC port has no SNI" "" \
    "tls.handshake.type==1 && tcp.dstport in {13000,13291,13299}" tls.handshake.extensions_server_name
# "klnagent: sync request\n"
expect "agent2's 14000 request is plain text" "$L.22$T$KSC${T}6b6c6e6167656e743a2073796e6320726571756573740a" \
    "tcp.dstport==14000 && tcp.len>0" ip.src ip.dst tcp.payload
for a in 21 22; do
    expect "ksc wake-up UDP 15000 -> .$a (unicast)" "$KSC$T$L.$a${T}15000" \
        "udp.dstport==15000 && eth.dst.ig==0" ip.src ip.dst udp.dstport
done
for a in 21 22 23; do
    expect "agent .$a shutdown notice UDP 13000 -> ksc" "$L.$a$T$KSC${T}13000" \
        "udp.dstport==13000" ip.src ip.dst udp.dstport
done
expect "agent3 UDP 15000 subnet broadcast (Ethernet broadcast)" \
    "$L.23${T}10.70.0.255${T}ff:ff:ff:ff:ff:ff" "udp.dstport==15000" ip.src ip.dst eth.dst
expect "agent3 UDP 15000 limited broadcast (Ethernet broadcast)" \
    "$L.23${T}255.255.255.255${T}ff:ff:ff:ff:ff:ff" "udp.dstport==15000" ip.src ip.dst eth.dst
expect "dp UDP 15001 to multicast group (multicast MAC)" \
    "$DP${T}239.255.13.1${T}01:00:5e:7f:0d:01" "udp.dstport==15001" ip.src ip.dst eth.dst

# ---- .21 .25 .26 other product traffic
for n in s03.upd.kaspersky.com ksn-file-geo.kaspersky-labs.com; do
    expect "agent1 asks the resolver for $n" "$L.21$T$RESOLVER$T$n" \
        "dns.flags.response==0" ip.src ip.dst dns.qry.name
    expect "agent1 TLS SNI $n" "$L.21$T$n" "tls.handshake.type==1" ip.src tls.handshake.extensions_server_name
done
expect "ext agent TLS SNI s05.upd" "$L.25${T}s05.upd.kaspersky.com" "tls.handshake.type==1" ip.src tls.handshake.extensions_server_name
session "cloud agent .26 -> eu1.ksc 203.0.113.32:23101" $L.26 203.0.113.32 23101
expect "cloud agent TLS SNI eu1.ksc.kaspersky.com on 23101" "$L.26${T}203.0.113.32${T}23101${T}eu1.ksc.kaspersky.com" \
    "tls.handshake.type==1" ip.src ip.dst tcp.dstport tls.handshake.extensions_server_name
expect "cloud agent TLS SNI dc1.ksn" "$L.26${T}dc1.ksn.kaspersky-labs.com" "tls.handshake.type==1" ip.src tls.handshake.extensions_server_name

# ---- mirror .11 -> agent2 .22
for p in /index/u1313g.xml /bases/av/kdb/i386/base001.kdc; do
    expect "agent2 GET $p from the mirror" "$L.22$T$MIRROR$T$MIRROR$T$p" \
        "http.request" ip.src ip.dst http.host http.request.uri
done
# 4b4c5a46 = "KLZF", 44494646 = "DIFF" (Zeek general.sig magics)
expect "mirror answers a KLZF body" "$MIRROR$T$L.22" "http.response && http.file_data[0:4]==4b:4c:5a:46" ip.src ip.dst

# ---- scanner .30
syn_only "nmap SYN to ksc:13000: SYN-ACK, then RST, no handshake" $L.30 $KSC 13000 synack
syn_only "nmap SYN to ksc:14000: SYN-ACK, then RST" $L.30 $KSC 14000 synack
syn_only "nmap SYN to dp:13000: SYN-ACK, then RST" $L.30 $DP 13000 synack
syn_only "nmap SYN to rogue ksc:13000: SYN-ACK, then RST" $L.30 $RKSC 13000 synack
syn_only "nmap SYN to agent1:13000: refused (RST)" $L.30 $L.21 13000 rst
for a in $L.5 $L.6 203.0.113.99; do
    syn_only "hping3 SYN to $a:13000: no answer" $L.30 "$a" 13000 none
done
n=$(rows "ip.src==$L.30 && tcp.flags.syn==1 && ip.dst==$L.0/27 && !(ip.dst in {$L.5,$L.6})" ip.dst tcp.dstport | sort -u | wc -l)
if [ "$n" -eq 28 ]; then ok "nmap probed 14 LAN hosts x 2 ports"; else bad "nmap probed $n (host, port) pairs, want 28"; fi
expect_none "scanner sends no payload" "ip.src==$L.30 && tcp.len>0"

# ---- person .31 (chromium), mail server .32
for n in my.kaspersky.com ksc.kaspersky.com; do
    expect "person (chromium) asks A $n" "$L.31$T$n${T}1" "dns.flags.response==0" ip.src dns.qry.name dns.qry.type
    expect "person (chromium) asks HTTPS $n" "$L.31$T$n${T}65" "dns.flags.response==0" ip.src dns.qry.name dns.qry.type
    expect "person chromium ClientHello SNI $n :443 with GREASE ECH (0xfe0d)" "$L.31$T$n${T}443${T}1" \
        "tls.handshake.type==1 && tls.handshake.extension.type==65037" ip.src tls.handshake.extensions_server_name tcp.dstport tls.handshake.type
done
expect "person downloads from products.s" "$L.31${T}products.s.kaspersky-labs.com" "tls.handshake.type==1" ip.src tls.handshake.extensions_server_name
expect "mail server TXT _spf.kaspersky-labs.com" "$L.32$T$RESOLVER${T}_spf.kaspersky-labs.com${T}16" \
    "dns.flags.response==0" ip.src ip.dst dns.qry.name dns.qry.type
expect "mail server MX kaspersky.com" "$L.32$T$RESOLVER${T}kaspersky.com${T}15" \
    "dns.flags.response==0" ip.src ip.dst dns.qry.name dns.qry.type
expect_none "mail server opens no TCP connection" "ip.src==$L.32 && tcp"

# ---- shared CDN 203.0.113.50: hostA .33, hostB .34, hostC .35, hostD .36
for a in 33 36; do
    expect "host .$a gets s09.upd = $CDN" "$RESOLVER$T$L.$a${T}s09.upd.kaspersky.com$T$CDN" \
        "dns.flags.response==1" ip.src ip.dst dns.qry.name dns.a
done
expect "hostA TLS SNI s09.upd to the CDN" "$L.33$T$CDN${T}s09.upd.kaspersky.com" \
    "tls.handshake.type==1" ip.src ip.dst tls.handshake.extensions_server_name
expect "hostB gets shop.example.net = $CDN" "$RESOLVER$T$L.34${T}shop.example.net$T$CDN" \
    "dns.flags.response==1" ip.src ip.dst dns.qry.name dns.a
expect "hostB chromium SNI shop.example.net with GREASE ECH (0xfe0d)" "$L.34$T$CDN${T}shop.example.net" \
    "tls.handshake.type==1 && tls.handshake.extension.type==65037" ip.src ip.dst tls.handshake.extensions_server_name
session "hostB chromium session to the CDN" $L.34 $CDN 443
session "hostD nameless TLS session to the CDN" $L.36 $CDN 443
expect "hostD ClientHello without SNI" "$L.36$T$CDN$T" "tls.handshake.type==1" ip.src ip.dst tls.handshake.extensions_server_name
syn_only "hostC SYN to CDN:443 refused (RST)" $L.35 $CDN 443 rst
expect_none "hostC sends nothing else" "ip.src==$L.35 && !(tcp.flags.syn==1 && tcp.flags.ack==0)"

# ---- proxy .40 and its clients .41 .42 .43
expect "via1 CONNECT s12.upd:443 to the proxy" "$L.41$T$PROXY${T}CONNECT${T}s12.upd.kaspersky.com:443" \
    "http.request" ip.src ip.dst http.request.method http.request.uri
expect "via1 TLS SNI s12.upd inside the tunnel" "$L.41$T$PROXY${T}s12.upd.kaspersky.com" \
    "tls.handshake.type==1" ip.src ip.dst tls.handshake.extensions_server_name
expect "via2 absolute-form GET dnl-03 base003.kdc" \
    "$L.42$T$PROXY${T}GET${T}http://dnl-03.geo.kaspersky.com/bases/av/kdb/i386/base003.kdc" \
    "http.request" ip.src ip.dst http.request.method http.request.uri
expect "via2 gets a KLZF body from the proxy" "$PROXY$T$L.42" "http.response && http.file_data[0:4]==4b:4c:5a:46" ip.src ip.dst
expect "via3 CONNECT activation-v2:443" "$L.43$T$PROXY${T}CONNECT${T}activation-v2.kaspersky.com:443" \
    "http.request" ip.src ip.dst http.request.method http.request.uri
for n in s12.upd.kaspersky.com dnl-03.geo.kaspersky.com activation-v2.kaspersky.com; do
    expect "proxy (upstream leg) resolves $n" "$PROXY$T$RESOLVER$T$n${T}1" \
        "dns.flags.response==0" ip.src ip.dst dns.qry.name dns.qry.type
done
expect "proxy upstream TLS SNI s12.upd" "$PROXY${T}203.0.113.112${T}s12.upd.kaspersky.com" \
    "tls.handshake.type==1" ip.src ip.dst tls.handshake.extensions_server_name
expect "proxy upstream TLS SNI activation-v2" "$PROXY${T}203.0.113.114${T}activation-v2.kaspersky.com" \
    "tls.handshake.type==1" ip.src ip.dst tls.handshake.extensions_server_name
expect "proxy upstream GET base003.kdc Host dnl-03" \
    "$PROXY${T}203.0.113.113${T}dnl-03.geo.kaspersky.com${T}/bases/av/kdb/i386/base003.kdc" \
    "http.request" ip.src ip.dst http.host http.request.uri

# ---- .44 VPN user, .45 KPM user, .46 AV user, .47 OEM box
for n in activation-v2.kaspersky.com s01.upd.kaspersky.com dc1.ksn.kaspersky-labs.com; do
    expect "vpn user TLS SNI $n" "$L.44$T$n" "tls.handshake.type==1" ip.src tls.handshake.extensions_server_name
done
for n in my.kaspersky.com bosh12.ucp-ntfy.kaspersky-labs.com; do
    expect "kpm user TLS SNI $n" "$L.45$T$n" "tls.handshake.type==1" ip.src tls.handshake.extensions_server_name
done
expect "av user asks gc.kis.v2.scr" "$L.46$T$RESOLVER${T}gc.kis.v2.scr.kaspersky-labs.com${T}1" \
    "dns.flags.response==0" ip.src ip.dst dns.qry.name dns.qry.type
expect "av user TLS SNI s07.upd" "$L.46${T}s07.upd.kaspersky.com" "tls.handshake.type==1" ip.src tls.handshake.extensions_server_name
expect "av user GET dnl-05 base001.kdc" "$L.46${T}dnl-05.geo.kaspersky.com${T}/bases/av/kdb/i386/base001.kdc" \
    "http.request" ip.src http.host http.request.uri
expect "dnl-05 answers KLZF" "203.0.113.118$T$L.46" "http.response && http.file_data[0:4]==4b:4c:5a:46" ip.src ip.dst
expect "oem GET dnl-01 /index/u1313g.xml" "$L.47${T}dnl-01.geo.kaspersky.com${T}/index/u1313g.xml" \
    "http.request" ip.src http.host http.request.uri
expect "oem TLS SNI ksn-crypto-file-geo" "$L.47${T}ksn-crypto-file-geo.kaspersky-labs.com" \
    "tls.handshake.type==1" ip.src tls.handshake.extensions_server_name
expect "oem GET kav8.zonealarm.com /v6/index/u1313g.xml" "$L.47${T}kav8.zonealarm.com${T}/v6/index/u1313g.xml" \
    "http.request" ip.src http.host http.request.uri

# ---- .48 DIFF decoy, .49 IP literal in Kaspersky space, .50 fallback, .60, .61
expect "diff client GET /file.bin from .60" "$L.48$T$L.60$T$L.60${T}/file.bin" \
    "http.request" ip.src ip.dst http.host http.request.uri
expect ".60 answers a DIFF body" "$L.60$T$L.48" "http.response && http.file_data[0:4]==44:49:46:46" ip.src ip.dst
expect "ip updater GET base002.kdc, Host is the IP literal" \
    "$L.49$T$KIP$T$KIP${T}/bases/av/kdb/i386/base002.kdc" "http.request" ip.src ip.dst http.host http.request.uri
expect "77.74.176.10 answers KLZF" "$KIP$T$L.49" "http.response && http.file_data[0:4]==4b:4c:5a:46" ip.src ip.dst
expect "fallback asks 8.8.8.8 for s10.upd" "$L.50${T}8.8.8.8${T}s10.upd.kaspersky.com" \
    "dns.flags.response==0" ip.src ip.dst dns.qry.name
expect "8.8.8.8 answers" "8.8.8.8$T$L.50${T}s10.upd.kaspersky.com${T}203.0.113.122" \
    "dns.flags.response==1" ip.src ip.dst dns.qry.name dns.a
expect "link checker 77.74.177.5 GETs from .60 (inbound)" \
    "$CFR$T$L.60${T}Kaspersky Lab CFR link resolver cfradmins@kaspersky.com" \
    "http.request" ip.src ip.dst http.user_agent
session "nameless TLS session .61 -> 77.74.176.10:443" $L.61 $KIP 443
expect ".61 ClientHello without SNI" "$L.61$T$KIP$T" "tls.handshake.type==1" ip.src ip.dst tls.handshake.extensions_server_name

# ---- resolver .53
expect_set "resolver forwards only to the upstream" "$UPSTREAM " \
    "ip.src==$RESOLVER && dns.flags.response==0" ip.dst
expect_none "gw .1 is never an IP source except its RSTs to the scan" \
    "ip.src==$L.1 && !(tcp.flags.reset==1 && ip.dst==$L.30)"

[ -e "$TMP/tshark-failed" ] && FAIL=1
[ "$FAIL" -eq 0 ] && echo "all checks passed"
exit "$FAIL"
