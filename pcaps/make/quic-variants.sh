#!/bin/bash
# quic-variants.pcap: QUIC beyond one v1 handshake on 443, all made by
# aioquic (PyPI) client and server (quicmore.py):
# - v1 on UDP 4433 and on 853 (the DNS-over-QUIC port, RFC 9250; ALPN doq);
# - resumption with 0-RTT (RFC 9001 §4.6.1): a first connection to :4433
#   saves the session ticket, a second one with the same SNI resumes and
#   sends stream data in a 0-RTT packet coalesced with its Initial;
# - Retry (RFC 9000 §8.1.2): the server on :8443 answers the first Initial
#   with a Retry; the client's second Initial uses the new DCID and token;
# - QUIC version 2 (RFC 9369) on :4433;
# - draft-29 (version 0xff00001d, still seen in the wild) between aioquic
#   0.9.20 client and server on :9443 (the last aioquic that speaks drafts;
#   installed with pip into the venv /opt/aioquic-old, see README).
# - v1 over IPv6 on :4433.
. "$(dirname "$0")/lib.sh"
OUT="$PCAP_DIR/quic-variants.pcap"
OLDPY=${AIOQUIC_OLD_PYTHON:-/opt/aioquic-old/bin/python}
ns_setup 1500
make_cert server
srv() {  # srv PYTHON HOST PORT [args]
    local py=$1 host=$2 port=$3; shift 3
    bg "$NS_S" timeout 60 "$py" "$MAKE_DIR/quicmore.py" server --host "$host" --port "$port" \
        --cert "$WORK/server.crt" --key "$WORK/server.key" --lifetime 50 "$@"
}
srv python3 "$S4" 4433
srv python3 "$S6" 4433
srv python3 "$S4" 853 --alpn doq
srv python3 "$S4" 8443 --retry
srv "$OLDPY" "$S4" 9443
for p in 4433 853 8443 9443; do wait_port "$NS_S" udp "$p"; done
sleep 0.5
cap_start "$OUT" "$IF_C" "udp"
cl() {  # cl PYTHON HOST PORT SNI [args]
    local py=$1 host=$2 port=$3 sni=$4; shift 4
    inc timeout 12 "$py" "$MAKE_DIR/quicmore.py" client --host "$host" --port "$port" \
        --sni "$sni" --lifetime 8 "$@" || echo "client $sni :$port failed" >&2
}
cl python3 "$S4" 4433 dnl-05.geo.kaspersky.com
cl python3 "$S4" 853 dns.example.org --alpn doq
cl python3 "$S4" 4433 ksn-url-geo.kaspersky-labs.com --ticket "$WORK/ticket"
cl python3 "$S4" 4433 ksn-url-geo.kaspersky-labs.com --ticket "$WORK/ticket" --early
cl python3 "$S4" 8443 ds.kaspersky.com
cl python3 "$S4" 4433 activation-v2.kaspersky.com --version 2
cl "$OLDPY" "$S4" 9443 s01.upd.kaspersky.com --version draft-29
cl python3 "$S6" 4433 example.org
cap_stop "$CAP_PID"
echo "wrote $OUT"
