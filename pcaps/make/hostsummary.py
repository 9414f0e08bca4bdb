#!/usr/bin/env python3
"""Per-host summary of a staged capture, from tshark (an independent
dissector): for every address of the given prefix, what it sent and what it
received. Used to document pcaps/staged-enterprise.pcap in pcaps/README.md.

  hostsummary.py CAPTURE [PREFIX]      (PREFIX default "10.70.0.")

Per host, one line per item, in first-seen order:
  dns  > SERVER  NAME TYPE            a query it sent (and its answers)
  dns  < CLIENT  NAME TYPE            a query it received
  tls  > PEER:PORT SNI [ech]          a ClientHello it sent (- = no SNI)
  http > PEER:PORT METHOD URI Host    a request it sent (body magic of the answer)
  http < CLIENT ...                   a request it received
  tcp  > PEER:PORT  state             a connection it opened (state below)
  tcp  < CLIENT:PORT state            a connection to it
  udp  > DST:PORT [bcast|mcast]       a datagram it sent
  udp  < SRC:PORT                     a datagram it received (unicast)
TCP state: "session" = SYN, SYN-ACK, payload both ways; "syn/synack/rst" =
SYN answered by SYN-ACK then RST from the client, no data; "syn/rst" =
refused; "syn/-" = no answer.
"""
import collections
import subprocess
import sys

QTYPE = {"1": "A", "28": "AAAA", "65": "HTTPS", "16": "TXT", "15": "MX", "64": "SVCB"}
FIELDS = ["frame.number", "eth.dst", "ip.src", "ip.dst", "ip.proto", "tcp.stream",
          "tcp.srcport", "tcp.dstport", "tcp.flags.syn", "tcp.flags.ack", "tcp.flags.reset",
          "tcp.len", "udp.srcport", "udp.dstport", "dns.flags.response", "dns.qry.name",
          "dns.qry.type", "dns.a", "tls.handshake.type", "tls.handshake.extensions_server_name",
          "tls.handshake.extension.type", "http.request.method", "http.request.uri",
          "http.host", "http.response.code", "http.request_in"]
# Update-file magics (Zeek general.sig): the answer bodies that start with them.
MAGICS = {"KLZF": "4b:4c:5a:46", "DIFF": "44:49:46:46"}


def main():
    cap = sys.argv[1]
    prefix = sys.argv[2] if len(sys.argv) > 2 else "10.70.0."
    cmd = ["tshark", "-n", "-o", "tcp.reassemble_out_of_order:TRUE", "-r", cap, "-T", "fields",
           "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,", "-Y", "ip"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    magic_of = {}   # frame number of a response -> magic of its body
    for name, hexa in MAGICS.items():
        mc = cmd[:cmd.index("-Y")] + ["-Y", "http.response && http.file_data[0:4]==" + hexa,
                                      "-e", "frame.number"]
        for fn in subprocess.run(mc, check=True, capture_output=True, text=True).stdout.split():
            magic_of[fn] = name
    lines = collections.defaultdict(list)   # host -> [line]
    seen = collections.defaultdict(set)

    def add(host, text):
        if host.startswith(prefix) and text not in seen[host]:
            seen[host].add(text)
            lines[host].append(text)

    streams = {}
    requests = {}   # frame number of a request -> (client, server, port, text)
    for row in out.splitlines():
        v = dict(zip(FIELDS, row.split("\t") + [""] * len(FIELDS)))
        src, dst = v["ip.src"], v["ip.dst"]
        if v["tcp.stream"]:
            st = streams.setdefault(v["tcp.stream"], {"syn": None, "synack": False, "crst": False,
                                                    "srst": False, "cdata": 0, "sdata": 0})
            syn, ack = v["tcp.flags.syn"] == "1", v["tcp.flags.ack"] == "1"
            if syn and not ack and st["syn"] is None:
                st["syn"] = (src, dst, v["tcp.dstport"])
            if st["syn"]:
                c = st["syn"][0]
                if syn and ack:
                    st["synack"] = True
                if v["tcp.flags.reset"] == "1":
                    st["crst" if src == c else "srst"] = True
                n = int(v["tcp.len"] or 0)
                st["cdata" if src == c else "sdata"] += n
        if v["dns.qry.name"] and v["dns.flags.response"] == "0":
            t = QTYPE.get(v["dns.qry.type"], v["dns.qry.type"])
            add(src, "dns  > %s  %s %s" % (dst, v["dns.qry.name"], t))
            add(dst, "dns  < %s  %s %s" % (src, v["dns.qry.name"], t))
        if v["dns.qry.name"] and v["dns.flags.response"] == "1" and v["dns.a"]:
            t = QTYPE.get(v["dns.qry.type"], v["dns.qry.type"])
            add(dst, "dns  > %s  %s %s = %s" % (src, v["dns.qry.name"], t, v["dns.a"]))
        if "1" in v["tls.handshake.type"].split(","):
            ech = " [ech]" if "65037" in v["tls.handshake.extension.type"].split(",") else ""
            sni = v["tls.handshake.extensions_server_name"] or "-"
            add(src, "tls  > %s:%s  %s%s" % (dst, v["tcp.dstport"], sni, ech))
        if v["http.request.method"]:
            text = "%s %s Host %s" % (v["http.request.method"], v["http.request.uri"], v["http.host"])
            requests[v["frame.number"]] = (src, dst, v["tcp.dstport"], text)
        if v["http.response.code"] and v["http.request_in"] in requests:
            c, s, p, text = requests.pop(v["http.request_in"])
            magic = " -> %s %s" % (v["http.response.code"], magic_of.get(v["frame.number"], ""))
            add(c, "http > %s:%s  %s%s" % (s, p, text, magic.rstrip()))
            add(s, "http < %s  %s%s" % (c, text, magic.rstrip()))
        if v["udp.dstport"] and v["udp.dstport"] != "53" and v["udp.srcport"] != "53":
            kind = ""
            if v["eth.dst"] == "ff:ff:ff:ff:ff:ff":
                kind = " [bcast]"
            elif int(v["eth.dst"].split(":")[0], 16) & 1:
                kind = " [mcast]"
            add(src, "udp  > %s:%s%s" % (dst, v["udp.dstport"], kind))
            if not kind:
                add(dst, "udp  < %s:%s" % (src, v["udp.dstport"]))
    for st in streams.values():
        if not st["syn"]:
            continue
        c, s, p = st["syn"]
        if st["synack"] and st["cdata"] and st["sdata"]:
            state = "session (%d B out, %d B back)" % (st["cdata"], st["sdata"])
        elif st["synack"]:
            state = "syn/synack/rst" if st["crst"] else "syn/synack"
        elif st["srst"]:
            state = "syn/rst"
        else:
            state = "syn/-"
        add(c, "tcp  > %s:%s  %s" % (s, p, state))
        add(s, "tcp  < %s:%s  %s" % (c, p, state))
    for host in sorted(lines, key=lambda h: tuple(int(x) for x in h.split("."))):
        print(host)
        for text in lines[host]:
            print("  " + text)


if __name__ == "__main__":
    main()
