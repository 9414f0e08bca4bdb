#!/bin/bash
# tls-ports.pcap: TLS from the first byte on ports other than 443.
# openssl s_server (-www) on 13000 (Kaspersky Security Center's Network Agent
# port), 8443, 4433, 993 (IMAPS), 465 (SMTPS) and 12345 (v4 and v6), clients
# `openssl s_client -servername NAME`; kdig +tls (DNS over TLS, RFC 7858) to
# s_server on 853 with +tls-sni. s_server does not speak DNS: the handshake
# completes and kdig gives up.
. "$(dirname "$0")/lib.sh"
OUT="$PCAP_DIR/tls-ports.pcap"
ns_setup 1500
make_cert server
for p in 13000 8443 4433 993 465 853; do tls_server_start "$p"; done
for a in "$S4:12345" "[$S6]:12345"; do
    bg "$NS_S" timeout 120 openssl s_server -quiet -accept "$a" -www \
        -cert "$WORK/server.crt" -key "$WORK/server.key"
done
wait_port "$NS_S" tcp 12345
cap_start "$OUT" "$IF_C" "tcp"
sc() { inc timeout 10 openssl s_client -connect "$1" -servername "$2" </dev/null >/dev/null 2>&1 || true; }
sc "$S4:13000" ds.kaspersky.com
sc "$S4:8443" dnl-05.geo.kaspersky.com
sc "$S4:4433" example.org
sc "$S4:993" imap.example.org
sc "$S4:465" smtp.example.org
sc "$S4:12345" notkaspersky.com
sc "[$S6]:12345" dc1.ksn.kaspersky-labs.com
inc kdig +tls +tls-sni=dns.example.org +timeout=2 +retry=0 "@$S4" example.org A >/dev/null 2>&1 || true
cap_stop "$CAP_PID"
echo "wrote $OUT"
