#!/bin/bash
# dns-tcp.pcap: one kdig invocation with +tcp +keepopen sends several queries
# over ONE TCP connection (RFC 7766 §6.2.1 connection reuse; each message is
# preceded by its 2-byte length, RFC 1035 §4.2.2), answered by dnsmasq.
# A second connection carries a CNAME chain and a decoy.
. "$(dirname "$0")/lib.sh"
. "$MAKE_DIR/dns_zone.sh"
OUT="$PCAP_DIR/dns-tcp.pcap"
ns_setup 1500
dnsmasq_start "${DNS_ZONE[@]}"
cap_start "$OUT" "$IF_C" "tcp port 53"
inc kdig +tcp +keepopen +timeout=3 +retry=0 +noall +answer "@$S4" \
    ds.kaspersky.com A \
    dnl-01.geo.kaspersky.com A \
    s01.upd.kaspersky.com AAAA \
    dc1.ksn.kaspersky-labs.com A \
    notkaspersky.com A || true
inc kdig +tcp +keepopen +timeout=3 +retry=0 +noall +answer "@$S4" \
    activation-v2.kaspersky.com A \
    xkaspersky-labs.com A \
    example.org A || true
cap_stop "$CAP_PID"
echo "wrote $OUT"
