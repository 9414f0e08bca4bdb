#!/bin/bash
# Writes tests/golden/eve/<capture>.eve.json: the EVE records a real Suricata 7 run logs for
# each capture, with the config tests/golden/eve/suricata.yaml. tests/eve.rs compares
# ksensor's `--events-format eve` output with them.
#
# Filtering, so that the files are reproducible: `flow_id` is dropped (Suricata derives it from
# a hash seeded at random on every start), records are sorted (their order depends on which
# of Suricata's threads logs first), and the keys of `dns.grouped` are sorted (Suricata writes
# them in hash-map order, which differs from run to run). Everything else is as Suricata wrote
# it.
#
# Usage: bash pcaps/make/suricata-eve.sh [capture ...]   (default: the list below)
# Needs: suricata 7 (7.0.10 was used), jq. Not root.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="$ROOT/tests/golden/eve"
CONFIG="$OUT/suricata.yaml"

# Every capture Suricata 7.0.10 decodes, except one whose differences are ksensor's to fix.
# Left out, and why (pcaps/README.md says the same): tls-sni-sll2.pcap (LINKTYPE_LINUX_SLL2),
# link-80211.pcap (802.11, 105), link-radiotap.pcap (127), link-ppp-hdlc.pcap (PPP_HDLC, 50)
# and link-unknown.pcap (USER0, 147) are not Suricata 7 link types; mixed-linktypes.pcapng and
# link-misc.pcapng (libpcap refuses a pcapng whose interfaces have different link types, so
# Suricata reads nothing); tunnel-gtpu.pcap (Suricata 7 does not decapsulate GTP-U) and
# tunnel-ipip.pcap (nor IPv4-in-IPv4): no records; dns-cut.pcap (a ksensor gap, see
# pcaps/README.md).
DEFAULT=(
  chromium-pq.pcap dns-frag.pcap dns-frag6.pcap dns-tcp.pcap dns-udp.pcap
  http-host.pcap http-host-sll.pcap http-split.pcap quic-aioquic.pcap quic-chromium.pcap
  staged-network.pcap tls-dup.pcap tls-overlap.pcap tls-reordered.pcap tls-sni.pcap
  tls-sni.pcapng tls-sni-be.pcap tls-sni-nsec.pcap tls-sni-nsec-be.pcap tls-sni-rawip.pcap
  tls-sni-sll.pcap tunnel-erspan.pcap tunnel-geneve.pcap tunnel-gre.pcap tunnel-gretap.pcap
  tunnel-inner.pcap tunnel-ip6ip6.pcap tunnel-mpls.pcap tunnel-pppoe.pcap tunnel-sit.pcap
  tunnel-teredo.pcap tunnel-vxlan.pcap vlan-8021q.pcap vlan-qinq.pcap
  staged-enterprise.pcap quic-dcid.pcap tcp-fastopen.pcap tls-ports.pcap
  dns-cut-tcp.pcap dns-snaplen.pcap dns-opcodes.pcap literal-names.pcap tls-starttls.pcap
  dns-odd.pcap http-body.pcap http-body-reordered.pcap
  gquic.pcap link-chdlc.pcap link-ppp.pcap
  # Suricata logs nothing for these (empty files); tests/eve.rs checks ksensor's records there.
  quic-variants.pcap tls-prefix.pcap tcp-midstream.pcap tcp-simopen.pcap link-capwap.pcap
)
if [ $# -gt 0 ]; then CAPTURES=("$@"); else CAPTURES=("${DEFAULT[@]}"); fi

suricata -V | grep -q 'version 7\.' || { echo "needs Suricata 7 (found: $(suricata -V))" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
for capture in "${CAPTURES[@]}"; do
  log="$WORK/$capture"
  mkdir -p "$log"
  # TZ=UTC: Suricata writes local time with its offset; UTC gives +0000 like ksensor.
  # --runmode single: one thread, so nothing depends on scheduling. -k none: the captures'
  # checksums are valid, but derived ones must not be dropped for a checksum either way.
  TZ=UTC timeout 60 suricata -c "$CONFIG" -S /dev/null --runmode single -k none \
    -r "$ROOT/pcaps/$capture" -l "$log" >"$log/suricata.log" 2>&1 \
    || { cat "$log/suricata.log" >&2; exit 1; }
  jq -c -s 'map(del(.flow_id)
                | if .dns.grouped then .dns.grouped |= (to_entries | sort_by(.key) | from_entries)
                  else . end)
            | sort_by(.timestamp, .src_ip, .src_port, .event_type, (.dns.type // ""))
            | .[]' "$log/eve.json" >"$OUT/$capture.eve.json"
  echo "$capture: $(wc -l <"$OUT/$capture.eve.json") records"
done
