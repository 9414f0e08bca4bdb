#!/bin/bash
# quic-chromium.pcap: Debian chromium (headless) with QUIC forced for
# dc1.ksn.kaspersky-labs.com:443 sends QUIC v1 Initial packets (RFC 9000
# §17.2.2) carrying its ClientHello in CRYPTO frames towards the server
# namespace. No QUIC server runs: a socat UDP sink on the server swallows the
# datagrams (so no ICMP port-unreachable aborts the handshake early); only the
# client's Initials (and their retransmissions) are captured. Chromium gives
# up after CHROME_TIMEOUT seconds.
. "$(dirname "$0")/lib.sh"
OUT="$PCAP_DIR/quic-chromium.pcap"
ns_setup 1500
bg "$NS_S" timeout 60 socat -u "UDP-RECV:443,bind=$S4" /dev/null
wait_port "$NS_S" udp 443
cap_start "$OUT" "$IF_C" "udp port 443"
CHROME_TIMEOUT=6 chromium_fetch https://dc1.ksn.kaspersky-labs.com/ "MAP dc1.ksn.kaspersky-labs.com $S4" \
    --enable-quic --origin-to-force-quic-on=dc1.ksn.kaspersky-labs.com:443
cap_stop "$CAP_PID"
echo "wrote $OUT"
