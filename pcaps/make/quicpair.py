#!/usr/bin/env python3
"""Minimal aioquic QUIC v1 server / client for making a capture with a full
handshake. server: listens on --host/--port with --cert/--key for --lifetime
seconds. client: connects, completes the handshake with SNI --sni, sends a
QUIC PING, closes. Both stop by themselves (timeouts)."""
import argparse
import asyncio
import ssl

from aioquic.asyncio import connect, serve
from aioquic.quic.configuration import QuicConfiguration


async def run_server(a):
    cfg = QuicConfiguration(is_client=False, alpn_protocols=["h3"])
    cfg.load_cert_chain(a.cert, a.key)
    srv = await serve(a.host, a.port, configuration=cfg)
    await asyncio.sleep(a.lifetime)
    srv.close()


async def run_client(a):
    cfg = QuicConfiguration(is_client=True, alpn_protocols=["h3"],
                            server_name=a.sni, verify_mode=ssl.CERT_NONE)
    async with connect(a.host, a.port, configuration=cfg) as conn:
        await asyncio.wait_for(conn.ping(), 5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["server", "client"])
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--sni", default=None)
    ap.add_argument("--lifetime", type=float, default=30)
    a = ap.parse_args()
    coro = run_server(a) if a.mode == "server" else run_client(a)
    asyncio.run(asyncio.wait_for(coro, a.lifetime + 5))


if __name__ == "__main__":
    main()
