#!/bin/bash
# dns-udp.pcap: kdig queries over UDP (A, AAAA, CNAME chains, NXDOMAIN, IPv4
# and IPv6 transport) answered by dnsmasq, plus one mDNS and one LLMNR query.
. "$(dirname "$0")/lib.sh"
. "$MAKE_DIR/dns_zone.sh"
OUT="$PCAP_DIR/dns-udp.pcap"
ns_setup 1500
# multicast route for the mDNS / LLMNR queries (link-local, stays on the veth)
inc ip route add 224.0.0.0/4 dev "$IF_C"
dnsmasq_start --listen-address="$S6" "${DNS_ZONE[@]}"
cap_start "$OUT" "$IF_C" "udp port 53 or udp port 5353 or udp port 5355"
q() { inc kdig +timeout=2 +retry=0 +noall +answer "@$1" "$2" "$3" || true; }
for n in ds.kaspersky.com dnl-01.geo.kaspersky.com s01.upd.kaspersky.com \
         dc1.ksn.kaspersky-labs.com ksn-file-geo.kaspersky-labs.com \
         gc.kis.v2.scr.kaspersky-labs.com; do
    q "$S4" "$n" A
done
q "$S4" ds.kaspersky.com AAAA
q "$S6" dc1.ksn.kaspersky-labs.com AAAA
q "$S4" activation-v2.kaspersky.com A
q "$S6" av-updates.example.org AAAA
q "$S4" nosuch.kaspersky.com A
for n in notkaspersky.com kaspersky.com.attacker.example xkaspersky-labs.com example.org; do
    q "$S4" "$n" A
done
# mDNS (RFC 6762) and LLMNR (RFC 4795) one-shot queries; nobody answers.
inc kdig +timeout=1 +retry=0 +notcp @224.0.0.251 -p 5353 ksc-server.local A || true
inc kdig +timeout=1 +retry=0 +notcp @224.0.0.252 -p 5355 ksc-server A || true
cap_stop "$CAP_PID"
echo "wrote $OUT"
