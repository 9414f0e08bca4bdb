#!/bin/bash
# tcp-fastopen.pcap: TCP Fast Open (RFC 7413): data in the SYN.
# net.ipv4.tcp_fastopen=0x403 in both namespaces (client on, server on,
# server on for every listener without the socket option: kernel
# Documentation/networking/ip-sysctl.rst). Each client runs twice: the first
# connection to the server gets a cookie (SYN-ACK TFO option); every later
# one sends its first bytes in the SYN with the cookie. Clients: curl
# --tcp-fastopen (HTTP Host, and TLS: the ClientHello rides in the SYN), kdig
# +tcp +fastopen (DNS over TCP). Servers: httpd.py, openssl s_server, dnsmasq.
# (Debian's OpenSSL 3.0 s_client has no -tfo; it came in 3.2.)
. "$(dirname "$0")/lib.sh"
. "$MAKE_DIR/dns_zone.sh"
OUT="$PCAP_DIR/tcp-fastopen.pcap"
ns_setup 1500
inc sysctl -qw net.ipv4.tcp_fastopen=0x403
ins sysctl -qw net.ipv4.tcp_fastopen=0x403
http_server_start 80
tls_server_start 443
dnsmasq_start "${DNS_ZONE[@]}"
cap_start "$OUT" "$IF_C" "tcp"
for i in 1 2; do
    inc timeout 10 curl -s -o /dev/null --tcp-fastopen --resolve "dnl-01.geo.kaspersky.com:80:$S4" \
        "http://dnl-01.geo.kaspersky.com/updaters/updater$i.xml" || true
done
for i in 1 2; do
    inc timeout 10 curl -sk -o /dev/null --tcp-fastopen --resolve "ds.kaspersky.com:443:$S4" \
        https://ds.kaspersky.com/ || true
done
for n in s01.upd.kaspersky.com ksn-file-geo.kaspersky-labs.com; do
    inc kdig +tcp +fastopen +timeout=2 +retry=0 "@$S4" "$n" A >/dev/null 2>&1 || true
done
cap_stop "$CAP_PID"
echo "wrote $OUT"
