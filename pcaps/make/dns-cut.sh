#!/bin/bash
# dns-snaplen.pcap and dns-cut.pcap: DNS messages cut short.
# The same traffic is captured twice at once: whole (dns-cut.pcap, the source
# of cut.py's dns-cut-tcp.pcap) and with tcpdump -s 110 (dns-snaplen.pcap:
# every frame keeps its first 110 bytes, so each answer longer than that is
# cut, as on a sensor with a short snaplen). Traffic: kdig A/AAAA queries for
# names with CNAME chains (dnsmasq, dns_zone.sh), over IPv4 and IPv6; a
# 3.1 KB TXT answer that dnsmasq truncates for a 512-byte EDNS buffer
# (TC bit, RFC 1035 §4.1.1, RFC 6891 §7), then the same over TCP; an AXFR of
# dnsmasq's authoritative zone example.org (150 hosts, 3 TCP segments) on a
# second server address, 10.77.0.3.
. "$(dirname "$0")/lib.sh"
. "$MAKE_DIR/dns_zone.sh"
ns_setup 1500
S4B=10.77.0.3
ins ip addr add "$S4B/24" dev "$IF_S"
inc ip neigh replace "$S4B" lladdr "$(ins cat /sys/class/net/"$IF_S"/address)" dev "$IF_C" nud permanent
TXT="ksn-info-geo.kaspersky-labs.com"
for i in $(seq -w 1 15); do
    TXT="$TXT,$(printf 'kaspersky-cut-%s-' "$i")$(head -c 182 /dev/zero | tr '\0' 'x')"
done
dnsmasq_start --listen-address="$S6" --edns-packet-max=4096 --txt-record="$TXT" "${DNS_ZONE[@]}"
H=()
for i in $(seq 1 150); do H+=(--host-record="host$i.example.org,10.77.4.$((i % 250 + 1))"); done
bg "$NS_S" timeout 60 dnsmasq --keep-in-foreground --no-resolv --no-hosts --no-poll \
    --pid-file= --user=root --bind-interfaces --listen-address="$S4B" --except-interface=lo \
    --log-facility=- --auth-server="ns.example.org,$S4B" --auth-zone=example.org \
    --auth-peer="$C4" --auth-soa=1,hostmaster.example.org "${H[@]}"
sleep 0.5
F="port 53"
cap_start "$PCAP_DIR/dns-cut.pcap" "$IF_C" "$F";                  P1=$CAP_PID
cap_start "$PCAP_DIR/dns-snaplen.pcap" "$IF_C" "udp $F" -s 150;   P2=$CAP_PID
q() { inc kdig +timeout=2 +retry=0 "$@" >/dev/null 2>&1 || true; }
q "@$S4" activation-v2.kaspersky.com A
q "@$S4" av-updates.example.org A
q "@$S6" activation-v2.kaspersky.com AAAA
q "@$S4" gc.kis.v2.scr.kaspersky-labs.com AAAA
q "@$S4" +bufsize=512 +ignore ksn-info-geo.kaspersky-labs.com TXT
q "@$S4" +tcp ksn-info-geo.kaspersky-labs.com TXT
q "@$S4B" example.org AXFR
cap_stop "$P1"; cap_stop "$P2"
echo "wrote dns-cut.pcap dns-snaplen.pcap"
