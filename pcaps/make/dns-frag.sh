#!/bin/bash
# dns-frag.pcap (IPv4, veth MTU 600) / dns-frag6.pcap (IPv6, veth MTU 1280,
# the IPv6 minimum, RFC 8200 §5): kdig asks for a ~3 KB TXT record with an
# EDNS buffer of 4096 (RFC 6891 §6.2.5); dnsmasq's UDP answer is larger than
# the link MTU, so the server's kernel fragments it at the IP layer
# (IPv4: RFC 791 fragmentation; IPv6: Fragment header, RFC 8200 §4.5).
# Usage: dns-frag.sh [4|6]
. "$(dirname "$0")/lib.sh"
FAM=${1:-4}
if [ "$FAM" = 6 ]; then MTU=1280; OUT="$PCAP_DIR/dns-frag6.pcap"; SRV=$S6
else MTU=600; OUT="$PCAP_DIR/dns-frag.pcap"; SRV=$S4; fi
ns_setup "$MTU"
# 15 character-strings of 200 bytes (RFC 1035 §3.3.14: each <= 255).
TXT="ksn-info-geo.kaspersky-labs.com"
for i in $(seq -w 1 15); do
    TXT="$TXT,$(printf 'kaspersky-frag-%s-' "$i")$(head -c 200 /dev/zero | tr '\0' 'x' | head -c 182)"
done
EXTRA=()
[ "$FAM" = 6 ] && EXTRA=(--listen-address="$S6")
dnsmasq_start "${EXTRA[@]}" --edns-packet-max=4096 --txt-record="$TXT" \
    --host-record=dnl-05.geo.kaspersky.com,10.77.1.9,fd77:1::9 --local=/kaspersky-labs.com/
cap_start "$OUT" "$IF_C" "udp port 53 or (ip[6:2] & 0x1fff != 0) or (ip6 and ip6[6] == 44)"
inc kdig +timeout=3 +retry=0 +bufsize=4096 +notcp +noall +stats "@$SRV" ksn-info-geo.kaspersky-labs.com TXT || true
# a small unfragmented answer in the same capture
inc kdig +timeout=3 +retry=0 +bufsize=4096 +noall +answer "@$SRV" dnl-05.geo.kaspersky.com A || true
cap_stop "$CAP_PID"
echo "wrote $OUT"
