#!/bin/bash
# chromium-pq.pcap: Debian chromium (headless) fetches https://s01.upd.kaspersky.com/
# from openssl s_server over a veth with MTU 1500. Chromium offers an
# X25519MLKEM768 key share (~1.2 KB), so its ClientHello (~1.8 KB) does not
# fit one 1448-byte TCP segment and is sent in 2 segments.
. "$(dirname "$0")/lib.sh"
OUT="$PCAP_DIR/chromium-pq.pcap"
ns_setup 1500
tls_server_start 443
cap_start "$OUT" "$IF_C" "tcp port 443"
chromium_fetch https://s01.upd.kaspersky.com/ "MAP s01.upd.kaspersky.com $S4"
cap_stop "$CAP_PID"
echo "wrote $OUT"
