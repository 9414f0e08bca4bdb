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
# IDB 1 Linux SLL). The SLL capture's timestamps are shifted (editcap -t) to
# start 0.5 ms after tls-sni.pcap, so the two interfaces' packets interleave.
T1=$(python3 "$M/pcaptool.py" firstts tls-sni.pcap)
T2=$(python3 "$M/pcaptool.py" firstts http-host-sll.pcap)
SHIFT=$(python3 -c "print('%.6f' % ($T1 - $T2 + 0.0005))")
TMP=$(mktemp /tmp/kpcap-sll.XXXXXX.pcap)
editcap -t "$SHIFT" http-host-sll.pcap "$TMP"
mergecap -F pcapng -w mixed-linktypes.pcapng tls-sni.pcap "$TMP"
rm -f "$TMP"
echo "wrote format variants"
