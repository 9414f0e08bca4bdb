#!/bin/bash
# tcp-simopen.pcap: TCP simultaneous open (RFC 9293 §3.5), made by the
# kernel. Neither side listens; both bind a port and connect() to the other
# (simopen.py). To make the SYNs cross, the client's address is removed first:
# the server side's SYN reaches the client namespace and is dropped there
# (no such local address) but is captured. Then the address comes back and
# the client connects: its SYN finds the server side in SYN-SENT, which
# answers SYN-ACK (with its own first SYN's sequence number); the client
# ACKs. So the first SYN on the wire comes from the side that will be the TLS
# server. Then TLS (Python ssl): the side whose SYN came second sends the
# ClientHello with SNI dnl-01.geo.kaspersky.com.
. "$(dirname "$0")/lib.sh"
OUT="$PCAP_DIR/tcp-simopen.pcap"
ns_setup 1500
make_cert server
MS=$(ins cat /sys/class/net/"$IF_S"/address)
cap_start "$OUT" "$IF_C" "tcp"
inc ip addr del "$C4/24" dev "$IF_C"
bg "$NS_S" timeout 15 python3 "$MAKE_DIR/simopen.py" server "$S4" 40000 "$C4" 40001 \
    --cert "$WORK/server.crt" --key "$WORK/server.key"
SPID=$LAST_PID
sleep 0.4
inc ip addr add "$C4/24" dev "$IF_C"
inc ip neigh replace "$S4" lladdr "$MS" dev "$IF_C" nud permanent
inc timeout 15 python3 "$MAKE_DIR/simopen.py" client "$C4" 40001 "$S4" 40000 --sni dnl-01.geo.kaspersky.com || true
wait "$SPID" 2>/dev/null || true
cap_stop "$CAP_PID"
echo "wrote $OUT"
