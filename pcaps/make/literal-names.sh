#!/bin/bash
# literal-names.pcap: HTTP Host and TLS SNI that are IP address literals.
# curl to http://10.77.0.2/, http://10.77.0.2:8080/, http://[fd77::2]/ and
# http://[fd77::2]:8080/ (Host is the literal as curl writes it: RFC 7230
# §5.4, RFC 3986 §3.2.2 brackets); curl -H "Host: 10.77.1.2" to a name.
# openssl s_client -servername 10.77.0.2 and -servername fd77::2 put literals
# in the SNI, which RFC 6066 §3 forbids but clients send. curl to
# https://10.77.0.2/ sends no SNI (curl follows RFC 6066) and is in the
# capture as the nameless case.
. "$(dirname "$0")/lib.sh"
OUT="$PCAP_DIR/literal-names.pcap"
ns_setup 1500
http_server_start 80
http_server_start 8080
bg "$NS_S" timeout 120 python3 "$MAKE_DIR/httpd.py" --bind "$S6" --port 80
bg "$NS_S" timeout 120 python3 "$MAKE_DIR/httpd.py" --bind "$S6" --port 8080
wait_port "$NS_S" tcp 80
tls_server_start 443
cap_start "$OUT" "$IF_C" "tcp"
c() { inc timeout 10 curl -sk -o /dev/null "$@" || true; }
c "http://$S4/updaters/updater.xml"
c "http://$S4:8080/index/u1313g.xml.dif"
c "http://[$S6]/updaters/updater.xml"
c "http://[$S6]:8080/index/u1313g.xml.dif"
c -H "Host: 10.77.1.2" --resolve "dnl-01.geo.kaspersky.com:80:$S4" http://dnl-01.geo.kaspersky.com/x
sc() { inc timeout 10 openssl s_client -connect "$1" -servername "$2" </dev/null >/dev/null 2>&1 || true; }
sc "$S4:443" "$S4"
sc "[$S6]:443" "$S6"
c "https://$S4/"
cap_stop "$CAP_PID"
echo "wrote $OUT"
