#!/usr/bin/env python3
"""Small pcap rewriting helpers (our own code, no scapy):

  pcaptool.py be IN OUT      rewrite a little-endian classic pcap as
                             big-endian: the magic, every global-header field
                             and every record-header field are written
                             big-endian; packet bytes are unchanged. The
                             timestamp precision (usec/nsec magic) is kept.
  pcaptool.py firstts IN      print the first packet's timestamp (seconds)
  pcaptool.py rawip IN OUT   Ethernet pcap (link type 1) -> raw IP pcap
                             (LINKTYPE_RAW, 101): drop the 14-byte Ethernet
                             header of each IPv4/IPv6 frame, skip others.
"""
import struct
import sys

MAGIC_US = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D


def read_pcap(path):
    data = open(path, "rb").read()
    magic_le = struct.unpack("<I", data[:4])[0]
    if magic_le in (MAGIC_US, MAGIC_NS):
        e = "<"
    else:
        e = ">"
    magic, vmaj, vmin, tz, sig, snap, lt = struct.unpack(e + "IHHiIII", data[:24])
    recs = []
    off = 24
    while off + 16 <= len(data):
        ts, tf, incl, orig = struct.unpack(e + "IIII", data[off:off + 16])
        off += 16
        recs.append((ts, tf, orig, data[off:off + incl]))
        off += incl
    return (magic, vmaj, vmin, tz, sig, snap, lt), recs


def write_pcap(path, hdr, recs, e):
    with open(path, "wb") as f:
        f.write(struct.pack(e + "IHHiIII", *hdr))
        for ts, tf, orig, pkt in recs:
            f.write(struct.pack(e + "IIII", ts, tf, len(pkt), orig) + pkt)


def main():
    cmd, src = sys.argv[1:3]
    hdr, recs = read_pcap(src)
    if cmd == "firstts":
        div = 1e9 if hdr[0] == MAGIC_NS else 1e6
        print("%.9f" % (recs[0][0] + recs[0][1] / div))
        return
    dst = sys.argv[3]
    if cmd == "be":
        write_pcap(dst, hdr, recs, ">")
    elif cmd == "rawip":
        if hdr[6] != 1:
            sys.exit("rawip: input is not Ethernet")
        out = []
        for ts, tf, orig, pkt in recs:
            if pkt[12:14] in (b"\x08\x00", b"\x86\xdd"):
                out.append((ts, tf, orig - 14, pkt[14:]))
        write_pcap(dst, hdr[:6] + (101,), out, "<")
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
