#!/bin/bash
# tls-starttls.pcap: TLS after in-band upgrades. starttls.py (server) speaks
# each protocol's clear-text preamble and then hands the socket to Python's
# ssl (OpenSSL) for the handshake. Clients: `openssl s_client -starttls PROTO
# -servername NAME` (OpenSSL 3.0) for smtp, lmtp, imap, pop3, ftp (AUTH TLS),
# nntp, xmpp, sieve, irc, postgres, mysql, ldap; starttls.py's own RDP client
# (X.224 Connection Request with RDP_NEG_REQ, then TLS). Standard ports, plus
# SMTP on 2525 and PostgreSQL on 6432 (ports tshark does not know).
. "$(dirname "$0")/lib.sh"
OUT="$PCAP_DIR/tls-starttls.pcap"
ns_setup 1500
make_cert server
SPECS=(smtp:25 lmtp:24 imap:143 pop3:110 ftp:21 nntp:119 xmpp:5222 sieve:4190 irc:6667
       postgres:5432 mysql:3306 ldap:389 rdp:3389 smtp:2525 postgres:6432)
L=()
for s in "${SPECS[@]}"; do L+=(--listen "$s"); done
bg "$NS_S" timeout 60 python3 "$MAKE_DIR/starttls.py" server --host "$S4" "${L[@]}" \
    --cert "$WORK/server.crt" --key "$WORK/server.key" --lifetime 55
for s in "${SPECS[@]}"; do wait_port "$NS_S" tcp "${s#*:}"; done
cap_start "$OUT" "$IF_C" "tcp"
st() {  # st PROTO PORT SNI
    inc timeout 10 openssl s_client -connect "$S4:$2" -starttls "$1" -servername "$3" \
        </dev/null >/dev/null 2>&1 || true
}
st smtp 25 smtp.example.org
st lmtp 24 lmtp.example.org
st imap 143 imap.example.org
st pop3 110 pop3.example.org
st ftp 21 ftp.example.org
st nntp 119 nntp.example.org
st xmpp 5222 xmpp.example.org
st sieve 4190 sieve.example.org
st irc 6667 irc.example.org
st postgres 5432 ksn-file-geo.kaspersky-labs.com
st mysql 3306 mysql.example.org
st ldap 389 ldap.example.org
inc timeout 10 python3 "$MAKE_DIR/starttls.py" rdp --host "$S4" --port 3389 --sni ds.kaspersky.com || true
st smtp 2525 dnl-02.geo.kaspersky.com
st postgres 6432 pg.example.org
cap_stop "$CAP_PID"
echo "wrote $OUT"
