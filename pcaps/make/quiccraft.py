#!/usr/bin/env python3
"""Crafted QUIC captures (our own code, offline; no client for these exists
here). Packets are built from the wire formats and, where encrypted, sealed
with aioquic's (PyPI) QUIC crypto (RFC 9001 §5: AEAD and header protection).

gquic.pcap: one client hello per Google QUIC version, client 10.77.0.1 to
  server 10.77.0.2 UDP 443, one connection each.
  - Q043: public header (flags 0x09: version, 8-byte connection ID, 1-byte
    packet number), 12-byte message authentication hash, a STREAM frame on
    stream 1 carrying the CHLO handshake message with an SNI tag (QUIC
    crypto, "QUIC Wire Layout Specification"; Chromium quic/core).
  - Q046: the same payload behind the long header of Q046 (first byte 0xC3,
    version, one DCIL/SCIL byte, 8-byte DCID, 4-byte packet number).
  - Q050: IETF invariant long header (RFC 8999), Initial, the CHLO in a
    CRYPTO frame, sealed with initial keys from the Q050 salt
    (5045 74ef d066 fe2f 9d94 5cfc dbd3 a7f0 d3b5 6b45, as in Wireshark's
    packet-quic.c and Chromium).
  - T050 and T051: an Initial like Q050's carrying a TLS 1.3 ClientHello in
    a CRYPTO frame (gQUIC frame types, TLS handshake), sealed with the T050 /
    T051 salts
    (7ff5 79e5 acd0 7291 5580 304c 43a2 367c 6048 8310 and
    7a4e def4 e7cc ee5f a450 6c19 124f c8cc da6e 033d).
  The TLS ClientHello is aioquic's own (a real client's handshake bytes).
quic-dcid.pcap: a complete QUIC v1 handshake between aioquic client and
  server objects (sans-IO, our script drives them), where the client's
  ClientHello spans two Initial packets (a long ALPN list) and the second
  one goes out only after the server's first Initial arrived, so it carries
  the server's chosen connection ID as DCID (RFC 9000 §7.2) while still
  sealed with the keys of the client's first DCID (RFC 9001 §5.2): the
  CRYPTO stream is spread over packets with different DCIDs. Only the
  second packet is rewritten (its DCID replaced, resealed); everything else
  is aioquic's output.
"""
import os
import ssl
import struct
import subprocess
import tempfile

import aioquic.quic.crypto as qcrypto
from aioquic.buffer import Buffer
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.crypto import CryptoPair
from scapy.all import Ether, IP, UDP, Raw, wrpcap

HERE = os.path.dirname(os.path.abspath(__file__))
PCAPS = os.path.dirname(HERE)
SALT = {
    "Q050": bytes.fromhex("504574efd066fe2f9d945cfcdbd3a7f0d3b56b45"),
    "T050": bytes.fromhex("7ff579e5acd0729155 80304c43a2367c60488310".replace(" ", "")),
    "T051": bytes.fromhex("7a4edef4e7ccee5fa4506c19124fc8ccda6e033d"),
}
C, S = "10.77.0.1", "10.77.0.2"
T0 = 1796000000.0


def varint(n):
    if n < 0x40:
        return bytes([n])
    if n < 0x4000:
        return struct.pack("!H", 0x4000 | n)
    return struct.pack("!I", 0x80000000 | n)


def chlo(sni, ver):
    """A CHLO message: tag, entry count (LE), padding, sorted (tag, end offset) entries, values."""
    tags = {b"PAD\0": b"-" * 400, b"SNI\0": sni.encode(), b"VER\0": ver.encode(),
            b"CCS\0": bytes.fromhex("01e8816092921ae87eed8086a2158291"), b"PDMD": b"X509",
            b"UAID": b"Chrome/90.0.4430.93 Linux x86_64", b"ICSL": struct.pack("<I", 30),
            b"MIDS": struct.pack("<I", 100), b"CFCW": struct.pack("<I", 15728640),
            b"SFCW": struct.pack("<I", 6291456), b"SCLS": struct.pack("<I", 1),
            b"CSCT": b"", b"TCID": struct.pack("<I", 0), b"SMHL": struct.pack("<I", 1)}
    items = sorted(tags.items(), key=lambda kv: struct.unpack("<I", kv[0])[0])
    head, vals, end = b"CHLO" + struct.pack("<HH", len(items), 0), b"", 0
    for tag, value in items:
        end += len(value)
        head += tag + struct.pack("<I", end)
        vals += value
    return head + vals


def gquic_stream_frame(data):
    # Frame type 0b1FDOOOSS: D (data length present), no offset, 1-byte stream id; big endian
    # since Q039.
    return bytes([0xA0, 1]) + struct.pack("!H", len(data)) + data


def client_hello(sni, alpn=("h3",)):
    """(TLS ClientHello bytes, DCID) of aioquic's first Initial for sni."""
    cfg = QuicConfiguration(is_client=True, alpn_protocols=list(alpn), server_name=sni)
    conn = QuicConnection(configuration=cfg)
    conn.connect((S, 443), now=0.0)
    data = conn.datagrams_to_send(now=0.0)[0][0]
    dcid = conn._peer_cid.cid
    plain = open_initial(data, dcid, CryptoPair.setup_initial, 1)[1]
    return crypto_data(plain), dcid


def crypto_data(plain):
    """Concatenated CRYPTO frame data (offset order) of a decrypted v1 payload."""
    buf = Buffer(data=plain)
    parts = {}
    while not buf.eof():
        ftype = buf.pull_uint_var()
        if ftype == 0x00:
            continue
        if ftype == 0x01:
            continue
        if ftype in (0x02, 0x03):  # ACK
            buf.pull_uint_var(); buf.pull_uint_var()
            n = buf.pull_uint_var(); buf.pull_uint_var()
            for _ in range(n):
                buf.pull_uint_var(); buf.pull_uint_var()
            if ftype == 0x03:
                for _ in range(3):
                    buf.pull_uint_var()
            continue
        if ftype == 0x06:
            off = buf.pull_uint_var()
            ln = buf.pull_uint_var()
            parts[off] = buf.pull_bytes(ln)
            continue
        break
    return b"".join(v for _, v in sorted(parts.items()))


def long_header_fields(data):
    """(pn offset, dcid, total packet length) of the first long-header packet in data."""
    buf = Buffer(data=data)
    buf.pull_uint8()
    buf.pull_uint32()
    dcid = buf.pull_bytes(buf.pull_uint8())
    buf.pull_bytes(buf.pull_uint8())
    token_len = buf.pull_uint_var()
    buf.pull_bytes(token_len)
    length = buf.pull_uint_var()
    return buf.tell(), dcid, buf.tell() + length


def open_initial(data, dcid, setup, version, salt=None):
    """Decrypt the first Initial of a datagram as the server: (plain header, payload, pn)."""
    pair = CryptoPair()
    with salt_as_v1(salt):
        pair.setup_initial(dcid, is_client=False, version=version)
    pn_off, _, end = long_header_fields(data)
    hdr, payload, pn = pair.decrypt_packet(data[:end], pn_off, 0)[:3]
    return hdr, payload, pn


class salt_as_v1:
    """Use another initial salt with the v1 key derivation (labels "quic key", …)."""

    def __init__(self, salt):
        self.salt = salt

    def __enter__(self):
        self.saved = qcrypto.INITIAL_SALT_VERSION_1
        if self.salt is not None:
            qcrypto.INITIAL_SALT_VERSION_1 = self.salt

    def __exit__(self, *exc):
        qcrypto.INITIAL_SALT_VERSION_1 = self.saved


def seal_initial(version_bytes, dcid, scid, payload, pn, salt):
    """A client Initial (RFC 9000 §17.2.2) with a 4-byte packet number, sealed with salt's keys."""
    payload = payload + bytes(max(0, 1162 - len(payload)))  # pad the datagram to 1200 bytes
    length = 4 + len(payload) + 16
    hdr = (bytes([0xC3]) + version_bytes + bytes([len(dcid)]) + dcid + bytes([len(scid)]) + scid
           + varint(0) + struct.pack("!H", 0x4000 | length) + struct.pack("!I", pn))
    pair = CryptoPair()
    with salt_as_v1(salt):
        pair.setup_initial(dcid, is_client=True, version=1)
    return pair.encrypt_packet(hdr, payload, pn)


def udp(payload, t, sport, dport=443, up=True):
    src, dst = (C, S) if up else (S, C)
    p = Ether(src="02:00:00:77:00:01", dst="02:00:00:77:00:02") if up else \
        Ether(src="02:00:00:77:00:02", dst="02:00:00:77:00:01")
    p = p / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / Raw(payload)
    p.time = t
    return p


def gquic():
    pkts = []
    t = T0
    cid = lambda i: bytes([0x40 + i]) + bytes(range(1, 8))
    # Q043
    q043 = (bytes([0x09]) + cid(1) + b"Q043" + bytes([1]) + bytes(12)
            + gquic_stream_frame(chlo("dnl-01.geo.kaspersky.com", "Q043")))
    pkts.append(udp(q043, t, 50001)); t += 0.5
    # Q046
    q046 = (bytes([0xC3]) + b"Q046" + bytes([0x50]) + cid(2) + struct.pack("!I", 1) + bytes(12)
            + gquic_stream_frame(chlo("ds.kaspersky.com", "Q046")))
    pkts.append(udp(q046, t, 50002)); t += 0.5
    # Q050: gQUIC CRYPTO frame (type 0x08, IETF varint offset and length).
    msg = chlo("dc1.ksn.kaspersky-labs.com", "Q050")
    q050 = seal_initial(b"Q050", cid(3), b"", bytes([0x08]) + varint(0) + varint(len(msg)) + msg, 1,
                        SALT["Q050"])
    pkts.append(udp(q050, t, 50003)); t += 0.5
    # T050, T051: a TLS ClientHello in a gQUIC CRYPTO frame (these versions keep Google
    # QUIC's frame types; only the handshake is TLS).
    for i, (ver, sni) in enumerate([("T050", "s01.upd.kaspersky.com"), ("T051", "example.org")]):
        ch, _ = client_hello(sni)
        frame = bytes([0x08]) + varint(0) + varint(len(ch)) + ch
        pkts.append(udp(seal_initial(ver.encode(), cid(4 + i), b"", frame, 1, SALT[ver]), t, 50004 + i))
        t += 0.5
    wrpcap(os.path.join(PCAPS, "gquic.pcap"), pkts)
    print("gquic.pcap: %d packets" % len(pkts))


def quic_dcid():
    alpn = ["h3"] + ["x-kaspersky-test-%02d-" % i + "a" * 180 for i in range(5)]
    ccfg = QuicConfiguration(is_client=True, alpn_protocols=alpn, server_name="ksn-file-geo.kaspersky-labs.com",
                             verify_mode=ssl.CERT_NONE)
    scfg = QuicConfiguration(is_client=False, alpn_protocols=alpn)
    with tempfile.TemporaryDirectory() as tmp:  # a throwaway self-signed certificate
        crt, key = os.path.join(tmp, "c.crt"), os.path.join(tmp, "c.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                        "-subj", "/CN=ksn-file-geo.kaspersky-labs.com", "-keyout", key, "-out", crt],
                       check=True, capture_output=True)
        scfg.load_cert_chain(crt, key)
    client = QuicConnection(configuration=ccfg)
    caddr, saddr = (C, 50443), (S, 443)
    now = 0.0
    client.connect(saddr, now=now)
    first = [d for d, _ in client.datagrams_to_send(now=now)]
    assert len(first) >= 2, "the ClientHello must span two datagrams"
    d0 = client._peer_cid.cid
    server = QuicConnection(configuration=scfg, original_destination_connection_id=d0)
    wire = []  # (time, bytes, from_client)
    wire.append((now, first[0], True))
    server.receive_datagram(first[0], caddr, now=now)
    now += 0.001
    sflight = [d for d, _ in server.datagrams_to_send(now=now)]
    for d in sflight:
        wire.append((now, d, False))
    s1 = server.host_cid
    # The client's second Initial, re-addressed to the server's CID, same keys (first DCID's).
    now += 0.001
    for d in first[1:]:
        hdr, payload, pn = open_initial(d, d0, None, 1)
        pn_off, old_dcid, end = long_header_fields(d)
        assert len(old_dcid) == len(s1)
        new_hdr = hdr[:6] + s1 + hdr[6 + len(s1):]
        pair = CryptoPair()
        pair.setup_initial(d0, is_client=True, version=1)
        rewritten = pair.encrypt_packet(new_hdr, payload, pn) + d[end:]
        wire.append((now, rewritten, True))
        server.receive_datagram(rewritten, caddr, now=now)
    for d in sflight:
        client.receive_datagram(d, saddr, now=now)
    # Run both ends until nothing more is sent.
    for _ in range(20):
        now += 0.001
        sent = False
        for d, _ in server.datagrams_to_send(now=now):
            wire.append((now, d, False)); client.receive_datagram(d, saddr, now=now); sent = True
        now += 0.001
        for d, _ in client.datagrams_to_send(now=now):
            wire.append((now, d, True)); server.receive_datagram(d, caddr, now=now); sent = True
        if not sent:
            break
    pkts = [udp(d, T0 + t, 50443, up=up) if up else udp(d, T0 + t, 443, dport=50443, up=False)
            for t, d, up in wire]
    wrpcap(os.path.join(PCAPS, "quic-dcid.pcap"), pkts)
    print("quic-dcid.pcap: %d packets, handshake %s" % (len(pkts), "done" if client._handshake_complete else "NOT done"))


if __name__ == "__main__":
    gquic()
    quic_dcid()
