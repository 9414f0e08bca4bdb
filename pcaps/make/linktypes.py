#!/usr/bin/env python3
"""Derive captures of other link types from real Ethernet captures (our own
code, offline). Each frame of tunnel-inner.pcap (DNS, TLS, HTTP over IPv4 and
IPv6, from tunnel-vxlan.sh) and of quic-aioquic.pcap (QUIC handshakes) is
rewritten byte for byte below a new link header; IP packets are unchanged,
timestamps kept (quic-aioquic's shifted to follow tunnel-inner's).

  link-chdlc.pcap       LINKTYPE_C_HDLC (104): Cisco HDLC, address 0x0F,
                        control 0, then the ethertype (libpcap LINKTYPE list)
  link-ppp.pcap         LINKTYPE_PPP (9): PPP (RFC 1661 §2); every other
                        frame with the HDLC-like address/control 0xFF 0x03
                        (RFC 1662 §3.1), the others without; protocol 0x0021
                        (IPv4) or 0x0057 (IPv6)
  link-ppp-hdlc.pcap    LINKTYPE_PPP_HDLC (50): PPP in HDLC-like framing
                        (0xFF 0x03) for IPv4, Cisco PPP with HDLC framing
                        (0x0F 0x00 + ethertype, RFC 1547 §4.3.1) for IPv6
  link-80211.pcap       LINKTYPE_IEEE802_11 (105): 802.11 data frames
                        (IEEE 802.11-2020 §9.3.2.1) to the AP (To DS) from the
                        client, from the AP (From DS) to it; every other frame
                        a QoS Data frame (subtype 8, 2-byte QoS Control); LLC/
                        SNAP header (RFC 1042) with the ethertype
  link-radiotap.pcap    LINKTYPE_IEEE802_11_RADIOTAP (127): the same frames
                        behind a radiotap header (flags, rate, channel fields;
                        radiotap.org) of 16 bytes
  link-capwap.pcap      Ethernet / IPv4 / UDP 5247 / CAPWAP data header
                        (RFC 5415 §4.3; HLEN 2, WBID 1, T=1: native 802.11
                        frame, RFC 5416 §3) / the same 802.11 frames, between
                        an access point 10.77.9.2 and a controller 10.77.9.1
  link-misc.pcapng      one pcapng, four interfaces: LINKTYPE_NULL (0, BSD
                        loopback, host-order family 2 / 24 / 28 / 30),
                        LINKTYPE_LOOP (108, network-order family),
                        LINKTYPE_IPV4 (228) and LINKTYPE_IPV6 (229); frames
                        dealt round-robin to them
  link-unknown.pcap     LINKTYPE_USER0 (147): the same Ethernet frames under a
                        link type no dissector claims; a sensor must count
                        them as skipped for link type 147
"""
import os
import struct

from scapy.all import Ether, IP, UDP, Raw, rdpcap

HERE = os.path.dirname(os.path.abspath(__file__))
PCAPS = os.path.dirname(HERE)
CLIENT = ("10.88.0.1", "fd88::1", "10.77.0.1", "fd77::1")
AP_MAC = bytes.fromhex("020000770009")
CLIENT_MAC = bytes.fromhex("020000770001")
SERVER_MAC = bytes.fromhex("020000770002")


def source_frames():
    """(time, ethertype, ip bytes, from_client) of each IP frame, in order."""
    out = []
    last = None
    for name in ["tunnel-inner.pcap", "quic-aioquic.pcap"]:
        frames = [f for f in rdpcap(os.path.join(PCAPS, name)) if f.haslayer(Ether)]
        frames = [f for f in frames if f[Ether].type in (0x0800, 0x86DD)]
        shift = 0.0 if last is None else last + 0.5 - float(frames[0].time)
        for f in frames:
            ip = f[Ether].payload
            t = float(f.time) + shift
            out.append((t, f[Ether].type, bytes(ip), ip.src in CLIENT))
        last = out[-1][0]
    return out


def ppp_proto(et):
    return 0x0021 if et == 0x0800 else 0x0057


def ppp_hdlc(et):
    if et == 0x0800:
        return b"\xff\x03" + struct.pack("!H", ppp_proto(et))
    return b"\x0f\x00" + struct.pack("!H", et)


def dot11(et, ip, up, i):
    """An 802.11 data frame carrying ip, with LLC/SNAP (RFC 1042)."""
    qos = i % 2 == 1
    subtype = 8 if qos else 0
    fc0 = (subtype << 4) | (2 << 2)  # type 2 (data)
    fc1 = 0x01 if up else 0x02  # To DS from the client, From DS to it
    if up:  # addr1 = BSSID (AP), addr2 = SA (client), addr3 = DA
        a1, a2, a3 = AP_MAC, CLIENT_MAC, SERVER_MAC
    else:  # addr1 = DA (client), addr2 = BSSID, addr3 = SA
        a1, a2, a3 = CLIENT_MAC, AP_MAC, SERVER_MAC
    hdr = bytes([fc0, fc1]) + struct.pack("<H", 0) + a1 + a2 + a3 + struct.pack("<H", (i & 0xFFF) << 4)
    if qos:
        hdr += struct.pack("<H", 0)
    return hdr + bytes([0xAA, 0xAA, 0x03, 0, 0, 0]) + struct.pack("!H", et) + ip


def radiotap(frame):
    # version 0, pad, length 16, present = flags(1) | rate(2) | channel(3)
    present = (1 << 1) | (1 << 2) | (1 << 3)
    body = struct.pack("<BB", 0, 12) + struct.pack("<HH", 2437, 0x00A0)  # flags, 6 Mb/s, ch 6
    h = struct.pack("<BBHI", 0, 0, 8 + len(body) + 2, present) + body + b"\0\0"
    return h + frame


def capwap(frame, up, i):
    # Preamble 0; HLEN=2 (words), RID=0, WBID=1, T=1, F=L=W=M=K=0, flags 0.
    # First word: preamble (8 bits), HLEN (5), RID (5), WBID (5), T, F, L, W, M, K, flags (3).
    hdr = struct.pack("!I", (0 << 24) | (2 << 19) | (0 << 14) | (1 << 9) | (1 << 8)) + struct.pack("!HH", 0, 0)
    src, dst = ("10.77.9.2", "10.77.9.1") if up else ("10.77.9.1", "10.77.9.2")
    sport, dport = (5247, 5247)
    pkt = (Ether(src="02:00:00:77:00:09", dst="02:00:00:77:00:0a") / IP(src=src, dst=dst, id=i & 0xFFFF)
           / UDP(sport=sport, dport=dport) / Raw(hdr + frame))
    return bytes(pkt)


def write(name, linktype, records):
    """Classic pcap, microseconds, little-endian (pcap-savefile(5))."""
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for t, data in records:
        us = int(round(t * 1e6))
        out += struct.pack("<IIII", us // 1000000, us % 1000000, len(data), len(data)) + data
    with open(os.path.join(PCAPS, name), "wb") as f:
        f.write(out)
    print("%-22s %d frames" % (name, len(records)))


def pcapng(name, ifaces, records):
    """Minimal pcapng (SHB, IDBs, EPBs; pcapng spec, IETF draft-ietf-opsawg-pcapng)."""
    def block(btype, body):
        body += b"\0" * (-len(body) % 4)
        n = 12 + len(body)
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)
    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    for lt in ifaces:
        out += block(1, struct.pack("<HHI", lt, 0, 65535))
    for iface, t, data in records:
        us = int(round(t * 1e6))
        out += block(6, struct.pack("<IIIII", iface, us >> 32, us & 0xFFFFFFFF, len(data), len(data)) + data)
    with open(os.path.join(PCAPS, name), "wb") as f:
        f.write(out)
    print("%-22s %d frames" % (name, len(records)))


def main():
    src = source_frames()
    write("link-chdlc.pcap", 104, [(t, bytes([0x0F, 0]) + struct.pack("!H", et) + ip)
                                   for t, et, ip, up in src])
    write("link-ppp.pcap", 9, [(t, (b"\xff\x03" if i % 2 == 0 else b"") + struct.pack("!H", ppp_proto(et)) + ip)
                               for i, (t, et, ip, up) in enumerate(src)])
    write("link-ppp-hdlc.pcap", 50, [(t, ppp_hdlc(et) + ip) for t, et, ip, up in src])
    write("link-80211.pcap", 105, [(t, dot11(et, ip, up, i)) for i, (t, et, ip, up) in enumerate(src)])
    write("link-radiotap.pcap", 127, [(t, radiotap(dot11(et, ip, up, i)))
                                      for i, (t, et, ip, up) in enumerate(src)])
    write("link-capwap.pcap", 1, [(t, capwap(dot11(et, ip, up, i), up, i))
                                  for i, (t, et, ip, up) in enumerate(src)])
    misc = []
    for i, (t, et, ip, up) in enumerate(src):
        iface = i % 4
        fam_bsd = 2 if et == 0x0800 else 30  # AF_INET; AF_INET6 (macOS)
        if iface == 0:
            data = struct.pack("<I", fam_bsd) + ip
        elif iface == 1:
            data = struct.pack("!I", 2 if et == 0x0800 else 24) + ip  # OpenBSD AF_INET6 = 24
        elif iface == 2:
            if et != 0x0800:
                iface, data = 3, ip
            else:
                data = ip
        else:
            if et == 0x0800:
                iface, data = 2, ip
            else:
                data = ip
        misc.append((iface, t, data))
    pcapng("link-misc.pcapng", [0, 108, 228, 229], misc)
    eth = []
    for t, et, ip, up in src:
        a, b = (SERVER_MAC, CLIENT_MAC) if up else (CLIENT_MAC, SERVER_MAC)
        eth.append((t, a + b + struct.pack("!H", et) + ip))
    write("link-unknown.pcap", 147, eth)


if __name__ == "__main__":
    main()
