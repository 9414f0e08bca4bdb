#!/bin/bash
# Remake every capture and the tshark oracle files, in dependency order.
# Needs root (network namespaces), tcpdump, tshark, dnsmasq, kdig, openssl,
# curl, socat, chromium, ethtool, nmap, hping3, tinyproxy, python3 with scapy
# and aioquic.
set -euo pipefail
cd "$(dirname "$0")"
for s in dns-udp dns-tcp tls-sni http-host chromium-pq quic-chromium quic-aioquic \
         dns-frag dns-frag6 tunnel-vxlan staged-network staged-enterprise; do
    echo "== $s"
    bash "./$s.sh" >/dev/null 2>&1 || { echo "$s.sh failed" >&2; exit 1; }
done
bash ./formats.sh
python3 ./encap.py
python3 ./reorder.py
python3 ./expected.py
