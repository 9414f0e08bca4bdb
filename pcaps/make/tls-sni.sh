#!/bin/bash
# tls-sni.pcap: TLS ClientHellos with SNI (RFC 6066 §3) from openssl s_client
# and curl against openssl s_server (self-signed cert) on the server namespace.
# The same traffic is captured three ways at once: on the veth (Ethernet,
# tls-sni.pcap) and on "any" as Linux cooked SLL (tls-sni-sll.pcap) and SLL2
# (tls-sni-sll2.pcap).
. "$(dirname "$0")/lib.sh"
OUT="$PCAP_DIR/tls-sni.pcap"
ns_setup 1500
tls_server_start 443
F="tcp port 443"
cap_start "$OUT" "$IF_C" "$F";                                   P1=$CAP_PID
cap_start "$PCAP_DIR/tls-sni-sll.pcap" any "$F" -y LINUX_SLL;     P2=$CAP_PID
cap_start "$PCAP_DIR/tls-sni-sll2.pcap" any "$F" -y LINUX_SLL2;   P3=$CAP_PID
sc() { inc timeout 10 openssl s_client -connect "$1" -servername "$2" "${@:3}" </dev/null >/dev/null 2>&1 || true; }
sc "$S4:443" ds.kaspersky.com
inc timeout 10 curl -sk -o /dev/null --resolve "activation-v2.kaspersky.com:443:$S4" \
    https://activation-v2.kaspersky.com/activationservice/activationservice.svc || true
sc "$S4:443" dc1.ksn.kaspersky-labs.com -tls1_2
inc timeout 10 curl -sk -o /dev/null --resolve "kaspersky.com.attacker.example:443:$S4" \
    https://kaspersky.com.attacker.example/ || true
sc "$S4:443" notkaspersky.com
inc timeout 10 curl -sk -o /dev/null --resolve "xkaspersky-labs.com:443:[$S6]" \
    https://xkaspersky-labs.com/ || true
sc "[$S6]:443" s01.upd.kaspersky.com
sc "$S4:443" example.org
cap_stop "$P1"; cap_stop "$P2"; cap_stop "$P3"
echo "wrote $OUT tls-sni-sll.pcap tls-sni-sll2.pcap"
