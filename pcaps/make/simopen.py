#!/usr/bin/env python3
"""One side of a TCP simultaneous open (RFC 9293 §3.5, figure 8): both
sides bind a fixed port and connect() to each other, with no listener.
  simopen.py server LOCAL LPORT REMOTE RPORT  connect, then TLS server (--cert/--key)
  simopen.py client LOCAL LPORT REMOTE RPORT  connect, then TLS client with SNI --sni
The kernel does the handshake; the TLS is Python's ssl (OpenSSL). Both give
up after 10 s."""
import argparse
import socket
import ssl


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["server", "client"])
    ap.add_argument("local")
    ap.add_argument("lport", type=int)
    ap.add_argument("remote")
    ap.add_argument("rport", type=int)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--sni")
    a = ap.parse_args()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(10)
    s.bind((a.local, a.lport))
    s.connect((a.remote, a.rport))
    if a.mode == "server":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        with ctx.wrap_socket(s, server_side=True) as t:
            t.sendall(b"hello\n")
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with ctx.wrap_socket(s, server_hostname=a.sni) as t:
            t.recv(100)


if __name__ == "__main__":
    main()
