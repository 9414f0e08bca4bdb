#!/bin/bash
# dns-opcodes.pcap: DNS messages beyond a standard query with one question.
# - UPDATE (RFC 2136): knsupdate (knot-dnsutils) adds and deletes records in
#   zone example.org with a prerequisite, over UDP and over TCP (-v); dnsmasq
#   answers REFUSED, echoing the zone section.
# - NOTIFY (RFC 1996): kdig -t NOTIFY over UDP and TCP; dnsmasq answers.
# - IQUERY (RFC 1035 §6.4), STATUS (opcode 2) and a query with no question:
#   crafted by dns_opcode.py; dnsmasq answers NOTIMP without a question.
# - AXFR (RFC 5936): kdig AXFR of dnsmasq's authoritative zone example.org
#   (--auth-zone, 12 hosts, on a second server address 10.77.0.3): owner names that no question asked for.
# - mDNS announcements (RFC 6762 §8.3; responses carry no question, §6):
#   python-zeroconf (PyPI) registers "KSC Server (Office)._ipp._tcp.local."
#   on host ksc-server.local and unregisters it (goodbye, TTL 0).
. "$(dirname "$0")/lib.sh"
OUT="$PCAP_DIR/dns-opcodes.pcap"
ns_setup 1500
# Two dnsmasq: an ordinary one on 10.77.0.2 (answers everything below but
# AXFR) and an authoritative one on a second server address, 10.77.0.3.
S4B=10.77.0.3
ins ip addr add "$S4B/24" dev "$IF_S"
inc ip neigh replace "$S4B" lladdr "$(ins cat /sys/class/net/"$IF_S"/address)" dev "$IF_C" nud permanent
dnsmasq_start --host-record=ds.kaspersky.com,10.77.1.1 --local=/kaspersky.com/ --local=/example.org/
H=()
for i in $(seq 1 12); do H+=(--host-record="host$i.example.org,10.77.4.$i"); done
bg "$NS_S" timeout 60 dnsmasq --keep-in-foreground --no-resolv --no-hosts --no-poll \
    --pid-file= --user=root --bind-interfaces --listen-address="$S4B" --except-interface=lo \
    --log-facility=- --auth-server="ns.example.org,$S4B" --auth-zone=example.org \
    --auth-peer="$C4" --auth-soa=1,hostmaster.example.org "${H[@]}"
sleep 0.5
inc ip route add 224.0.0.0/4 dev "$IF_C"
ins ip route add 224.0.0.0/4 dev "$IF_S"
cap_start "$OUT" "$IF_C" "port 53 or udp port 5353"
upd() {
    printf '%s\n' "server $S4" "zone example.org" \
        "prereq nxdomain dnl-05.geo.kaspersky.com.example.org" \
        "update add dnl-05.geo.kaspersky.com.example.org 300 A 10.77.1.9" \
        "update delete old-host.example.org A" "send" \
        | inc timeout 5 knsupdate -t 2 -r 0 "$@" >/dev/null 2>&1 || true
}
upd
upd -v
inc kdig +timeout=1 +retry=0 "@$S4" -t NOTIFY example.org >/dev/null 2>&1 || true
inc kdig +tcp +timeout=1 +retry=0 "@$S4" -t NOTIFY kaspersky.com >/dev/null 2>&1 || true
inc timeout 5 python3 "$MAKE_DIR/dns_opcode.py" "$S4"
inc kdig +timeout=2 +retry=0 "@$S4B" example.org AXFR >/dev/null 2>&1 || true
ins timeout 20 python3 "$MAKE_DIR/mdns_announce.py" --address "$S4" \
    --instance "KSC Server (Office)" --host ksc-server.local. --seconds 2
cap_stop "$CAP_PID"
echo "wrote $OUT"
