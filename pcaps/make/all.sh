#!/bin/bash
# Remake every capture and the tshark oracle files, in dependency order.
# Needs root (network namespaces), tcpdump, tshark, dnsmasq, kdig and
# knsupdate (knot-dnsutils), openssl, curl, socat, chromium, ethtool, nmap,
# hping3, tinyproxy, python3 with scapy, aioquic and zeroconf, and aioquic
# 0.9.20 in the venv /opt/aioquic-old (quic-variants.sh; see ../README.md).
set -euo pipefail
cd "$(dirname "$0")"
for s in dns-udp dns-tcp tls-sni http-host http-body chromium-pq quic-chromium quic-aioquic \
         dns-frag dns-frag6 tunnel-vxlan staged-network staged-enterprise \
         tls-starttls tls-ports tls-prefix literal-names dns-odd dns-opcodes dns-cut \
         quic-variants tcp-fastopen tcp-simopen; do
    echo "== $s"
    bash "./$s.sh" >/dev/null 2>&1 || { echo "$s.sh failed" >&2; exit 1; }
done
bash ./formats.sh
python3 ./encap.py
python3 ./reorder.py
python3 ./cut.py
python3 ./linktypes.py
python3 ./quiccraft.py
python3 ./expected.py
