#!/bin/bash
# tunnel-vxlan.pcap: a real kernel VXLAN tunnel (RFC 7348, UDP 4789) between
# the namespaces; overlay traffic (DNS over UDP, TLS ClientHello with SNI,
# HTTP Host, over IPv4 and IPv6) is captured on the underlay veth.
# tunnel-inner.pcap: the same overlay traffic captured on the VXLAN device
# (inner Ethernet frames); encap.py wraps these real frames into the
# encapsulations this kernel cannot make (GRE, IPIP, SIT, Geneve, ...).
# Overlay: client 10.88.0.1 fd88::1, server 10.88.0.2 fd88::2.
. "$(dirname "$0")/lib.sh"
OUT="$PCAP_DIR/tunnel-vxlan.pcap"
ns_setup 1500
inc ip link add vx0 type vxlan id 42 local "$C4" remote "$S4" dstport 4789 dev "$IF_C"
ins ip link add vx0 type vxlan id 42 local "$S4" remote "$C4" dstport 4789 dev "$IF_S"
for ns in "$NS_C" "$NS_S"; do ip netns exec "$ns" ethtool -K vx0 tx off >/dev/null; done
inc ip link set vx0 up; ins ip link set vx0 up
inc ip addr add 10.88.0.1/24 dev vx0; ins ip addr add 10.88.0.2/24 dev vx0
inc ip addr add fd88::1/64 dev vx0 nodad; ins ip addr add fd88::2/64 dev vx0 nodad
mc=$(inc cat /sys/class/net/vx0/address); ms=$(ins cat /sys/class/net/vx0/address)
inc ip neigh replace 10.88.0.2 lladdr "$ms" dev vx0 nud permanent
ins ip neigh replace 10.88.0.1 lladdr "$mc" dev vx0 nud permanent
inc ip -6 neigh replace fd88::2 lladdr "$ms" dev vx0 nud permanent
ins ip -6 neigh replace fd88::1 lladdr "$mc" dev vx0 nud permanent
dnsmasq_start --listen-address=10.88.0.2 --listen-address=fd88::2 \
    --host-record=ds.kaspersky.com,10.77.1.1,fd77:1::1 \
    --host-record=notkaspersky.com,10.77.2.1,fd77:2::1
tls_server_start 443
bg "$NS_S" timeout 120 python3 "$MAKE_DIR/httpd.py" --bind 10.88.0.2 --port 80
bg "$NS_S" timeout 120 python3 "$MAKE_DIR/httpd.py" --bind fd88::2 --port 80
wait_port "$NS_S" tcp 80
cap_start "$OUT" "$IF_C" "udp port 4789"; P1=$CAP_PID
cap_start "$PCAP_DIR/tunnel-inner.pcap" vx0 "not (icmp6 or arp)"; P2=$CAP_PID
for ov in 10.88.0.2 fd88::2; do
    b=$ov; [ "${ov#*:}" != "$ov" ] && b="[$ov]"
    inc kdig +timeout=2 +retry=0 +noall +answer "@$ov" ds.kaspersky.com A || true
    inc kdig +timeout=2 +retry=0 +noall +answer "@$ov" notkaspersky.com A || true
    inc timeout 10 openssl s_client -connect "$b:443" -servername dc1.ksn.kaspersky-labs.com </dev/null >/dev/null 2>&1 || true
    inc timeout 10 curl -s -o /dev/null --resolve "dnl-01.geo.kaspersky.com:80:$b" \
        http://dnl-01.geo.kaspersky.com/index/u1313g.xml.dif || true
done
cap_stop "$P1"; cap_stop "$P2"
echo "wrote $OUT tunnel-inner.pcap"
