#!/usr/bin/env python3
"""Derive captures that start or stop in the middle of TCP connections, by
dropping whole frames of real captures (scapy, offline). No packet is
changed: the kept frames are byte for byte the originals, timestamps kept.

From dns-cut.pcap (DNS over TCP, dns-cut.sh):
  dns-cut-tcp.pcap    every DNS-over-TCP response that spans several segments
                      (a 3.1 KB TXT answer, an AXFR) loses every segment after
                      its first, and the rest of that connection: the capture
                      of each connection stops inside a message
From tls-sni.pcap, http-host.pcap, chromium-pq.pcap and dns-tcp.pcap:
  tcp-midstream.pcap  every connection loses its SYN and SYN-ACK (a capture
                      started after the handshake: a span port brought up, a
                      flow table that lost the flow). In http-host.pcap's
                      keep-alive connection with 2 requests, the first
                      request and its response are dropped too, so the
                      capture starts between two requests. Frames of the
                      four inputs are merged in time order (each input
                      shifted to follow the previous one).
"""
import os

from scapy.all import IP, IPv6, TCP, rdpcap, wrpcap

HERE = os.path.dirname(os.path.abspath(__file__))
PCAPS = os.path.dirname(HERE)


def conn(p):
    ip = p[IP] if p.haslayer(IP) else p[IPv6]
    t = p[TCP]
    a, b = (ip.src, t.sport), (ip.dst, t.dport)
    return (a, b) if a < b else (b, a)


def dns_cut_tcp():
    pkts = rdpcap(os.path.join(PCAPS, "dns-cut.pcap"))
    out, stopped, expect = [], set(), {}
    for p in pkts:
        if not p.haslayer(TCP):
            continue
        c = conn(p)
        if c in stopped:
            continue
        data = bytes(p[TCP].payload)
        key = (c, p[TCP].sport)
        if data and key not in expect and p[TCP].sport == 53 and len(data) >= 2:
            # First segment of a response: the 2-byte length prefix (RFC 1035 §4.2.2).
            need = int.from_bytes(data[:2], "big") + 2
            if need > len(data):
                out.append(p)
                stopped.add(c)
                continue
        out.append(p)
    wrpcap(os.path.join(PCAPS, "dns-cut-tcp.pcap"), out)
    print("dns-cut-tcp.pcap: %d frames, %d connections cut" % (len(out), len(stopped)))


def midstream_frames(name, drop_first_request=False):
    pkts = rdpcap(os.path.join(PCAPS, name))
    out, requests = [], {}
    for p in pkts:
        if not p.haslayer(TCP):
            continue
        flags = int(p[TCP].flags)
        if flags & 0x02:  # SYN or SYN-ACK
            continue
        if drop_first_request:
            c = conn(p)
            data = bytes(p[TCP].payload)
            n = requests.get(c, 0)
            if data.startswith(b"GET ") or data.startswith(b"CONNECT "):
                n += 1
                requests[c] = n
            # Keep a connection from its second request on, if it has one; frames before
            # its first request (the handshake's last ACK) go too.
            if n < 2 and c in two_requests(pkts):
                continue
        out.append(p)
    return out


_two = {}


def two_requests(pkts):
    key = id(pkts)
    if key not in _two:
        counts = {}
        for p in pkts:
            if p.haslayer(TCP) and bytes(p[TCP].payload).startswith(b"GET "):
                counts[conn(p)] = counts.get(conn(p), 0) + 1
        _two[key] = {c for c, n in counts.items() if n >= 2}
    return _two[key]


def tcp_midstream():
    merged, t_next = [], None
    for name, drop in [("tls-sni.pcap", False), ("http-host.pcap", True),
                       ("chromium-pq.pcap", False), ("dns-tcp.pcap", False)]:
        frames = midstream_frames(name, drop)
        if not frames:
            continue
        shift = 0.0 if t_next is None else t_next - float(frames[0].time)
        for p in frames:
            p.time = float(p.time) + shift
        merged.extend(frames)
        t_next = float(frames[-1].time) + 0.5
    wrpcap(os.path.join(PCAPS, "tcp-midstream.pcap"), merged)
    print("tcp-midstream.pcap: %d frames" % len(merged))


if __name__ == "__main__":
    dns_cut_tcp()
    tcp_midstream()
