#!/usr/bin/env python3
"""aioquic (PyPI) client and server for QUIC captures beyond one plain v1
handshake on 443. Works with aioquic 1.7 and with 0.9.20 (the last release
that speaks the draft versions).

server: --host/--port/--cert/--key for --lifetime s; --retry makes the server
  answer each first Initial with a Retry (RFC 9000 §8.1.2); it keeps and
  accepts session tickets with early data (0-RTT, RFC 9001 §4.6.1); --alpn.
client: handshake with SNI --sni and --version (1, 2 = RFC 9369, draft-29 ...,
  if this aioquic knows it), then a PING, then close. --ticket FILE: load a
  session ticket from FILE if it exists (resumption; with --early, the
  client sends stream data before the handshake completes, which goes out as
  0-RTT), and save the ticket the server issues to FILE.
Both stop by themselves."""
import argparse
import asyncio
import os
import pickle
import ssl

from aioquic.asyncio import connect, serve
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.packet import QuicProtocolVersion

VERSIONS = {"1": "VERSION_1", "2": "VERSION_2", "draft-29": "DRAFT_29",
            "draft-32": "DRAFT_32"}


class TicketStore:
    def __init__(self):
        self.tickets = {}

    def add(self, ticket):
        self.tickets[ticket.ticket] = ticket

    def pop(self, label):
        return self.tickets.pop(label, None)


async def run_server(a):
    cfg = QuicConfiguration(is_client=False, alpn_protocols=[a.alpn],
                            max_datagram_frame_size=65536)
    cfg.load_cert_chain(a.cert, a.key)
    cfg.supported_versions = [getattr(QuicProtocolVersion, v) for v in VERSIONS.values()
                              if hasattr(QuicProtocolVersion, v)]
    store = TicketStore()
    kw = dict(configuration=cfg, session_ticket_fetcher=store.pop,
              session_ticket_handler=store.add, retry=a.retry)
    srv = await serve(a.host, a.port, **kw)
    await asyncio.sleep(a.lifetime)
    srv.close()


async def run_client(a):
    version = getattr(QuicProtocolVersion, VERSIONS[a.version])
    cfg = QuicConfiguration(is_client=True, alpn_protocols=[a.alpn], server_name=a.sni,
                            verify_mode=ssl.CERT_NONE)
    cfg.supported_versions = [version]
    cfg.original_version = version if hasattr(cfg, "original_version") else None
    if a.ticket and os.path.exists(a.ticket):
        with open(a.ticket, "rb") as f:
            cfg.session_ticket = pickle.load(f)

    def save(ticket):
        if a.ticket:
            with open(a.ticket, "wb") as f:
                pickle.dump(ticket, f)

    async with connect(a.host, a.port, configuration=cfg, session_ticket_handler=save,
                       wait_connected=not a.early) as conn:
        if a.early:
            reader, writer = await conn.create_stream()
            writer.write(b"GET /early\r\n")
            conn.transmit()
            await asyncio.wait_for(conn.wait_connected(), 5)
        await asyncio.wait_for(conn.ping(), 5)
        await asyncio.sleep(0.2)  # let the server's NEW_SESSION_TICKET arrive


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["server", "client"])
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--sni")
    ap.add_argument("--alpn", default="h3")
    ap.add_argument("--version", default="1", choices=sorted(VERSIONS))
    ap.add_argument("--retry", action="store_true")
    ap.add_argument("--ticket")
    ap.add_argument("--early", action="store_true")
    ap.add_argument("--lifetime", type=float, default=30)
    a = ap.parse_args()
    coro = run_server(a) if a.mode == "server" else run_client(a)
    asyncio.run(asyncio.wait_for(coro, a.lifetime + 5))


if __name__ == "__main__":
    main()
