#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/seeds/<target>/ from the real captures in pcaps/ and the
ClientHellos in sensor/proto/testdata/.

Packets are read with a small pcap/pcapng reader below; DNS, HTTP and QUIC payloads are cut out
by tshark (an independent dissector). Each seed is in the input format its target documents at
the top of fuzz/fuzz_targets/<target>.rs. Output is deterministic (files are named by content
hash) and small: the whole tree stays well under 2 MB.

Usage: python3 fuzz/make_seeds.py        (from the repository root; needs tshark)
"""

import hashlib
import os
import shutil
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PCAPS = os.path.join(ROOT, "pcaps")
SEEDS = os.path.join(ROOT, "fuzz", "seeds")
TLS_TESTDATA = os.path.join(ROOT, "sensor", "proto", "testdata")
CAPTURE_TESTDATA = os.path.join(ROOT, "sensor", "capture", "testdata")

# Same order as ksensor_fuzz::LINK_TYPES: the selector byte is the index.
LINK_TYPES = [1, 101, 113, 276, 0, 108, 228, 229, 12, 14, 147, 104, 9, 50, 105, 127]

# Caps on what is written, to keep the committed corpus small.
MAX_DECODE_PACKETS_PER_CAPTURE = 12
MAX_PIPELINE_PACKETS = 64
MAX_PAYLOADS_PER_CAPTURE = 8
MAX_PCAP_SEED_BYTES = 16 * 1024


def write(target, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read_packets(path):
    """(link type, bytes) of every packet of a pcap or pcapng file."""
    data = open(path, "rb").read()
    magic = data[:4]
    out = []
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = "<" if magic[0] in (0xD4, 0x4D) else ">"
        link = struct.unpack(e + "I", data[20:24])[0] & 0x03FFFFFF
        off = 24
        while off + 16 <= len(data):
            caplen = struct.unpack(e + "I", data[off + 8 : off + 12])[0]
            out.append((link, data[off + 16 : off + 16 + caplen]))
            off += 16 + caplen
    elif magic == b"\x0a\x0d\x0d\x0a":
        off = 0
        e = "<"
        links = []
        while off + 12 <= len(data):
            btype = data[off : off + 4]
            if btype == b"\x0a\x0d\x0d\x0a":
                e = "<" if data[off + 8 : off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
                links = []
            blen = struct.unpack(e + "I", data[off + 4 : off + 8])[0]
            t = struct.unpack(e + "I", btype)[0]
            body = data[off + 8 : off + blen - 4]
            if t == 1:
                links.append(struct.unpack(e + "H", body[0:2])[0])
            elif t == 6:
                iface, _, _, caplen, _ = struct.unpack(e + "IIIII", body[0:20])
                out.append((links[iface], body[20 : 20 + caplen]))
            if blen < 12:
                break
            off += blen
    return out


def tshark_hex(path, display_filter, field):
    """Hex field values of the frames matching `display_filter`, as bytes."""
    try:
        out = subprocess.run(
            ["tshark", "-n", "-r", path, "-Y", display_filter, "-T", "fields", "-e", field],
            capture_output=True,
            check=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit(f"tshark failed on {path}: {e}")
    values = []
    for line in out.splitlines():
        line = line.strip().replace(":", "")
        if line:
            values.append(bytes.fromhex(line.split(",")[0]))
    return values


def captures():
    return sorted(
        os.path.join(PCAPS, f) for f in os.listdir(PCAPS) if f.endswith((".pcap", ".pcapng"))
    )


def client_hellos():
    """Handshake messages (record header removed) of the real ClientHellos."""
    out = []
    for f in sorted(os.listdir(TLS_TESTDATA)):
        if f.endswith(".bin"):
            out.append(open(os.path.join(TLS_TESTDATA, f), "rb").read())
    return out


def varint2(v):
    return struct.pack(">H", 0x4000 | v)


def main():
    if os.path.isdir(SEEDS):
        shutil.rmtree(SEEDS)
    caps = captures()

    for path in caps:
        packets = read_packets(path)
        # decode: [link selector][packet]
        for link, pkt in packets[:MAX_DECODE_PACKETS_PER_CAPTURE]:
            if link in LINK_TYPES:
                write("decode", bytes([LINK_TYPES.index(link)]) + pkt)
        # pipeline: records [link][time step][len u16][bytes]
        seed = b""
        for link, pkt in packets[:MAX_PIPELINE_PACKETS]:
            if link in LINK_TYPES:
                pkt = pkt[:2047]
                seed += bytes([LINK_TYPES.index(link), 0]) + struct.pack(">H", len(pkt)) + pkt
        if seed:
            write("pipeline", seed)
        # pcap: [read step][file]
        raw = open(path, "rb").read()
        if len(raw) <= MAX_PCAP_SEED_BYTES:
            write("pcap", bytes([7]) + raw)
        # dns: one message per seed (UDP payloads; TCP streams via tcp.payload).
        for p in tshark_hex(path, "dns && udp", "udp.payload")[:MAX_PAYLOADS_PER_CAPTURE]:
            write("dns", p)
        # http: request and response heads.
        for p in tshark_hex(path, "http.request || http.response", "tcp.payload")[
            :MAX_PAYLOADS_PER_CAPTURE
        ]:
            write("http", bytes([16]) + p)
        # quic: the client's datagrams as raw records: [dcid len 0][kind 0][len u16][datagram]
        datagrams = tshark_hex(path, "(quic || gquic) && udp.dstport == 443", "udp.payload")
        if datagrams:
            seed = b"\x00"
            for d in datagrams[:MAX_PAYLOADS_PER_CAPTURE]:
                seed += b"\x00" + struct.pack(">H", len(d)) + d
            write("quic", seed)

    for name in os.listdir(CAPTURE_TESTDATA):
        if name.endswith((".pcap", ".pcapng")):
            write("pcap", bytes([3]) + open(os.path.join(CAPTURE_TESTDATA, name), "rb").read())

    for record in client_hellos():
        handshake = record[5:]
        # tls: the stream itself, and [split size][handshake] for the re-framing check.
        write("tls", record)
        for split in (255, 64, 7):
            write("tls", bytes([split]) + handshake)
        # quic: a sealed Initial (kind 0x80 | pn_len bits | pn) with the hello in one CRYPTO
        # frame, v1 and v2; and the hello split over two Initials.
        frame = b"\x06\x00" + varint2(len(handshake)) + handshake + b"\x00" * 64
        dcid = bytes(range(1, 9))
        for kind in (0x81, 0xC1):
            write("quic", bytes([8]) + dcid + bytes([kind]) + struct.pack(">H", len(frame)) + frame)
        half = len(handshake) // 2
        a = b"\x06\x00" + varint2(half) + handshake[:half]
        b = b"\x06" + varint2(half) + varint2(len(handshake) - half) + handshake[half:]
        write(
            "quic",
            bytes([8]) + dcid
            + bytes([0x92]) + struct.pack(">H", len(b)) + b
            + bytes([0x91]) + struct.pack(">H", len(a)) + a,
        )

    for name in os.listdir(os.path.join(ROOT, "rules")):
        if name.endswith(".toml"):
            text = open(os.path.join(ROOT, "rules", name), "rb").read()
            write("rules", text)
            write("rules", text[: len(text) // 3])
    write(
        "rules",
        b'[[rule]]\nid = "x"\nmatch = ["exact:a.kaspersky.com", "suffix:kaspersky.com",'
        b' "pattern:dnl-##.geo.kaspersky.com"]\ncategory = "update"\nconfidence = "high"\n'
        b'product = "kaspersky"\nsource = "fuzz seed"\n\n'
        b'[[network]]\nid = "n"\nasn = 200107\nprefixes = ["77.74.176.0/21", "77.74.180.0/22",'
        b' "2a03:2480::/33", "2a03:2480:68::/47", "255.255.255.255/32"]\nuse = "corroborate"\n'
        b'source = "fuzz seed"\nretrieved = "2026-12-06"\n',
    )

    # reassembly: [isn u32] then [op][offset u16][len][bytes]: a SYN, then segments in
    # reverse order, an overlapping retransmission and a RST.
    body = bytes(range(200))
    seed = struct.pack(">I", 0xFFFFFF00) + bytes([0]) + struct.pack(">H", 0) + bytes([0])
    for off in (150, 100, 50, 1):
        seed += bytes([3]) + struct.pack(">H", off) + bytes([50]) + body[off - 1 : off + 49]
    seed += bytes([3 | 0x0C]) + struct.pack(">H", 20) + bytes([60]) + body[19:79]
    seed += bytes([2]) + struct.pack(">H", 300) + bytes([4]) + b"oops"
    write("reassembly", seed)
    hello = client_hellos()[0]
    seed = struct.pack(">I", 7)
    for off in range(0, len(hello), 200):
        chunk = hello[off : off + 200]
        seed += bytes([3]) + struct.pack(">H", off) + bytes([len(chunk)]) + chunk
    write("reassembly", seed)

    # defrag: [flags][id][offset u16][len units][time step][bytes]: a datagram in three
    # fragments (pattern bytes), out of order, IPv4 and IPv6, then a conflicting overlap.
    for v6 in (0, 1):
        seed = b""
        for off_units, more in ((2, True), (0, True), (4, False)):
            flags = v6 | (0x02 if more else 0)
            seed += bytes([flags, 42]) + struct.pack(">H", off_units) + bytes([2, 1])
        seed += bytes([v6 | 0x02 | 0x04, 43]) + struct.pack(">H", 0) + bytes([1, 1]) + b"A" * 8
        seed += bytes([v6 | 0x04, 43]) + struct.pack(">H", 0) + bytes([1, 1]) + b"B" * 8
        write("defrag", seed)

    total = sum(
        os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(SEEDS) for f in fs
    )
    print(f"seeds: {total} bytes")
    for target in sorted(os.listdir(SEEDS)):
        print(f"  {target}: {len(os.listdir(os.path.join(SEEDS, target)))} files")


if __name__ == "__main__":
    main()
