#!/usr/bin/env python3
"""Write pcaps/expected/<capture>.tshark.txt: the names tshark (an independent
dissector) sees in each capture, one line per occurrence, "kind name", in
frame order. Kinds:
  dns   dns.qry.name then dns.resp.name (every RR owner name in answer,
        authority, additional; the OPT pseudo-RR "<Root>" is skipped) of
        every DNS / mDNS (RFC 6762) / LLMNR (RFC 4795) message, queries and
        responses
  tls   tls.handshake.extensions_server_name in frames that are not QUIC
  quic  the same field in QUIC frames (tshark decrypts Initial packets)
  http  http.host (the raw Host header value, port included if sent)
Usage: expected.py [capture ...]   (default: every pcaps/*.pcap, *.pcapng)
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PCAPS = os.path.dirname(HERE)
FIELDS = ["frame.protocols", "dns.qry.name", "dns.resp.name",
          "tls.handshake.extensions_server_name", "http.host"]
TSHARK = ["tshark", "-n", "-o", "tcp.reassemble_out_of_order:TRUE",
          "-Y", "dns || mdns || llmnr || tls.handshake.extensions_server_name || http.host",
          "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a",
          "-E", "aggregator=,"]


def names(path):
    cmd = TSHARK + ["-r", path]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    lines = []
    for row in out.splitlines():
        cols = row.split("\t")
        cols += [""] * (len(FIELDS) - len(cols))
        protos, qry, resp, sni, host = cols
        split = lambda v: [x for x in v.split(",") if x] if v else []
        for n in split(qry) + [r for r in split(resp) if r != "<Root>"]:
            lines.append("dns " + n)
        kind = "quic" if ":quic" in protos else "tls"
        for n in split(sni):
            lines.append(kind + " " + n)
        for n in split(host):
            lines.append("http " + n)
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
