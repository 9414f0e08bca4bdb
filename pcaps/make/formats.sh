#!/bin/bash
# Format variants of tls-sni.pcap (run tls-sni.sh and http-host.sh first).
# Offline only: no network, no namespaces.
set -euo pipefail
D=$(cd "$(dirname "$0")/.." && pwd)
M="$D/make"
cd "$D"
editcap -F pcapng tls-sni.pcap tls-sni.pcapng
editcap -F nsecpcap tls-sni.pcap tls-sni-nsec.pcap
python3 "$M/pcaptool.py" be tls-sni.pcap tls-sni-be.pcap
python3 "$M/pcaptool.py" be tls-sni-nsec.pcap tls-sni-nsec-be.pcap
python3 "$M/pcaptool.py" rawip tls-sni.pcap tls-sni-rawip.pcap
# two interfaces with different link types in one pcapng (IDB 0 Ethernet,
# IDB 1 Linux SLL), packets interleaved by time
mergecap -F pcapng -w mixed-linktypes.pcapng tls-sni.pcap http-host-sll.pcap
echo "wrote format variants"
