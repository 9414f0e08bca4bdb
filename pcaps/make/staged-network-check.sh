#!/bin/bash
# Check that pcaps/staged-network.pcap holds every staged event (see
# staged-network.sh), using tshark as an independent dissector. Prints one
# line per check and exits non-zero if any check fails. Needs only tshark.
set -uo pipefail
PCAP=${1:-"$(cd "$(dirname "$0")/.." && pwd)/staged-network.pcap"}
FAIL=0

# rows FILTER FIELD...: tab-separated field rows of the frames matching FILTER
rows() {
    local f=$1; shift
    local args=() e
    for e in "$@"; do args+=(-e "$e"); done
    tshark -n -o tcp.reassemble_out_of_order:TRUE -o ip.check_checksum:TRUE \
        -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE -r "$PCAP" -Y "$f" -T fields \
        -E separator=/t -E occurrence=a -E aggregator=, "${args[@]}" 2>/dev/null
}
# expect DESC WANT FILTER FIELD...: WANT (a fixed string) is one of the rows
expect() {
    local desc=$1 want=$2; shift 2
    if rows "$@" | grep -qxF -- "$want"; then
        echo "ok   $desc"
    else
        echo "FAIL $desc (want row: $want)"
        FAIL=1
    fi
}
# expect_none DESC FILTER: no frame matches FILTER
expect_none() {
    local n
    n=$(rows "$2" frame.number | wc -l)
    if [ "$n" -eq 0 ]; then echo "ok   $1"; else echo "FAIL $1 ($n frames)"; FAIL=1; fi
}

T=$'\t'
KSC=10.66.0.10; MIRROR=10.66.0.11; MANAGED=10.66.0.21; UNMANAGED=10.66.0.22
CLIENT1=10.66.0.31; BROWSER=10.66.0.41; NOSNI=10.66.0.51; RESOLVER=10.66.0.53
UPSTREAM=10.99.0.53

# whole capture
expect_none "only IPv4 frames (no ARP, IPv6, IGMP)" "!ip || igmp"
# checksum status: 0 Bad, 1 Good, 2 Unverified (validation is on in rows())
expect_none "every IP/TCP/UDP checksum verified good" \
    "ip.checksum.status!=1 || tcp.checksum.status!=1 || udp.checksum.status!=1"
expect_none "no TCP retransmission" "tcp.analysis.retransmission"
n=$(rows "frame" frame.number | wc -l)
sz=$(stat -c %s "$PCAP")
echo "info $n frames, $sz bytes"

# 1-3. managed -> ksc (TCP 13000 TLS without SNI, UDP 15000) and the mirror
expect "managed TLS ClientHello to ksc:13000 without SNI" \
    "$MANAGED$T$KSC${T}13000$T" \
    "tls.handshake.type==1" ip.src ip.dst tcp.dstport tls.handshake.extensions_server_name
expect "managed UDP datagram to ksc:15000" "$MANAGED$T$KSC${T}15000" \
    "udp.dstport==15000" ip.src ip.dst udp.dstport
expect "managed resolves the internal mirror name" \
    "$RESOLVER$T$MANAGED${T}kav-mirror.corp.example$T$MIRROR" \
    "dns.flags.response==1" ip.src ip.dst dns.qry.name dns.a
for p in /bases/av/kdb/i386/kdb-i386-0607g.klz /index/u1313g.xml.dif; do
    expect "managed GET $p from the mirror" \
        "$MANAGED$T$MIRROR${T}kav-mirror.corp.example$T$p" \
        "http.request" ip.src ip.dst http.host http.request.uri
done
# 4b4c5a46 = "KLZF", 44494646 = "DIFF" (Zeek general.sig magics)
expect "mirror answers a KLZF body" "$MIRROR$T${MANAGED}" \
    "http.response && http.file_data[0:4]==4b:4c:5a:46" ip.src ip.dst
expect "mirror answers a DIFF body" "$MIRROR$T${MANAGED}" \
    "http.response && http.file_data[0:4]==44:49:46:46" ip.src ip.dst
expect_none "managed sends no Kaspersky name" \
    "ip.src==$MANAGED && (dns.qry.name contains \"kaspersky\" || tls.handshake.extensions_server_name contains \"kaspersky\" || http.host contains \"kaspersky\")"

# 4. unmanaged
for n in ds.kaspersky.com dc1.ksn.kaspersky-labs.com dnl-01.geo.kaspersky.com; do
    expect "unmanaged asks the resolver for $n" "$UNMANAGED$T$RESOLVER$T$n" \
        "dns.flags.response==0" ip.src ip.dst dns.qry.name
done
expect "unmanaged TLS SNI ds.kaspersky.com" "$UNMANAGED${T}10.99.0.20${T}ds.kaspersky.com" \
    "tls.handshake.type==1" ip.src ip.dst tls.handshake.extensions_server_name
expect "unmanaged TLS SNI dc1.ksn.kaspersky-labs.com" \
    "$UNMANAGED${T}10.99.0.21${T}dc1.ksn.kaspersky-labs.com" \
    "tls.handshake.type==1" ip.src ip.dst tls.handshake.extensions_server_name
expect "unmanaged HTTP Host dnl-01.geo.kaspersky.com" \
    "$UNMANAGED${T}10.99.0.101${T}dnl-01.geo.kaspersky.com" \
    "http.request" ip.src ip.dst http.host
expect "dnl-01 answers a KLZF body" "10.99.0.101$T${UNMANAGED}" \
    "http.response && http.file_data[0:4]==4b:4c:5a:46" ip.src ip.dst
expect "unmanaged asks 8.8.8.8 for activation-v2.kaspersky.com" \
    "${UNMANAGED}${T}8.8.8.8${T}activation-v2.kaspersky.com" \
    "dns.flags.response==0" ip.src ip.dst dns.qry.name
expect "8.8.8.8 answers" "8.8.8.8${T}${UNMANAGED}${T}activation-v2.kaspersky.com${T}10.99.0.40" \
    "dns.flags.response==1" ip.src ip.dst dns.qry.name dns.a

# 5. resolver and client1
expect "client1 asks the resolver for s01.upd.kaspersky.com" \
    "$CLIENT1$T$RESOLVER${T}s01.upd.kaspersky.com" \
    "dns.flags.response==0" ip.src ip.dst dns.qry.name
for n in s01.upd.kaspersky.com ds.kaspersky.com dnl-05.geo.kaspersky.com; do
    expect "resolver forwards $n upstream" "$RESOLVER$T$UPSTREAM$T$n" \
        "dns.flags.response==0" ip.src ip.dst dns.qry.name
done
expect_none "client1 opens no TCP connection" "ip.src==$CLIENT1 && tcp"

# 6. browser
for n in www.kaspersky.com support.kaspersky.com; do
    expect "browser TLS SNI $n" "$BROWSER${T}10.99.0.30$T$n" \
        "tls.handshake.type==1" ip.src ip.dst tls.handshake.extensions_server_name
done

# 7. nosni
expect "nosni gets dnl-05 = 10.99.0.105 TTL 300" \
    "$RESOLVER$T$NOSNI${T}dnl-05.geo.kaspersky.com${T}10.99.0.105${T}300" \
    "dns.flags.response==1" ip.src ip.dst dns.qry.name dns.a dns.resp.ttl
expect "nosni ClientHello to 10.99.0.105:443 without SNI" \
    "$NOSNI${T}10.99.0.105${T}443$T" \
    "tls.handshake.type==1" ip.src ip.dst tcp.dstport tls.handshake.extensions_server_name
expect "nosni sends 'x\\n' to 10.99.0.105:80" "$NOSNI${T}10.99.0.105${T}780a" \
    "tcp.dstport==80 && tcp.len>0" ip.src ip.dst tcp.payload

[ "$FAIL" -eq 0 ] && echo "all checks passed"
exit "$FAIL"
