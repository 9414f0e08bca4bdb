#!/usr/bin/env python3
"""Plain sockets for the Kaspersky Security Center (KSC) parts of
staged-enterprise.sh: the legacy unencrypted agent port TCP 14000, the UDP
13000 shutdown notices (agent -> server), the UDP 15000 wake-ups (server or
distribution point -> agent's Network Agent, also sent as broadcasts) and the
UDP 15001 multicast of a distribution point. Port directions follow the KSC
port table in shared research (Kaspersky help pages 158525, 158532, 158545).

Every socket is bound to an address given on the command line (a namespace
address); nothing resolves names. Servers exit by themselves after
--lifetime seconds, clients after --timeout seconds.

  kscsim.py tcp-serve  --bind A --port P [--reply TEXT] [--lifetime S]
  kscsim.py tcp-send   --bind A --to A:P --data TEXT [--timeout S]
  kscsim.py udp-listen --bind A --port P [--lifetime S]
  kscsim.py udp-send   --bind A --to A:P --data TEXT [--broadcast|--multicast]
"""
import argparse
import socket
import sys
import threading
import time


def tcp_serve(a):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((a.bind, a.port))
    srv.listen(8)
    srv.settimeout(1.0)
    end = time.monotonic() + a.lifetime
    while time.monotonic() < end:
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        with conn:
            conn.settimeout(5)
            try:
                data = conn.recv(4096)  # one request, then one answer
                if data:
                    conn.sendall(a.reply.encode())
            except OSError:
                pass


def tcp_send(a):
    host, port = a.to.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(a.timeout)
    s.bind((a.bind, 0))
    s.connect((host, int(port)))
    s.sendall(a.data.encode())
    got = b""
    while True:  # read the answer until the server closes
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    s.close()
    sys.stdout.write(got.decode(errors="replace"))


def udp_listen(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Bound to the port on every local address so unicast and broadcast
    # datagrams both land here (no ICMP port unreachable on the wire).
    s.bind((a.bind, a.port))
    s.settimeout(1.0)
    end = time.monotonic() + a.lifetime
    while time.monotonic() < end:
        try:
            s.recvfrom(65535)
        except socket.timeout:
            continue


def udp_send(a):
    host, port = a.to.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # The sending host may also listen on the port (an agent on 15000).
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if a.broadcast:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    if a.multicast:
        # Leave through the interface holding --bind; one hop only (the LAN);
        # no copy looped back to the sender.
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(a.bind))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    # Binding the source address also lets the kernel route 255.255.255.255
    # and multicast out of the LAN interface without any default route.
    s.bind((a.bind, a.sport))
    s.sendto(a.data.encode(), (host, int(port)))
    s.close()


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("tcp-serve")
    p.add_argument("--bind", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--reply", default="ok\n")
    p.add_argument("--lifetime", type=float, default=120)
    p = sub.add_parser("tcp-send")
    p.add_argument("--bind", required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--timeout", type=float, default=5)
    p = sub.add_parser("udp-listen")
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--lifetime", type=float, default=120)
    p = sub.add_parser("udp-send")
    p.add_argument("--bind", required=True)
    p.add_argument("--sport", type=int, default=0)
    p.add_argument("--to", required=True)
    p.add_argument("--data", required=True)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--broadcast", action="store_true")
    g.add_argument("--multicast", action="store_true")
    a = ap.parse_args()
    # A hard stop for every mode, whatever the socket calls do.
    limit = getattr(a, "lifetime", None) or getattr(a, "timeout", None) or 5
    t = threading.Timer(limit + 2, lambda: __import__("os")._exit(3))
    t.daemon = True
    t.start()
    {"tcp-serve": tcp_serve, "tcp-send": tcp_send,
     "udp-listen": udp_listen, "udp-send": udp_send}[a.cmd](a)


if __name__ == "__main__":
    main()
