#!/usr/bin/env python3
"""Tiny HTTP/1.1 keep-alive server and forward proxy for making test captures.

Listens only on the address given (a namespace address). Answers every GET
with a short fixed body and keeps the connection open (HTTP/1.1). With
--proxy it also accepts CONNECT host:port and relays the tunnel to
--upstream (always that one address: it never resolves or reaches any other
host), and answers absolute-form GETs itself. With --dir it is instead
Python's own file server (http.server) over that folder, still HTTP/1.1,
and answers a POST by reading its body (Content-Length) so that an upload
does not end the connection. Exits by itself after --lifetime seconds.
"""
import argparse
import functools
import http.server
import select
import socket
import socketserver
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = None

    def do_GET(self):
        body = ("ok %s %s\n" % (self.headers.get("Host", "-"), self.path)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_CONNECT(self):
        if self.upstream is None:
            self.send_error(405)
            return
        up = socket.create_connection(self.upstream, timeout=10)
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        conns = [self.connection, up]
        for _ in range(1000):  # bounded relay loop
            r, _, _ = select.select(conns, [], [], 5)
            if not r:
                break
            done = False
            for s in r:
                data = s.recv(65536)
                if not data:
                    done = True
                    break
                (up if s is self.connection else self.connection).sendall(data)
            if done:
                break
        up.close()
        self.close_connection = True

    def log_message(self, fmt, *args):
        pass


class FileHandler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        left = int(self.headers.get("Content-Length", "0"))
        while left > 0:
            chunk = self.rfile.read(min(left, 65536))
            if not chunk:
                break
            left -= len(chunk)
        body = b"stored\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", required=True)
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--proxy", action="store_true")
    ap.add_argument("--upstream", default=None, help="ip:port for CONNECT")
    ap.add_argument("--dir", default=None, help="serve the files of this folder")
    ap.add_argument("--lifetime", type=float, default=60)
    a = ap.parse_args()
    if a.proxy and a.upstream:
        host, port = a.upstream.rsplit(":", 1)
        Handler.upstream = (host, int(port))
    if ":" in a.bind:
        Server.address_family = socket.AF_INET6
    handler = functools.partial(FileHandler, directory=a.dir) if a.dir else Handler
    srv = Server((a.bind, a.port), handler)
    threading.Timer(a.lifetime, srv.shutdown).start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
