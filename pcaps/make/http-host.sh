#!/bin/bash
# http-host.pcap: plain HTTP/1.1 requests with Host headers (RFC 9112 §3.2)
# to httpd.py in the server namespace: two requests on one keep-alive
# connection, IPv4 and IPv6, decoys, and requests through a forward proxy
# (absolute-form GET, RFC 9112 §3.2.2, and CONNECT, RFC 9110 §9.3.6, whose
# tunnel carries a TLS ClientHello to openssl s_server).
. "$(dirname "$0")/lib.sh"
OUT="$PCAP_DIR/http-host.pcap"
ns_setup 1500
http_server_start 80
bg "$NS_S" timeout 120 python3 "$MAKE_DIR/httpd.py" --bind "$S6" --port 80
tls_server_start 443
http_server_start 3128 --proxy --upstream "$S4:443"
# Ethernet capture, plus an SLL capture (http-host-sll.pcap, also used for
# the two-interface pcapng).
cap_start "$OUT" "$IF_C" "tcp port 80 or tcp port 3128"; P1=$CAP_PID
cap_start "$PCAP_DIR/http-host-sll.pcap" any "tcp port 80 or tcp port 3128" -y LINUX_SLL; P2=$CAP_PID
C="timeout 10 curl -s -o /dev/null"
# keep-alive: curl reuses the connection for the second URL (same host)
inc $C --resolve "dnl-01.geo.kaspersky.com:80:$S4" \
    http://dnl-01.geo.kaspersky.com/updaters/updater.xml.dif \
    http://dnl-01.geo.kaspersky.com/index/u1313g.xml.dif || true
# Host header set by hand, mixed case and with a port
inc $C -H "Host: DNL-02.GEO.Kaspersky.com:80" "http://$S4/bases/av/kdb/i386/kdb-i386-0607g.xml.dif" || true
inc $C -A "KL Cure Utility/1.0" --resolve "downloads.kaspersky-labs.com:80:$S4" http://downloads.kaspersky-labs.com/ || true
# decoys and ordinary names
inc $C --resolve "notkaspersky.com:80:$S4" http://notkaspersky.com/ || true
inc $C --resolve "kaspersky.com.attacker.example:80:$S4" http://kaspersky.com.attacker.example/ || true
inc $C --resolve "xkaspersky-labs.com:80:[$S6]" http://xkaspersky-labs.com/ || true
inc $C --resolve "example.org:80:$S4" http://example.org/ || true
# through the forward proxy: absolute-form GET, then CONNECT + TLS
inc $C -x "http://$S4:3128" http://dnl-19.geo.kaspersky.com/index/u1313g.xml.dif || true
inc $C -k -x "http://$S4:3128" https://downloads.upd.kaspersky.com/ || true
cap_stop "$P1"; cap_stop "$P2"
echo "wrote $OUT"
