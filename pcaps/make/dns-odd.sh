#!/bin/bash
# dns-odd.pcap: DNS names that are valid DNS (RFC 1035 §3.1, RFC 2181 §11:
# any octet in a label) but not host names (RFC 952, RFC 1123 §2.1): service
# labels (RFC 2782 SRV, RFC 7489 _dmarc), DNS-tunnel-like labels with + / =,
# a space, a wildcard, an escaped dot and a NUL inside a label, raw non-ASCII
# octets, an IDN as raw UTF-8 (kdig +noidn) and as punycode (RFC 3492), a
# DNS-SD instance name with a space (RFC 6763 §4.3) over mDNS, an LLMNR name
# with an underscore. kdig (knot-dnsutils) queries dnsmasq, which answers
# SRV/TXT/CNAME/PTR records for some of them and NXDOMAIN for the rest.
. "$(dirname "$0")/lib.sh"
OUT="$PCAP_DIR/dns-odd.pcap"
ns_setup 1500
dnsmasq_start --local=/example.org/ --host-record=example.org,10.77.3.1 \
    --host-record=sip.example.org,10.77.3.2 \
    --srv-host=_sip._tcp.example.org,sip.example.org,5060 \
    --txt-record=_dmarc.example.org,v=DMARC1 \
    --txt-record='mzxw6ytboi+/=.t.example.org,tunnel' \
    --cname='odd_cname.example.org,sip.example.org' \
    --ptr-record='my printer._ipp._tcp.example.org,sip.example.org'
# multicast route for the mDNS / LLMNR queries (link-local, stays on the veth)
inc ip route add 224.0.0.0/4 dev "$IF_C"
cap_start "$OUT" "$IF_C" "udp port 53 or udp port 5353 or udp port 5355"
q() { inc kdig +timeout=1 +retry=0 +noidn "@$S4" "$@" >/dev/null 2>&1 || true; }
q _sip._tcp.example.org SRV
q _dmarc.example.org TXT
q 'mzxw6ytboi+/=.t.example.org' TXT
q odd_cname.example.org A
q 'my\032printer._ipp._tcp.example.org' PTR
q 'hello\032world.example.org' A
q '*.example.org' A
q 'a\.b.example.org' A
q 'a\000b.t.example.org' A
q '\200\201.t.example.org' A
q 'x\255y\031z.t.example.org' A
q 'bücher.example.org' A
q xn--bcher-kva.example.org A
q 'dnl-01.geo.kaspersky.com\032.example.org' A
inc kdig +timeout=1 +retry=0 +notcp @224.0.0.251 -p 5353 'Office\032Printer._ipp._tcp.local' SRV >/dev/null 2>&1 || true
inc kdig +timeout=1 +retry=0 +notcp @224.0.0.251 -p 5353 _services._dns-sd._udp.local PTR >/dev/null 2>&1 || true
inc kdig +timeout=1 +retry=0 +notcp @224.0.0.252 -p 5355 ksc_server A >/dev/null 2>&1 || true
cap_stop "$CAP_PID"
echo "wrote $OUT"
