#!/usr/bin/env python3
"""Send DNS messages no installed tool sends, over UDP, to a real server
(dnsmasq) and wait for its answer: an inverse query (opcode IQUERY, RFC 1035
§6.4, obsoleted by RFC 3425) carrying one answer RR and no question, a
STATUS query (opcode 2), and a standard query with an empty question
section. Crafted by this script (Python sockets); the answers are dnsmasq's."""
import socket
import struct
import sys


def name(n):
    return b"".join(bytes([len(l)]) + l for l in n.encode().split(b".")) + b"\0"


def ask(server, msg):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    s.sendto(msg, (server, 53))
    try:
        s.recvfrom(4096)
    except socket.timeout:
        pass
    s.close()


def main():
    server = sys.argv[1]
    rr = name("ds.kaspersky.com") + struct.pack("!HHIH", 1, 1, 0, 4) + bytes([10, 77, 1, 1])
    ask(server, struct.pack("!HHHHHH", 0x1101, 1 << 11, 0, 1, 0, 0) + rr)
    q = name("dnl-01.geo.kaspersky.com") + struct.pack("!HH", 1, 1)
    ask(server, struct.pack("!HHHHHH", 0x1102, 2 << 11, 1, 0, 0, 0) + q)
    ask(server, struct.pack("!HHHHHH", 0x1103, 0x0100, 0, 0, 0, 0))


if __name__ == "__main__":
    main()
