#!/usr/bin/env python3
"""Derive encapsulation captures from real traffic (scapy, offline).

Input: pcaps/tunnel-inner.pcap, the real overlay frames captured on the VXLAN
device by tunnel-vxlan.sh (Linux here has no gre/ipip/sit/geneve/vlan
devices). Every inner frame is wrapped, byte for byte, in the outer headers
below; timestamps are kept. Outer addresses are the namespace underlay
(client 10.77.0.1 / fd77::1, server 10.77.0.2 / fd77::2); direction follows
the inner source address.

  tunnel-gre.pcap     IPv4 / GRE (RFC 2784, proto 0x0800 or 0x86DD) / inner IP
  tunnel-gretap.pcap  IPv4 / GRE with key (RFC 2890) proto 0x6558 / inner Ethernet
  tunnel-ipip.pcap    IPv4 / IPv4 (RFC 2003, protocol 4), IPv4 inner only
  tunnel-sit.pcap     IPv4 / IPv6 (RFC 4213 6in4, protocol 41), IPv6 inner only
  tunnel-ip6ip6.pcap  IPv6 / IPv6 and IPv6 / IPv4 (RFC 2473, next header 41 / 4)
  tunnel-geneve.pcap  IPv4 / UDP 6081 / Geneve (RFC 8926) with one option / inner Ethernet
  tunnel-gtpu.pcap    IPv4 / UDP 2152 / GTP-U v1 G-PDU (3GPP TS 29.281) / inner IP
  tunnel-teredo.pcap  IPv4 / UDP 3544 / IPv6 (RFC 4380), IPv6 inner only
  tunnel-mpls.pcap    Ethernet 0x8847 / 2 MPLS labels (RFC 3032) / inner IP
  tunnel-pppoe.pcap   Ethernet 0x8864 / PPPoE session (RFC 2516) / PPP (0x0021, 0x0057) / inner IP
  tunnel-erspan.pcap  IPv4 / GRE 0x88BE (seq) / ERSPAN type II / inner Ethernet
  vlan-qinq.pcap      Ethernet 0x88A8 S-tag 100 / 0x8100 C-tag 200 (IEEE 802.1ad) / inner IP
  vlan-8021q.pcap     Ethernet 0x8100 tag 300 / inner IP
"""
import os
import struct

from scapy.all import Ether, IP, IPv6, UDP, Raw, rdpcap, wrpcap
from scapy.layers.l2 import Dot1Q, Dot1AD

HERE = os.path.dirname(os.path.abspath(__file__))
PCAPS = os.path.dirname(HERE)
MAC_C, MAC_S = "02:00:00:77:00:01", "02:00:00:77:00:02"
CLIENT_INNER = ("10.88.0.1", "fd88::1")


def endpoints(inner_ip):
    up = inner_ip.src in CLIENT_INNER
    return (("10.77.0.1", "10.77.0.2", MAC_C, MAC_S) if up
            else ("10.77.0.2", "10.77.0.1", MAC_S, MAC_C))


def eth_type(ip):
    return 0x0800 if ip.version == 4 else 0x86DD


def gre(proto, payload, key=None, seq=None):
    flags = (0x2000 if key is not None else 0) | (0x1000 if seq is not None else 0)
    h = struct.pack("!HH", flags, proto)
    if key is not None:
        h += struct.pack("!I", key)
    if seq is not None:
        h += struct.pack("!I", seq)
    return h + payload


def build(kind, frame, idx):
    ip = frame.payload
    inner_l3 = bytes(ip)
    inner_l2 = bytes(frame)
    s4, d4, smac, dmac = endpoints(ip)
    eth = Ether(src=smac, dst=dmac)
    v4 = ip.version == 4
    if kind == "gre":
        return eth / IP(src=s4, dst=d4, proto=47) / Raw(gre(eth_type(ip), inner_l3))
    if kind == "gretap":
        return eth / IP(src=s4, dst=d4, proto=47) / Raw(gre(0x6558, inner_l2, key=42))
    if kind == "ipip":
        return eth / IP(src=s4, dst=d4, proto=4) / Raw(inner_l3) if v4 else None
    if kind == "sit":
        return None if v4 else eth / IP(src=s4, dst=d4, proto=41) / Raw(inner_l3)
    if kind == "ip6ip6":
        s6, d6 = ("fd77::1", "fd77::2") if s4 == "10.77.0.1" else ("fd77::2", "fd77::1")
        return eth / IPv6(src=s6, dst=d6, nh=4 if v4 else 41) / Raw(inner_l3)
    if kind == "geneve":
        # ver 0, opt len 2 words, proto 0x6558, VNI 42; one 8-byte option
        opt = struct.pack("!HBB", 0x0102, 0x03, 1) + b"\x00\x00\x00\x07"
        hdr = struct.pack("!BBH", 2, 0, 0x6558) + struct.pack("!I", 42 << 8) + opt
        return eth / IP(src=s4, dst=d4) / UDP(sport=50000 + idx % 1000, dport=6081) / Raw(hdr + inner_l2)
    if kind == "gtpu":
        # flags 0x30 (v1, PT=1), type 255 G-PDU, length, TEID
        hdr = struct.pack("!BBHI", 0x30, 255, len(inner_l3), 0x1234ABCD)
        return eth / IP(src=s4, dst=d4) / UDP(sport=2152, dport=2152) / Raw(hdr + inner_l3)
    if kind == "teredo":
        return None if v4 else eth / IP(src=s4, dst=d4) / UDP(sport=3544, dport=3544) / Raw(inner_l3)
    if kind == "mpls":
        labels = struct.pack("!II", (1000 << 12) | 64, (2000 << 12) | (1 << 8) | 64)
        return Ether(src=smac, dst=dmac, type=0x8847) / Raw(labels + inner_l3)
    if kind == "pppoe":
        ppp = struct.pack("!H", 0x0021 if v4 else 0x0057) + inner_l3
        hdr = struct.pack("!BBHH", 0x11, 0x00, 0x0042, len(ppp))
        return Ether(src=smac, dst=dmac, type=0x8864) / Raw(hdr + ppp)
    if kind == "erspan":
        # ERSPAN type II header: ver 1, VLAN 0, COS 0, En 0, T 0, session 7; index 0
        er = struct.pack("!HHI", (1 << 12) | 0, 7, 0)
        return eth / IP(src=s4, dst=d4, proto=47) / Raw(gre(0x88BE, er + inner_l2, seq=idx))
    if kind == "qinq":
        return (Ether(src=smac, dst=dmac) / Dot1AD(vlan=100) / Dot1Q(vlan=200, type=eth_type(ip))
                / Raw(inner_l3))
    if kind == "8021q":
        return Ether(src=smac, dst=dmac) / Dot1Q(vlan=300, type=eth_type(ip)) / Raw(inner_l3)
    raise ValueError(kind)


OUTPUTS = {
    "gre": "tunnel-gre.pcap", "gretap": "tunnel-gretap.pcap", "ipip": "tunnel-ipip.pcap",
    "sit": "tunnel-sit.pcap", "ip6ip6": "tunnel-ip6ip6.pcap", "geneve": "tunnel-geneve.pcap",
    "gtpu": "tunnel-gtpu.pcap", "teredo": "tunnel-teredo.pcap", "mpls": "tunnel-mpls.pcap",
    "pppoe": "tunnel-pppoe.pcap", "erspan": "tunnel-erspan.pcap", "qinq": "vlan-qinq.pcap",
    "8021q": "vlan-8021q.pcap",
}


def main():
    frames = [f for f in rdpcap(os.path.join(PCAPS, "tunnel-inner.pcap"))
              if f.haslayer(IP) or f.haslayer(IPv6)]
    for kind, name in OUTPUTS.items():
        out = []
        for i, f in enumerate(frames):
            p = build(kind, f, i)
            if p is None:
                continue
            p = Ether(bytes(p))  # finalise lengths and checksums
            p.time = f.time
            out.append(p)
        wrpcap(os.path.join(PCAPS, name), out, linktype=1)
        print("wrote %s (%d frames)" % (name, len(out)))


if __name__ == "__main__":
    main()
