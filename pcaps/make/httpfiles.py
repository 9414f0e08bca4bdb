#!/usr/bin/env python3
"""HTTP/1.1 keep-alive file server for making test captures.

Python's own http.server serving the files of --dir, with HTTP/1.1 (so a
client may send several requests on one connection) and a POST handler that
reads the request body (Content-Length) and answers with its size, so that
an upload does not end the connection. Listens only on the address given (a
namespace address); exits by itself after --lifetime seconds.
"""
import argparse
import functools
import http.server
import socketserver
import threading


class Handler(http.server.SimpleHTTPRequestHandler):
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
    ap.add_argument("--dir", required=True)
    ap.add_argument("--lifetime", type=float, default=60)
    a = ap.parse_args()
    handler = functools.partial(Handler, directory=a.dir)
    srv = Server((a.bind, a.port), handler)
    threading.Timer(a.lifetime, srv.shutdown).start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
