#!/bin/bash
# http-body.pcap: HTTP/1.1 downloads and an upload whose bodies span many
# full-size segments, on keep-alive connections, with real reordering and
# curl against Python's http.server (make/httpd.py --dir) in the server
# namespace, segmentation offload off on both veths so that the capture holds
# the MTU-sized segments a span port would see. (Reordering and
# retransmissions: http-body-reordered.pcap, derived by reorder.py.)
#   1. one connection, three GETs (Host dnl-01.geo.kaspersky.com): a 300 KB
#      update file starting with the KLZF magic, a 200 KB file, a small one;
#   2. one connection: a 100 KB POST body (no Expect: 100-continue), then a
#      GET (Host example.org).
. "$(dirname "$0")/lib.sh"
OUT="$PCAP_DIR/http-body.pcap"
ns_setup 1500
for side in c s; do
    if [ $side = c ]; then run=inc; dev=$IF_C; else run=ins; dev=$IF_S; fi
    $run ethtool -K "$dev" tso off gso off gro off >/dev/null
done
FILES="$WORK/files"
mkdir -p "$FILES/bases/av/kdb/i386" "$FILES/updaters"
{ printf 'KLZF'; head -c 300000 /dev/urandom; } >"$FILES/bases/av/kdb/i386/kdb-i386-0607g.kdc"
head -c 200000 /dev/urandom >"$FILES/updaters/updater.xml.dif"
echo "index" >"$FILES/index.txt"
head -c 100000 /dev/urandom >"$WORK/upload.bin"
bg "$NS_S" timeout 120 python3 "$MAKE_DIR/httpd.py" --bind "$S4" --port 80 --dir "$FILES"
wait_port "$NS_S" tcp 80
cap_start "$OUT" "$IF_C" "tcp port 80"; P=$CAP_PID
C="timeout 30 curl -s -o /dev/null"
inc $C --resolve "dnl-01.geo.kaspersky.com:80:$S4" \
    http://dnl-01.geo.kaspersky.com/bases/av/kdb/i386/kdb-i386-0607g.kdc \
    http://dnl-01.geo.kaspersky.com/updaters/updater.xml.dif \
    http://dnl-01.geo.kaspersky.com/index.txt >/dev/null || true
inc $C --resolve "example.org:80:$S4" -H "Expect:" --data-binary @"$WORK/upload.bin" \
    http://example.org/upload --next -s -o /dev/null --resolve "example.org:80:$S4" \
    http://example.org/index.txt >/dev/null || true
cap_stop "$P"
echo "wrote $OUT"
