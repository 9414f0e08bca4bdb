#!/bin/bash
# quic-aioquic.pcap: full QUIC v1 handshakes (RFC 9000, RFC 9001) between the
# aioquic (PyPI) client and server in quicpair.py: one with SNI
# dc1-st.ksn.kaspersky-labs.com, one with the decoy xkaspersky-labs.com, one
# over IPv6 with ksn-url-geo.kaspersky-labs.com.
. "$(dirname "$0")/lib.sh"
OUT="$PCAP_DIR/quic-aioquic.pcap"
ns_setup 1500
make_cert server
bg "$NS_S" timeout 40 python3 "$MAKE_DIR/quicpair.py" server --host "$S4" --port 443 \
    --cert "$WORK/server.crt" --key "$WORK/server.key" --lifetime 30
bg "$NS_S" timeout 40 python3 "$MAKE_DIR/quicpair.py" server --host "$S6" --port 443 \
    --cert "$WORK/server.crt" --key "$WORK/server.key" --lifetime 30
wait_port "$NS_S" udp 443
sleep 0.5
cap_start "$OUT" "$IF_C" "udp port 443"
for x in "$S4 dc1-st.ksn.kaspersky-labs.com" "$S4 xkaspersky-labs.com" "$S6 ksn-url-geo.kaspersky-labs.com"; do
    set -- $x
    inc timeout 15 python3 "$MAKE_DIR/quicpair.py" client --host "$1" --sni "$2" --lifetime 8 || echo "client $2 failed" >&2
done
cap_stop "$CAP_PID"
echo "wrote $OUT"
