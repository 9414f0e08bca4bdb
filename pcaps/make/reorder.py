#!/usr/bin/env python3
"""Derive TCP reordering / overlap / split variants from real captures
(scapy, offline). Only client-to-server data segments are changed; IP
lengths and IP/TCP checksums are recomputed; timestamps of inserted
segments are 10 us after the segment they follow.

From chromium-pq.pcap (each connection's ClientHello spans 2 segments, A then B):
  tls-reordered.pcap  B sent before A (out of order), for every connection
  tls-dup.pcap        A, A again (exact duplicate), B
  tls-overlap.pcap    A, then a retransmission overlapping A's last 448 bytes
                      and B's first 300 bytes (same bytes as the original), then B
From http-body.pcap (bodies of many full-size segments; here both directions'
data segments are changed, the bodies of downloads and of the upload):
  http-body-reordered.pcap  of each flow's data segments, the 5th, 10th, ... is
                      sent after the one following it (out of order), and the
                      7th, 14th, ... is sent again right after itself (an exact
                      retransmission); timestamps stay in capture order
From http-host.pcap:
  http-split.pcap     every HTTP request whose head is in one segment is split
                      into 3 segments: cut inside "Host" and inside the host
                      value, so neither the header name nor the value is whole
                      in any one segment
"""
import os

from scapy.all import IP, IPv6, TCP, Raw, rdpcap, wrpcap

HERE = os.path.dirname(os.path.abspath(__file__))
PCAPS = os.path.dirname(HERE)


def rebuild(pkt, seq_delta, data):
    """Copy of pkt whose TCP segment carries data starting seq_delta later."""
    p = pkt.copy()
    tcp = p[TCP]
    tcp.seq = (tcp.seq + seq_delta) & 0xFFFFFFFF
    tcp.remove_payload()
    tcp.add_payload(Raw(data))
    del tcp.chksum
    if p.haslayer(IP):
        del p[IP].len
        del p[IP].chksum
    else:
        del p[IPv6].plen
    q = p.__class__(bytes(p))
    q.time = pkt.time
    return q


def payload(p):
    return bytes(p[TCP].payload) if p.haslayer(TCP) else b""


def tls_variants():
    pkts = rdpcap(os.path.join(PCAPS, "chromium-pq.pcap"))
    first = {}  # client port -> indexes of its first two data segments
    for i, p in enumerate(pkts):
        if p.haslayer(TCP) and p[TCP].dport == 443 and payload(p):
            first.setdefault(p[TCP].sport, [])
            if len(first[p[TCP].sport]) < 2:
                first[p[TCP].sport].append(i)
    pairs = {a: b for a, b in first.values()}
    seconds = set(pairs.values())

    def emit(mode):
        out = []
        for i, p in enumerate(pkts):
            if i in seconds:
                if mode == "reordered":
                    continue  # already sent before A
                out.append(p)
            elif i in pairs:
                a, b = p, pkts[pairs[i]]
                if mode == "reordered":
                    b2 = b.copy(); b2.time = a.time
                    a2 = a.copy(); a2.time = a.time + 0.00001
                    out += [b2, a2]
                elif mode == "dup":
                    d = a.copy(); d.time = a.time + 0.00001
                    out += [a, d]
                elif mode == "overlap":
                    la = len(payload(a))
                    data = payload(a)[la - 448:] + payload(b)[:300]
                    r = rebuild(a, la - 448, data)
                    r.time = a.time + 0.00001
                    out += [a, r]
            else:
                out.append(p)
        return out

    for mode in ("reordered", "dup", "overlap"):
        name = "tls-%s.pcap" % mode
        wrpcap(os.path.join(PCAPS, name), emit(mode), linktype=1)
        print("wrote", name)


def http_split():
    pkts = rdpcap(os.path.join(PCAPS, "http-host.pcap"))
    out = []
    for p in pkts:
        data = payload(p)
        if p.haslayer(TCP) and p[TCP].dport in (80, 3128) and data.startswith(b"GET ") \
                and b"\r\n\r\n" in data:
            h = data.find(b"\r\nHost: ")
            if h > 0:
                cut1 = h + 4          # inside "Host"
                cut2 = h + 8 + 6      # 6 bytes into the host value
                parts = [(0, data[:cut1]), (cut1, data[cut1:cut2]), (cut2, data[cut2:])]
                for k, (off, chunk) in enumerate(parts):
                    q = rebuild(p, off, chunk)
                    q.time = p.time + k * 0.00001
                    out.append(q)
                continue
        out.append(p)
    wrpcap(os.path.join(PCAPS, "http-split.pcap"), out, linktype=1)
    print("wrote http-split.pcap")


def http_body_reordered():
    pkts = rdpcap(os.path.join(PCAPS, "http-body.pcap"))
    times = [p.time for p in pkts]
    order = list(pkts)
    seen = {}  # (src port, dst port) -> data segments so far
    i = 0
    while i < len(order):
        p = order[i]
        if p.haslayer(TCP) and payload(p):
            key = (p[TCP].sport, p[TCP].dport)
            seen[key] = seen.get(key, 0) + 1
            n = seen[key]
            if n % 7 == 0:
                order.insert(i + 1, p.copy())
                times.insert(i + 1, times[i] + 0.00001)
                i += 2
                continue
            if n % 5 == 0 and i + 1 < len(order):
                # The next segment of the same direction overtakes this one.
                j = next((k for k in range(i + 1, len(order))
                          if order[k].haslayer(TCP) and payload(order[k])
                          and (order[k][TCP].sport, order[k][TCP].dport) == key), None)
                if j is not None:
                    order.insert(i, order.pop(j))
                    seen[key] += 1
                    i += 2
                    continue
        i += 1
    out = []
    for p, t in zip(order, times):
        q = p.copy()
        q.time = t
        out.append(q)
    wrpcap(os.path.join(PCAPS, "http-body-reordered.pcap"), out, linktype=1)
    print("wrote http-body-reordered.pcap")


if __name__ == "__main__":
    tls_variants()
    http_split()
    http_body_reordered()
