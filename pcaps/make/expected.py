#!/usr/bin/env python3
"""Write pcaps/expected/<capture>.tshark.txt: the names tshark (an independent
dissector) sees in each capture, one line per occurrence, "kind name", in
frame order. Kinds:
  dns   dns.qry.name then dns.resp.name (every RR owner name in answer,
        authority, additional; the OPT pseudo-RR "<Root>" is skipped) of
        every DNS / mDNS (RFC 6762) / LLMNR (RFC 4795) message, queries and
        responses
  tls   tls.handshake.extensions_server_name in frames that are not QUIC
  quic  the same field in QUIC frames (tshark decrypts Initial packets), and
        gquic.tag.sni (the SNI tag of a Google QUIC CHLO)
  http  http.host (the raw Host header value, port included if sent)
Some captures need tshark told what is on the wire (HINTS below: a protocol
on a port it does not expect, a preference); each hint says why. The
oracle is then what is on the wire; benches/extraction.py also runs tshark
without hints, to count what tshark finds by itself.
Usage: expected.py [capture ...]   (default: every pcaps/*.pcap, *.pcapng)
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PCAPS = os.path.dirname(HERE)
FIELDS = ["frame.protocols", "dns.qry.name", "dns.resp.name",
          "tls.handshake.extensions_server_name", "http.host", "gquic.tag.sni"]
TSHARK = ["tshark", "-n", "-o", "tcp.reassemble_out_of_order:TRUE",
          "-Y", "dns || mdns || llmnr || tls.handshake.extensions_server_name || http.host || gquic.tag.sni",
          "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a",
          "-E", "aggregator=,"]


# Extra tshark arguments per capture (file name), so that tshark sees what
# is on the wire.
HINTS = {
    # IRC's STARTTLS and RDP's TLS upgrade: tshark's irc and tpkt dissectors
    # keep the connection after the upgrade, so the ClientHello is not
    # dissected. Without them, tshark's TLS heuristic finds it.
    "tls-starttls.pcap": ["--disable-protocol", "irc", "--disable-protocol", "tpkt"],
    # QUIC on 853 (DNS over QUIC, RFC 9250): tshark assumes DTLS there.
    "quic-variants.pcap": ["-d", "udp.port==853,quic"],
    # Each connection stops inside a DNS message: with reassembly tshark
    # waits for the rest and reports nothing; without it, it dissects the
    # first segment's names.
    "dns-cut-tcp.pcap": ["-o", "tcp.desegment_tcp_streams:FALSE"],
    # The 802.11 frame control is written as RFC 5416 says; tshark by default
    # expects it byte-swapped, as Cisco controllers send it.
    "link-capwap.pcap": ["-o", "capwap.swap_fc:FALSE"],
}


def names(path, hints=True):
    cmd = TSHARK + ["-r", path]
    if hints:
        cmd += HINTS.get(os.path.basename(path), [])
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    lines = []
    for row in out.splitlines():
        cols = row.split("\t")
        cols += [""] * (len(FIELDS) - len(cols))
        protos, qry, resp, sni, host, gsni = cols
        split = lambda v: [x for x in v.split(",") if x] if v else []
        for n in split(qry) + [r for r in split(resp) if r != "<Root>"]:
            lines.append("dns " + n)
        kind = "quic" if ":quic" in protos else "tls"
        for n in split(sni):
            lines.append(kind + " " + n)
        for n in split(host):
            lines.append("http " + n)
        for n in split(gsni):
            lines.append("quic " + n)
    return lines


def main():
    files = sys.argv[1:] or sorted(
        os.path.join(PCAPS, f) for f in os.listdir(PCAPS)
        if f.endswith(".pcap") or f.endswith(".pcapng"))
    os.makedirs(os.path.join(PCAPS, "expected"), exist_ok=True)
    for f in files:
        lines = names(f)
        out = os.path.join(PCAPS, "expected", os.path.basename(f) + ".tshark.txt")
        with open(out, "w") as fh:
            fh.write("".join(l + "\n" for l in lines))
        print("%-40s %d names" % (os.path.basename(f), len(lines)))


if __name__ == "__main__":
    main()
