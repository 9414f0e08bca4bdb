#!/bin/bash
# tls-prefix.pcap: ClientHellos after a long clear-text prefix. starttls.py's
# "prefix" client sends about 1 KiB, then about 3 KiB of SMTP NOOP commands
# (each answered), then EHLO and STARTTLS, then TLS (Python ssl, OpenSSL) with
# SNI; the server is starttls.py smtp on 25 and on 2587.
. "$(dirname "$0")/lib.sh"
OUT="$PCAP_DIR/tls-prefix.pcap"
ns_setup 1500
make_cert server
bg "$NS_S" timeout 40 python3 "$MAKE_DIR/starttls.py" server --host "$S4" --listen smtp:25 \
    --listen smtp:2587 --cert "$WORK/server.crt" --key "$WORK/server.key" --lifetime 35
wait_port "$NS_S" tcp 25; wait_port "$NS_S" tcp 2587
cap_start "$OUT" "$IF_C" "tcp"
pc() { inc timeout 10 python3 "$MAKE_DIR/starttls.py" prefix --host "$S4" --port "$1" \
         --prefix-bytes "$2" --sni "$3" || true; }
pc 25 1024 s01.upd.kaspersky.com
pc 25 3072 example.org
pc 2587 3072 dc1.ksn.kaspersky-labs.com
cap_stop "$CAP_PID"
echo "wrote $OUT"
